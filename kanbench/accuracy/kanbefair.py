"""KANbeFair's special-function finding, set beside ours on its own definitions.

KANbeFair (Yu et al., arXiv 2407.16674; github yu-rp/KANbeFair) trains pykan KANs and MLPs over
hyperparameter grids and publishes every run in ``results/results.csv`` (no header; KAN rows have 20
fields, MLP rows 17, laid out by its ``src/utils.py`` ``write_results``). For a special function its
recorded error is the **mean absolute error** on 1000 test points (its ``per_sample_rmse`` of a
one-output model), the best value over epochs *on the test set*, from one seed.

:func:`published_ratios` reads that file (the user's copy: nothing of KANbeFair's is vendored) and
gives, per task and parameter band, the lowest KAN error and the lowest MLP error of any
configuration whose reported parameter count falls in the band, and their ratio (< 1: the KAN is
better). KANbeFair defines no numeric bands; decades are used, [1e2, 1e3) and [1e3, 1e4) being the
two where both families have rows.

:func:`our_ratios` gives the same ratio from a ``kanbench accuracy`` results file holding the
``kbf-...`` tasks (``kanbench.accuracy.tasks``: its inputs, targets and sizes): per task and budget,
the lowest median-over-seeds test MAE of the KAN rows over the MLP's, with a 95% interval from a
bootstrap over seeds. The two differ by protocol, and the table says how: ours tunes every row
alike on validation and reports the median of seeds; KANbeFair's is best-of-grid on the test set.

``python -m kanbench.accuracy.kanbefair RESULTS_CSV [--out FILE]`` writes the published ratios as
JSON (``results/kanbefair/published-ratios.json`` is its output for yu-rp/KANbeFair@70b255e).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

#: the columns of KANbeFair's results.csv: KAN rows (20 fields), MLP rows (17)
_HEAD = ["timestamp", "dataset", "model", "layers_width", "batch_norm", "activation", "batch_size", "epochs", "lr", "seed"]
_TAIL = ["train_metric", "test_metric", "params", "flops", "total_time_s", "time_per_epoch_s"]
KAN_COLUMNS = _HEAD + ["grid", "order", "shortcut", "grid_range"] + _TAIL
MLP_COLUMNS = _HEAD + ["specific"] + _TAIL
#: decades where both families have rows in the published file
BANDS = ((100.0, 1000.0), (1000.0, 10000.0))
#: KANbeFair's dataset name -> our task (yvp and kvp are left out: see kanbench.accuracy.tasks)
TASKS = {
    "Special_ellipkinc": "kbf-ellipkinc",
    "Special_ellipeinc": "kbf-ellipeinc",
    "Special_jv": "kbf-jvp",
    "Special_iv": "kbf-ivp",
    "Special_lpmv0": "kbf-lpmv0",
    "Special_lpmv1": "kbf-lpmv1",
    "Special_sphharm01": "kbf-sphharm01",
    "Special_sphharm02": "kbf-sphharm02",
}


#: its tabular datasets (UCI ids in its src/utils.py; Titanic from Kaggle) and what they are
TABULAR = {
    "Income": "Adult (UCI 2), 2 classes",
    "Bank": "Bank Marketing (UCI 222), 2 classes",
    "Rice": "Rice Cammeo/Osmancik (UCI 545), 2 classes",
    "Spam": "Spambase (UCI 94), 2 classes",
    "Card": "default of credit card clients (UCI 350), 2 classes",
    "Telescope": "MAGIC gamma telescope (UCI 159), 2 classes",
    "Titanic": "Titanic (Kaggle), 2 classes",
    "Student": "students' dropout and success (UCI 697), 3 classes",
    "Bean": "Dry Bean (UCI 602), 7 classes",
    "Wine": "Wine Quality (UCI 186), 7 classes",
}


@dataclass
class TabularRatio:
    """One tabular dataset: the best KAN's test error rate (1 - accuracy) over the best MLP's, any size."""

    dataset: str
    what: str
    kan: Optional[float]
    mlp: Optional[float]
    ratio: Optional[float]
    kan_rows: int = 0
    mlp_rows: int = 0


class FormatError(ValueError):
    """A results.csv that is not KANbeFair's layout (one line saying where)."""


@dataclass
class BandRatio:
    """One task in one parameter band: the best KAN error over the best MLP error."""

    task: str  #: our task name (``kbf-...``)
    band: tuple  #: [lo, hi) parameters
    kan: Optional[float]
    mlp: Optional[float]
    ratio: Optional[float]
    kan_rows: int = 0
    mlp_rows: int = 0
    interval: Optional[tuple] = None  #: ours: 95% bootstrap interval of the ratio
    kan_impl: str = ""  #: ours: the KAN row with the lowest error


def read_published(path) -> list[dict]:
    """KANbeFair's results.csv as dicts (numbers as floats where the column is numeric)."""
    rows = []
    with open(path, newline="") as f:
        for number, fields in enumerate(csv.reader(f), 1):
            if len(fields) == len(KAN_COLUMNS):
                row = dict(zip(KAN_COLUMNS, fields))
            elif len(fields) == len(MLP_COLUMNS):
                row = dict(zip(MLP_COLUMNS, fields))
            else:
                raise FormatError(f"{path}:{number}: {len(fields)} fields; KANbeFair's results.csv has 20 (KAN) or 17 (MLP)")
            try:
                row["test_metric"], row["params"] = float(row["test_metric"]), float(row["params"])
            except ValueError:
                raise FormatError(f"{path}:{number}: test_metric and num_parameters are not numbers") from None
            rows.append(row)
    return rows


def published_ratios(rows: Sequence[dict], bands=BANDS) -> list[BandRatio]:
    """Per task (``TASKS``) and band: min KAN test error / min MLP test error over the rows in it."""
    out = []
    for dataset, task in TASKS.items():
        mine = [r for r in rows if r["dataset"] == dataset]
        for lo, hi in bands:
            inside = [r for r in mine if lo <= r["params"] < hi]
            kan = [r["test_metric"] for r in inside if r["model"] == "KAN"]
            mlp = [r["test_metric"] for r in inside if r["model"] == "MLP"]
            k, m = (min(kan) if kan else None), (min(mlp) if mlp else None)
            ratio = k / m if k is not None and m else None
            out.append(BandRatio(task, (lo, hi), k, m, ratio, len(kan), len(mlp)))
    return out


def published_tabular(rows: Sequence[dict]) -> list[TabularRatio]:
    """Per tabular dataset: min KAN error rate / min MLP error rate over every row (its accuracy is in %)."""
    out = []
    for dataset, what in TABULAR.items():
        mine = [r for r in rows if r["dataset"] == dataset]
        kan = [1 - r["test_metric"] / 100 for r in mine if r["model"] == "KAN"]
        mlp = [1 - r["test_metric"] / 100 for r in mine if r["model"] == "MLP"]
        k, m = (min(kan) if kan else None), (min(mlp) if mlp else None)
        out.append(TabularRatio(dataset, what, k, m, k / m if k is not None and m else None, len(kan), len(mlp)))
    return out


def _band_of(params: float, bands) -> Optional[tuple]:
    return next(((lo, hi) for lo, hi in bands if lo <= params < hi), None)


def our_ratios(records, baseline: str = "mlp", bands=BANDS, resamples: int = 2000, seed: int = 0) -> list[BandRatio]:
    """From accuracy records of the ``kbf-...`` tasks: per task and budget scale, the KAN row with the
    lowest median test MAE over the MLP's median, banded by the KAN's parameters, with a 95%
    percentile interval from resampling each row's seeds."""
    rng = np.random.default_rng(seed)
    groups: dict = {}
    for r in records:
        if not str(r.task).startswith("kbf-") or r.failed or r.test_mae is None or not math.isfinite(r.test_mae):
            continue
        groups.setdefault((r.task, r.budget_scale), {}).setdefault(r.impl, []).append(r)
    out = []
    for (task, _scale), by_impl in sorted(groups.items()):
        if baseline not in by_impl:
            continue
        mlp = [r.test_mae for r in by_impl[baseline]]
        kans = {i: rs for i, rs in by_impl.items() if i != baseline and rs[0].family != "MLP"}
        if not kans:
            continue
        best = min(kans, key=lambda i: statistics.median(r.test_mae for r in kans[i]))
        kan = [r.test_mae for r in kans[best]]
        params = statistics.median(r.params for r in kans[best] if r.params)
        band = _band_of(params, bands) or (params, params)
        k, m = statistics.median(kan), statistics.median(mlp)
        boots = [float(np.median(rng.choice(kan, len(kan))) / np.median(rng.choice(mlp, len(mlp)))) for _ in range(resamples)]
        interval = (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5)))
        out.append(BandRatio(task, band, k, m, k / m if m else None, len(kan), len(mlp), interval, best))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kanbench.accuracy.kanbefair", description=__doc__.split("\n\n")[0])
    p.add_argument("results_csv", help="KANbeFair's results/results.csv")
    p.add_argument("--source", default="", help="where it came from (e.g. yu-rp/KANbeFair@70b255e), recorded")
    p.add_argument("--out", help="write the ratios here as JSON (default: print)")
    args = p.parse_args(argv)
    try:
        rows = read_published(args.results_csv)
    except (OSError, FormatError) as exc:
        print(f"kanbench: {exc}", file=sys.stderr)
        return 2
    document = {
        "kind": "kanbefair-published",
        "source": args.source,
        "rows": len(rows),
        "metric": "test MAE, best over epochs on the test set, one seed",
        "ratios": [asdict(r) for r in published_ratios(rows)],
        "tabular_metric": "test error rate (1 - accuracy), best over epochs on the test set, one seed, any size",
        "tabular": [asdict(r) for r in published_tabular(rows)],
    }
    text = json.dumps(document, indent=1)
    if args.out:
        from kanbench.results import write_atomic

        write_atomic(Path(args.out), document)
    else:
        print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "BANDS",
    "BandRatio",
    "FormatError",
    "TABULAR",
    "TASKS",
    "TabularRatio",
    "main",
    "our_ratios",
    "published_ratios",
    "published_tabular",
    "read_published",
]
