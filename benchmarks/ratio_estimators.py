"""Which ratio to the MLP reproduces best? Estimators judged on runs already measured.

    python benchmarks/ratio_estimators.py extract DIR[=LABEL]... --out ROUNDS.json
    python benchmarks/ratio_estimators.py evaluate ROUNDS.json [--out FILE.md]

``extract`` reads the run files that ``benchmarks/reproducibility.py --keep DIR`` leaves
(``seed-0.json``, ``large-2.json``, ...; one DIR per invocation of that script, a *group*)
and keeps, per run and row, only what the estimators need: the forward+backward median of
every round of the row and of the MLP measured beside it (a few kB instead of every raw
sample). ``evaluate`` computes each estimator for every run and reports, per group and
preset, the largest deviation of a run from the group's median (the reproducibility goal:
within 5%), so an estimator can be chosen on many groups of real runs rather than on the
one in front of you.

Estimators (``row`` and ``mlp``: lists of per-round forward+backward medians, paired by index):

- ``median of round ratios``: median over rounds of row[i] / mlp[i] -- what the tables use
  (``RowResult.ratio_to``);
- ``quiet rounds xF``: the same over the rounds whose MLP round is within F times the MLP's
  fastest round (rounds measured while the machine ran at full speed);
- ``fastest rounds``: min(row) / min(mlp) (timeit's reasoning: noise only adds time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from kanbench import results  # noqa: E402

PRESETS = ("seed", "large")


def _fb(forward: list, backward: list) -> list:
    return [f + b for f, b in zip(forward, backward)]


def extract(dirs: list[str]) -> list[dict]:
    """One entry per group (``DIR`` or ``DIR=LABEL``):
    ``{"group": LABEL, "started": ISO time, "runs": {preset: [{row: {"row": [...], "mlp": [...]}}]}}``."""
    groups = []
    for spec in dirs:
        path, _, label = spec.partition("=")
        d = Path(path)
        started = None
        runs: dict = {}
        for preset in PRESETS:
            files = sorted(d.glob(f"{preset}-[0-9]*.json"), key=lambda p: int(p.stem.split("-")[1]))
            for path in files:
                doc = results.load(path)
                stamp = doc.machine.get("timestamp")
                started = min(started, stamp) if started and stamp else started or stamp
                entry = {}
                for r in doc.rows():
                    if r.is_baseline or r.failed:
                        continue
                    mlp = doc.baseline(r)
                    entry[r.impl] = {
                        "row": _fb(r.round_medians("forward"), r.round_medians("backward")),
                        "mlp": _fb(r.paired_rounds_of(mlp, "forward"), r.paired_rounds_of(mlp, "backward")),
                    }
                runs.setdefault(preset, []).append(entry)
        if runs:
            groups.append({"group": label or d.name, "started": started, "runs": runs})
    return groups


def _median(values: list) -> float:
    return statistics.median(values)


def median_of_round_ratios(row: list, mlp: list) -> float:
    return _median([a / b for a, b in zip(row, mlp)])


def quiet_rounds(factor: float) -> Callable[[list, list], float]:
    def estimate(row: list, mlp: list) -> float:
        limit = min(mlp) * factor
        return _median([a / b for a, b in zip(row, mlp) if b <= limit])

    return estimate


def fastest_rounds(row: list, mlp: list) -> float:
    return min(row) / min(mlp)


ESTIMATORS: dict[str, Callable[[list, list], float]] = {
    "median of round ratios": median_of_round_ratios,
    "quiet rounds x1.15": quiet_rounds(1.15),
    "quiet rounds x1.25": quiet_rounds(1.25),
    "quiet rounds x1.5": quiet_rounds(1.5),
    "fastest rounds": fastest_rounds,
}


def largest_deviation(runs: list[dict], estimate: Callable[[list, list], float]) -> float:
    """The largest |run / median - 1| over the rows of one group's runs of one preset."""
    per_row: dict = {}
    for run in runs:
        for impl, rounds in run.items():
            per_row.setdefault(impl, []).append(estimate(rounds["row"], rounds["mlp"]))
    return max(max(abs(v / _median(vals) - 1) for v in vals) for vals in per_row.values())


def evaluate(groups: list[dict]) -> str:
    names = list(ESTIMATORS)
    lines = [
        "| group (UTC start, settings) | preset | runs | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    worst: dict = {n: [] for n in names}
    met: dict = {n: 0 for n in names}
    total = 0
    for g in sorted(groups, key=lambda g: g.get("started") or ""):
        for preset, runs in g["runs"].items():
            if len(runs) < 3:
                continue
            total += 1
            cells = []
            for n in names:
                dev = largest_deviation(runs, ESTIMATORS[n])
                worst[n].append(dev)
                met[n] += round(dev, 9) <= 0.05  # 5.0% exactly is within
                cells.append(f"{100 * dev:.1f}%")
            when = (g.get("started") or "")[11:16]
            lines.append(f"| {when} {g['group']} | {preset} | {len(runs)} | " + " | ".join(cells) + " |")
    lines.append("| **mean** | | | " + " | ".join(f"**{100 * statistics.mean(worst[n]):.1f}%**" for n in names) + " |")
    lines.append("| **groups within 5%** | | | " + " | ".join(f"**{met[n]} of {total}**" for n in names) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract", help="round medians of kept run directories -> one small JSON file")
    ex.add_argument("dirs", nargs="+", help="directories of kept runs, each optionally =LABEL")
    ex.add_argument("--out", type=Path, required=True)
    ev = sub.add_parser("evaluate", help="each estimator's largest deviation per group")
    ev.add_argument("rounds", type=Path)
    ev.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "extract":
        groups = extract(args.dirs)
        args.out.write_text(json.dumps(groups, indent=1) + "\n")
        print(f"{sum(len(r) for g in groups for r in g['runs'].values())} runs in {len(groups)} groups -> {args.out}")
        return 0
    text = evaluate(json.loads(args.rounds.read_text()))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
