"""Do tables hold up? Ratios to the MLP across repeated runs, and under a CPU hog.

    python benchmarks/reproducibility.py [--seed-runs 5] [--large-runs 3] [--hog] [--out FILE.md] [--keep DIR]

Each run is a separate ``kanbench run`` (interleaved, the default) of the MLP and our two
layers. For every row it reports the (forward+backward) / MLP ratio of each run (as the
tables compute it: the median of per-round ratios, ``RowResult.ratio_to``) and the
largest deviation from the row's median ratio across the runs (goal: within 5%).
With ``--hog``, one more seed run has a busy loop on one core for 2 s in its middle,
and its ratios are set against the quiet runs' medians (goal: within 10%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from kanbench import results  # noqa: E402

IMPLS = "mlp,splines-better_kan,rbf-better_kan"


def one_run(tmp: Path, preset: str, name: str, hog_after: float = 0.0, extra: tuple = ()) -> tuple[dict, float]:
    """({row label: (f+b)/MLP}, seconds) of one ``kanbench run``; with ``hog_after``, a busy
    process on one core from that many seconds after the start, for 2 s."""
    out = tmp / f"{name}.json"
    cmd = [
        sys.executable,
        "-m",
        "kanbench",
        "run",
        "--preset",
        preset,
        "--impl",
        IMPLS,
        "--device",
        "cpu",
        "--out",
        str(out),
        "--no-memory",
        *extra,
    ]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hog = None
    if hog_after:

        def burn():
            time.sleep(hog_after)
            subprocess.run([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<2: pass"])

        hog = threading.Thread(target=burn)
        hog.start()
    _, err = proc.communicate()
    if hog:
        hog.join()
    if proc.returncode != 0:
        raise SystemExit(err)
    seconds = time.monotonic() - started
    doc = results.load(out)
    ratios = {r.label: r.ratio_to(doc.baseline(r)) for r in doc.rows()}  # paired rounds, as the tables
    return ratios, seconds


def table(runs: list[dict]) -> tuple[list[str], dict]:
    labels = [k for k in runs[0] if not k.startswith("mlp")]
    medians = {k: statistics.median(r[k] for r in runs) for k in labels}
    lines = [
        "| row | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " | median | largest deviation |",
        "|---|" + "---|" * (len(runs) + 2),
    ]
    for k in labels:
        dev = max(abs(r[k] / medians[k] - 1) for r in runs)
        cells = " | ".join(f"{r[k]:.3f}" for r in runs)
        lines.append(f"| {k} | {cells} | {medians[k]:.3f} | {100 * dev:.1f}% |")
    return lines, medians


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed-runs", type=int, default=5)
    ap.add_argument("--large-runs", type=int, default=3)
    ap.add_argument("--hog", action="store_true")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--run-args", default="", help="more `kanbench run` options for every run, e.g. '--rounds 24'")
    ap.add_argument(
        "--keep",
        type=Path,
        help="keep the runs' results files here (seed-0.json, ...; default: a new temporary directory), "
        "for benchmarks/ratio_estimators.py",
    )
    args = ap.parse_args()
    extra = tuple(args.run_args.split())
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.glob("*.json")):
            raise SystemExit(f"--keep {args.keep}: holds results files already; name an empty directory")
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="kanbench-repro-"))
    print(f"runs kept in {tmp}", file=sys.stderr, flush=True)
    text = [
        f"# Reproducibility of ratios to the MLP, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"command: `python benchmarks/reproducibility.py {' '.join(sys.argv[1:])}`; each run is "
        f"`kanbench run --preset P --impl {IMPLS} --device cpu --no-memory{' ' + args.run_args if extra else ''}` "
        "(interleaved)",
        "",
    ]
    seed_medians = None
    for preset, n in (("seed", args.seed_runs), ("large", args.large_runs)):
        if n < 1:
            continue
        runs, secs = [], []
        for i in range(n):
            ratios, s = one_run(tmp, preset, f"{preset}-{i}", extra=extra)
            runs.append(ratios)
            secs.append(s)
            print(f"{preset} run {i + 1}/{n}: {ratios} ({s:.0f} s)", file=sys.stderr, flush=True)
        lines, medians = table(runs)
        if preset == "seed":
            seed_medians = medians
        text += [
            f"## `--preset {preset}`: (forward+backward) / MLP, {n} runs ({statistics.median(secs):.0f} s each)",
            "",
            *lines,
            "",
        ]
    if args.hog and seed_medians:
        quiet_s = one_run(tmp, "seed", "seed-quiet", extra=extra)[1]
        ratios, s = one_run(tmp, "seed", "seed-hog", hog_after=quiet_s / 2 - 1, extra=extra)
        text += [
            "## CPU hog: a busy loop on one core for 2 s in the middle of a seed run",
            "",
            "| row | ratio with the hog | quiet median | change |",
            "|---|---|---|---|",
        ]
        for k, m in seed_medians.items():
            text.append(f"| {k} | {ratios[k]:.3f} | {m:.3f} | {100 * (ratios[k] / m - 1):+.1f}% |")
        text.append("")
    out = "\n".join(text)
    print(out)
    if args.out:
        args.out.write_text(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
