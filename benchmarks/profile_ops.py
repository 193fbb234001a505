"""Where a small KAN's step goes: torch.profiler operator counts and self CPU time per phase.

    python benchmarks/profile_ops.py [--out benchmarks/results/profile-ops.md] [--steps 200]

For the MLP and our two layers, at the seed workload ([2,150,1], batch 32) and the fit
workloads ([2,5,1] and [4,4,2,1], full batch 1000), with 1 and 2 threads: the number of
operator calls per step and their self CPU time, forward and backward separately (the
backward's are the autograd nodes' ops), and the top operators. A profiler adds its own
overhead per op, so the times here are for the breakdown, not for the tables (those come
from ``kanbench run``, interleaved, without a profiler).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from implementations.better_kan import build_rbf_kan, build_spline_kan  # noqa: E402
from kanbench.baseline import MLP  # noqa: E402
from kanbench.workload import Workload, target_function  # noqa: E402

MODELS = {
    "mlp": lambda w: MLP(w),
    "splines-better_kan": lambda w: build_spline_kan(w, grid_size=5),
    "rbf-better_kan": lambda w: build_rbf_kan(w, num_centers=8),
}
WORKLOADS = [Workload((2, 150, 1), 32, preset="seed"), Workload((2, 5, 1), 1000), Workload((4, 4, 2, 1), 1000)]


def profile(model, x, y, steps: int):
    """(forward: Counter op -> [calls, self us], backward: same) per step."""
    from torch.profiler import ProfilerActivity, profile, record_function

    for _ in range(20):  # warm up
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
    phases = {"forward": Counter(), "backward": Counter()}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            with record_function("phase::forward"):
                out = model(x)
                loss = torch.nn.functional.mse_loss(out, y)
            with record_function("phase::backward"):
                loss.backward()
            model.zero_grad(set_to_none=True)
    events = prof.events()
    windows = [(e.time_range.start, e.time_range.end, e.name.split("::")[1]) for e in events if e.name.startswith("phase::")]
    for e in events:
        if e.name.startswith(("phase::", "ProfilerStep")) or e.device_type != torch.autograd.DeviceType.CPU:
            continue
        start = e.time_range.start
        for lo, hi, phase in windows:
            if lo <= start <= hi:
                calls, us = phases[phase].get(e.name, (0, 0.0))
                phases[phase][e.name] = (calls + 1, us + e.self_cpu_time_total)
                break
    return {p: {k: (v[0] / steps, v[1] / steps) for k, v in c.items()} for p, c in phases.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "profile-ops.md"))
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    lines = [
        "# Operator breakdown of one training step (torch.profiler, CPU)",
        "",
        f"`python benchmarks/profile_ops.py --steps {args.steps}`; torch {torch.__version__}.",
        "",
    ]
    lines += [
        "Ops: operator calls per step (self CPU µs per step, profiler included). The backward's ops run inside autograd nodes.",
        "",
        "| workload | threads | implementation | fwd ops | fwd µs | bwd ops | bwd µs | top forward ops | top backward ops |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for wl in WORKLOADS:
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(wl.batch, wl.widths[0], generator=gen) * 2 - 1
        y = target_function(x.double()).float().expand(-1, wl.widths[-1]).contiguous()
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for name, make in MODELS.items():
                torch.manual_seed(0)
                model = make(wl.widths)
                res = profile(model, x, y, args.steps)
                cells = []
                for phase in ("forward", "backward"):
                    ops = res[phase]
                    n = sum(c for c, _ in ops.values())
                    us = sum(t for _, t in ops.values())
                    top = sorted(ops.items(), key=lambda kv: -kv[1][1])[:4]
                    cells.append((n, us, ", ".join(f"{k.replace('aten::', '')} {c:.0f}x" for k, (c, _) in top)))
                key = "x".join(map(str, wl.widths)) + f" b{wl.batch}"
                lines.append(
                    f"| {key} | {threads} | {name} | {cells[0][0]:.0f} | {cells[0][1]:.0f} | {cells[1][0]:.0f} | {cells[1][1]:.0f} | {cells[0][2]} | {cells[1][2]} |"
                )
                print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
