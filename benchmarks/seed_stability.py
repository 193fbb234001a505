"""How stable our layers' seed-workload ratios are from run to run, and whether the native operator's
threading of small layers is why they move.

    python benchmarks/seed_stability.py [--runs 3] [--grains default,1000000000] [--out FILE.md]

``--runs`` sequential ``kanbench run --preset seed --impl mlp,splines-better_kan,rbf-better_kan``
per setting of ``BETTER_KAN_GRAIN`` (elements per thread task of the native operator; default
65536, so every seed-workload layer runs on one thread; 16384 splits the second layer -- 150 x 9 x 32
= 43k elements -- over two threads; 1000000000 keeps every layer on one thread), the settings taking turns run by run so that
drift of the machine hits them alike. For each run: each layer's forward+backward ratio to the MLP
of the same run (paired by round), and per setting the spread of those ratios around their median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("splines-better_kan", "rbf-better_kan")


def one_run(grain: str, folder: Path, n: int) -> dict:
    """{layer: f+b ratio to the MLP} of one `kanbench run`."""
    from kanbench import results

    out = folder / f"run-{grain}-{n}.json"
    env = dict(os.environ)
    if grain != "default":
        env["BETTER_KAN_GRAIN"] = grain
    cmd = [sys.executable, "-m", "kanbench", "run", "--preset", "seed", "--impl", "mlp," + ",".join(LAYERS), "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    doc = results.load(out)
    rows = {r.impl: r for r in doc.rows()}
    mlp = rows["mlp"]
    return {layer: rows[layer].ratio_to(mlp) for layer in LAYERS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--grains", default="default,1000000000")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    grains = args.grains.split(",")
    started = time.monotonic()
    ratios: dict = {g: [] for g in grains}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            for g in grains:
                ratios[g].append(one_run(g, Path(tmp), n))
                print(f"run {n + 1} grain {g}: {json.dumps(ratios[g][-1])}", file=sys.stderr)
    lines = [
        f"# Seed-workload ratio stability, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"command: `python benchmarks/seed_stability.py --runs {args.runs} --grains {args.grains}` "
        f"({time.monotonic() - started:.0f} s; settings taking turns run by run)",
        "",
        "| BETTER_KAN_GRAIN | layer | f+b / MLP per run | median | largest deviation from the median |",
        "|---|---|---|---|---|",
    ]
    for g in grains:
        for layer in LAYERS:
            values = [r[layer] for r in ratios[g]]
            med = statistics.median(values)
            dev = max(abs(v / med - 1) for v in values)
            lines.append(f"| {g} | {layer} | {', '.join(f'{v:.3f}' for v in values)} | {med:.3f} | {100 * dev:.1f}% |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
