"""Where the grid-extension error floor of our [2,1,1] KAN comes from, measured.

    python benchmarks/grid_floor.py [--grids 3,5,10,20,50,100] [--extra-steps 800] [--out FILE.md]

The protocol of ``kanbench accuracy --protocol grid-extension`` (exp(sin(pi x) + y^2), 1000 training
and 1000 test points, LBFGS 200 iterations per grid, float64), run twice: on the native operator
and on the PyTorch path (``BETTER_KAN_NATIVE=0`` in a subprocess). For every grid it records the
train and test RMSE, the test RMedSE (the paper's metric), the test RMSE without the points
within 0.02 of the input box's edges, and the inputs of the five worst test points; after the
last grid it trains ``--extra-steps`` more LBFGS iterations and records the errors again (does
the floor move with more optimization?).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(grids: list[int], extra_steps: int) -> dict:
    """One path (whichever this process runs): rows per grid and the extra-steps row."""
    import torch

    from kanbench.accuracy import grid_scaling as gs
    from kanbench.discovery import discover

    spec = discover().get("splines-better_kan").spec
    data = gs.exp_sin_data()
    x_train, y_train = data["train"]
    x_test, y_test = data["test"]
    interior = (x_test.abs() <= 0.98).all(dim=1)
    torch.manual_seed(0)
    model = spec.build((2, 1, 1), device=torch.device("cpu"), dtype=torch.float64, grid_size=grids[0])

    def row(label):
        with torch.no_grad():
            err = (model(x_test) - y_test).flatten()
        worst = err.abs().topk(5).indices
        return {
            "grid": label,
            "train_rmse": gs._rmse(model, x_train, y_train),
            "test_rmse": gs._rmse(model, x_test, y_test),
            "test_rmedse": gs._rmedse(model, x_test, y_test),
            "interior_test_rmse": float(err[interior].pow(2).mean().sqrt()),
            "worst_inputs": [[round(v, 3) for v in x_test[i].tolist()] for i in worst],
        }

    rows = []
    for i, grid in enumerate(grids):
        if i:
            model.extend_grid(grid, x=x_train)
        gs._lbfgs(model, x_train, y_train, gs.STEPS)
        rows.append(row(grid))
    gs._lbfgs(model, x_train, y_train, extra_steps)
    rows.append(row(f"{grids[-1]} +{extra_steps}"))
    return {"native": os.environ.get("BETTER_KAN_NATIVE", "1") != "0", "rows": rows}


def _table(result: dict) -> str:
    lines = [
        "| G | train RMSE | test RMSE | test RMedSE | test RMSE, inputs within 0.98 | five worst test inputs (x, y) |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['grid']} | {r['train_rmse']:.3e} | {r['test_rmse']:.3e} | {r['test_rmedse']:.3e} | "
            f"{r['interior_test_rmse']:.3e} | {' '.join(map(str, r['worst_inputs']))} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grids", default="3,5,10,20,50,100")
    ap.add_argument("--extra-steps", type=int, default=800)
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    grids = [int(g) for g in args.grids.split(",")]
    if args.worker:
        print(json.dumps(measure(grids, args.extra_steps)))
        return 0
    started = time.monotonic()
    results = {}
    for name, native in (("native operator", "1"), ("PyTorch path", "0")):
        env = {**os.environ, "BETTER_KAN_NATIVE": native, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, __file__, "--worker", "--grids", args.grids, "--extra-steps", str(args.extra_steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    text = [
        f"# The grid-extension error floor of a [2,1,1] KAN, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"command: `python benchmarks/grid_floor.py --grids {args.grids} --extra-steps {args.extra_steps}`"
        f" ({time.monotonic() - started:.0f} s)",
    ]
    for name, result in results.items():
        text += ["", f"## {name}", "", _table(result)]
    out = "\n".join(text) + "\n"
    print(out)
    if args.out:
        Path(args.out).write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
