"""Power and false-alarm rate of the regression gate, measured on this machine.

    python benchmarks/gate_power.py --trials 10 [--slower-trials N] [--modes ab,files] [--out FILE.md]

For each mode, ``--slower-trials`` (default: ``--trials``) gate runs compare a tree where
the ``candidate`` implementation got 25% more work (benchmarks/gate_power/slower, expected
to be flagged) and ``--trials`` runs where nothing changed (benchmarks/gate_power/base,
expected to pass); our layers and the MLP are in every run, so a false alarm on any of
them counts too.

Modes:
- ``ab``: ``kanbench ab`` -- both trees measured interleaved in the same minutes, judged
  with the paired per-round test (``ab-paired``, the default of ``kanbench ab``) and, on the
  same runs, with Mann-Whitney on the round medians (``ab-mw``);
- ``files``: ``kanbench compare`` of a fresh ``kanbench run`` against one baseline file
  measured at the start (as a committed baseline would be), judged as the command does by
  default (``files-auto``: ratios to each run's MLP) and, on the same pairs, on absolute
  times (``files-absolute``, ``--normalize none``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IMPLS = "mlp,splines-better_kan,rbf-better_kan,candidate"
KB = [sys.executable, "-m", "kanbench"]


def sh(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def flagged_rows(stdout: str) -> list[str]:
    return [l.split("|")[6].strip() for l in stdout.splitlines() if l.startswith("| +") or l.startswith("| x")]


def run_file(tmp: Path, variant: str, name: str, min_time: float) -> Path:
    out = tmp / f"{name}.json"
    res = sh(
        KB
        + [
            "run",
            "--preset",
            "gate",
            "--impl",
            IMPLS,
            "--device",
            "cpu",
            "--min-time",
            str(min_time),
            "--implementations",
            str(HERE / "gate_power" / variant),
            "--out",
            str(out),
            "--no-memory",
        ]
    )
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--slower-trials", type=int, help="trials with the 25%%-slower candidate (default: --trials)")
    ap.add_argument("--modes", default="ab,files")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--chunk-time", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.5, help="per-row seconds of the file-based runs")
    ap.add_argument("--threshold", type=float, default=1.10)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--only-unchanged", action="store_true", help="run only the unchanged-tree trials (false alarms)")
    args = ap.parse_args()
    modes = args.modes.split(",")
    verdict = ["--threshold", str(args.threshold), "--alpha", str(args.alpha)]
    lines = [
        f"# Gate power experiment, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"command: `python benchmarks/gate_power.py {' '.join(sys.argv[1:])}`",
        "",
    ]
    table = [
        "| mode | regressed tree flagged | candidate flagged | unchanged tree flagged | rows falsely flagged | s per gate run |",
        "|---|---|---|---|---|---|",
    ]
    slower_trials = args.trials if args.slower_trials is None else args.slower_trials
    if args.only_unchanged:
        slower_trials = 0
    tmp = Path(tempfile.mkdtemp(prefix="kanbench-power-"))
    baseline = None
    if "files" in modes:
        baseline = run_file(tmp, "base", "baseline", args.min_time)
    for mode in modes:
        judged = ["ab-paired", "ab-mw"] if mode == "ab" else ["files-auto", "files-absolute"]
        counts = {j: {"slower": 0, "candidate": 0, "unchanged": 0} for j in judged}
        false_rows: dict = {j: [] for j in judged}
        seconds = []
        for trial in range(max(args.trials, slower_trials)):
            for variant in [v for v, n in (("slower", slower_trials), ("base", args.trials)) if trial < n]:
                start = time.monotonic()
                outcomes = {}
                if mode == "ab":
                    out_dir = tmp / f"ab-{variant}-{trial}"
                    res = sh(
                        KB
                        + [
                            "ab",
                            "--base",
                            ".",
                            "--new",
                            ".",
                            "--impl",
                            IMPLS,
                            "--out-dir",
                            str(out_dir),
                            "--rounds",
                            str(args.rounds),
                            "--chunk-time",
                            str(args.chunk_time),
                            "--workers",
                            str(args.workers),
                            "--base-extra",
                            str(HERE / "gate_power" / "base"),
                            "--new-extra",
                            str(HERE / "gate_power" / variant),
                        ]
                        + verdict
                    )
                    outcomes["ab-paired"] = res
                    base_file = next(out_dir.glob("*ab-base*.json"))
                    new_file = next(out_dir.glob("*ab-new*.json"))
                    outcomes["ab-mw"] = sh(KB + ["compare", str(base_file), str(new_file), "--test", "mw"] + verdict)
                else:
                    new = run_file(tmp, variant, f"{mode}-{variant}-{trial}", args.min_time)
                    outcomes["files-auto"] = sh(KB + ["compare", str(baseline), str(new)] + verdict)
                    outcomes["files-absolute"] = sh(KB + ["compare", str(baseline), str(new), "--normalize", "none"] + verdict)
                seconds.append(time.monotonic() - start)
                for j, res in outcomes.items():
                    if res.returncode == 2:
                        raise SystemExit(res.stderr)
                    rows = flagged_rows(res.stdout)
                    if variant == "slower":
                        counts[j]["slower"] += res.returncode == 1
                        counts[j]["candidate"] += any(r.startswith("candidate") for r in rows)
                        false_rows[j] += [r for r in rows if not r.startswith("candidate")]
                    else:
                        counts[j]["unchanged"] += res.returncode == 1
                        false_rows[j] += rows
                    print(f"{j} trial {trial + 1} {variant}: exit {res.returncode} {rows}", flush=True)
        n, ns = args.trials, slower_trials
        for j in judged:
            c = counts[j]
            table.append(
                f"| {j} | {'-' if not ns else c['slower']}/{ns} | "
                f"{'-' if not ns else c['candidate']}/{ns} | {c['unchanged']}/{n} | "
                f"{len(false_rows[j])} ({', '.join(sorted(set(false_rows[j]))) or 'none'}) | {sum(seconds) / len(seconds):.0f} |"
            )
    lines += table + [
        "",
        f"threshold {args.threshold}, alpha {args.alpha}; A/B: {args.rounds} rounds x {args.chunk_time} s per side, "
        f"{args.workers} worker process(es) per side; "
        f"files: {args.min_time} s per row; workload preset gate ([100,100,1], batch 100); impls {IMPLS}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
