"""Page faults and system time per training step, with glibc's default malloc and with freed memory kept.

    python benchmarks/page_faults.py [--preset large] [--shape 1024,1024,1 --batch 32]
                                     [--impl mlp,splines-better_kan,rbf-better_kan] [--steps 30] [--repeat 2]

For each setting (``system``: ``KANBENCH_MALLOC=system``, glibc's defaults; ``kept``: what
kanbench's workers do, :mod:`kanbench.allocator`) a fresh process builds each row, warms it
up and runs ``--steps`` training steps (:func:`kanbench.timing.iteration`) in a plain loop,
reading ``getrusage`` around them: minor page faults, system and user CPU time per step, and
the forward / backward medians. The settings alternate ``--repeat`` times, so a slow phase
of the machine does not land on one of them. This is the measurement behind the README's
"Workers keep the memory they free".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = ("system", "kept")


def child(args) -> int:
    """One process, one setting: a JSON line per row."""
    from kanbench import allocator

    setting = allocator.keep_freed_memory()
    import resource

    import torch

    from kanbench.discovery import discover
    from kanbench.timing import CpuClock, iteration
    from kanbench.workload import DataPool, parse_batch, parse_shape, resolve

    torch.set_num_threads(args.threads)
    workload = resolve(
        args.preset, parse_shape(args.shape) if args.shape else None, parse_batch(args.batch) if args.batch else None
    )
    registry = discover()
    for impl in args.impl.split(","):
        torch.manual_seed(0)
        model = registry.get(impl).spec.build(workload.widths, torch.device("cpu"), torch.float32)
        pool, clock = DataPool(workload, "cpu"), CpuClock()
        for _ in range(args.warmup):
            iteration(model, pool, clock)
        before = resource.getrusage(resource.RUSAGE_SELF)
        forward, backward = [], []
        for _ in range(args.steps):
            f, b = iteration(model, pool, clock)
            forward.append(f)
            backward.append(b)
        after = resource.getrusage(resource.RUSAGE_SELF)
        n = args.steps
        print(
            json.dumps(
                {
                    "impl": impl,
                    "setting": setting,
                    "faults": (after.ru_minflt - before.ru_minflt) / n,
                    "sys_ms": 1e3 * (after.ru_stime - before.ru_stime) / n,
                    "user_ms": 1e3 * (after.ru_utime - before.ru_utime) / n,
                    "forward_ms": statistics.median(forward),
                    "backward_ms": statistics.median(backward),
                }
            ),
            flush=True,
        )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="large")
    ap.add_argument("--shape")
    ap.add_argument("--batch")
    ap.add_argument("--impl", default="mlp,splines-better_kan,rbf-better_kan")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    forwarded = list(argv if argv is not None else sys.argv[1:])
    rows = []
    for r in range(args.repeat):
        for setting in SETTINGS:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "KANBENCH_MALLOC"))}
            if setting == "system":
                env["KANBENCH_MALLOC"] = "system"
            out = subprocess.run(
                [sys.executable, __file__, "--child", *forwarded], env=env, capture_output=True, text=True, check=False
            )
            if out.returncode != 0:
                raise SystemExit(
                    out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"child failed ({out.returncode})"
                )
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    rows.append({"repeat": r + 1, "short": setting, **json.loads(line)})
    print(f"command: `python benchmarks/page_faults.py {' '.join(forwarded)}`\n")
    print("| row | malloc | repeat | page faults / step | system ms / step | user ms / step | forward ms | backward ms |")
    print("|---|---|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda x: (x["impl"], x["short"], x["repeat"])):
        print(
            f"| {row['impl']} | {row['short']} | {row['repeat']} | {row['faults']:,.0f} | {row['sys_ms']:.1f} | "
            f"{row['user_ms']:.1f} | {row['forward_ms']:.2f} | {row['backward_ms']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
