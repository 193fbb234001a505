"""What the accuracy suite reports: per-task tables, ranks, the win rate against the MLP, scaling exponents.

- **Per task**: each implementation's median over seeds of the headline error (test NRMSE,
  or test error rate = 1 - accuracy) with its min-max, its rank among the implementations
  (1 = best; ties share the mean rank; an implementation whose every seed failed ranks last),
  the parameters trained, the median time per step and the median steps to the validation target.
- **Summary**: mean rank over tasks; the win rate against the MLP over (task, seed) pairs of the
  same budget (a win: a lower error than the MLP's on the same task and seed; a failed run loses,
  and a pair where both fail is left out) with its 95% Wilson interval (scipy's ``binomtest``).
- **Scaling** (several budgets): per implementation and task, the least-squares slope of
  log(test RMSE) against log(parameters), reported as ``alpha`` in RMSE ~ N^-alpha, and the
  median over tasks. The KAN paper's theory predicts alpha = 4 for cubic splines (k + 1).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from kanbench.accuracy.records import AccuracyResult

BASELINE = "mlp"


def _ok(r: AccuracyResult) -> bool:
    return not r.failed and r.score is not None and math.isfinite(r.score)


@dataclass
class TaskRow:
    """One implementation on one task (one budget): medians over seeds."""

    impl: str
    task: str
    budget_scale: float
    error: Optional[float]  #: median headline error over the seeds that finished
    error_min: Optional[float]
    error_max: Optional[float]
    rmse: Optional[float]  #: median test RMSE (regression)
    params: Optional[int]
    step_ms: Optional[float]
    steps_to_target: Optional[float]
    lr: Optional[float]
    finished: int  #: seeds that finished
    seeds: int
    failures: list  #: "error_kind: message" of the seeds that failed
    rank: Optional[float] = None


def _median(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else None


def task_rows(records: Sequence[AccuracyResult], budget_scale: float = 1.0) -> dict:
    """{task: [TaskRow ranked best first]} for one budget scale."""
    from scipy.stats import rankdata

    groups: dict = {}
    for r in records:
        if r.budget_scale == budget_scale:
            groups.setdefault(r.task, {}).setdefault(r.impl, []).append(r)
    out = {}
    for task, by_impl in groups.items():
        rows = []
        for impl, recs in by_impl.items():
            ok = [r for r in recs if _ok(r)]
            errors = [r.score for r in ok]
            rows.append(
                TaskRow(
                    impl=impl,
                    task=task,
                    budget_scale=budget_scale,
                    error=_median(errors),
                    error_min=min(errors) if errors else None,
                    error_max=max(errors) if errors else None,
                    rmse=_median(r.test_rmse for r in ok),
                    params=recs[0].params,
                    step_ms=_median(r.step_ms for r in recs),
                    steps_to_target=_median(r.steps_to_target for r in ok),
                    lr=recs[0].lr,
                    finished=len(ok),
                    seeds=len(recs),
                    failures=[f"{r.error_kind}: {r.error}" for r in recs if r.failed],
                )
            )
        keys = [row.error if row.error is not None else math.inf for row in rows]
        for row, rank in zip(rows, rankdata(keys, method="average")):
            row.rank = float(rank)
        out[task] = sorted(rows, key=lambda row: (row.rank, row.impl))
    return out


@dataclass
class WinRate:
    """An implementation's wins against the MLP over (task, seed) pairs, with a 95% interval."""

    impl: str
    wins: int
    pairs: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.wins / self.pairs if self.pairs else float("nan")


def win_rates(records: Sequence[AccuracyResult], baseline: str = BASELINE, budget_scale: float = 1.0) -> dict:
    """{impl: WinRate} against ``baseline`` on paired (task, seed) runs of one budget."""
    from scipy.stats import binomtest

    index = {(r.impl, r.task, r.seed): r for r in records if r.budget_scale == budget_scale}
    impls = sorted({r.impl for r in records if r.impl != baseline})
    out = {}
    for impl in impls:
        wins = pairs = 0
        for (name, task, seed), rec in index.items():
            if name != impl:
                continue
            base = index.get((baseline, task, seed))
            if base is None or (not _ok(rec) and not _ok(base)):
                continue
            pairs += 1
            if _ok(rec) and (not _ok(base) or rec.score < base.score):
                wins += 1
        if pairs:
            ci = binomtest(wins, pairs).proportion_ci(confidence_level=0.95, method="wilson")
            out[impl] = WinRate(impl, wins, pairs, float(ci.low), float(ci.high))
    return out


def mean_ranks(per_task: dict) -> dict:
    """{impl: (mean rank over tasks, tasks ranked)}; best first."""
    ranks: dict = {}
    for rows in per_task.values():
        for row in rows:
            ranks.setdefault(row.impl, []).append(row.rank)
    return dict(sorted(((k, (float(np.mean(v)), len(v))) for k, v in ranks.items()), key=lambda kv: kv[1][0]))


def scaling_exponents(records: Sequence[AccuracyResult]) -> dict:
    """{impl: {task: alpha}} from regression tasks measured at two or more budgets (RMSE ~ N^-alpha)."""
    groups: dict = {}
    for r in records:
        if r.kind == "regression" and _ok(r) and r.test_rmse and r.test_rmse > 0 and r.params:
            groups.setdefault((r.impl, r.task), {}).setdefault(r.params, []).append(r.test_rmse)
    out: dict = {}
    for (impl, task), by_params in groups.items():
        if len(by_params) < 2:
            continue
        n = np.log(np.array(sorted(by_params), dtype=np.float64))
        e = np.log(np.array([statistics.median(by_params[p]) for p in sorted(by_params)], dtype=np.float64))
        slope = np.polyfit(n, e, 1)[0]
        out.setdefault(impl, {})[task] = float(-slope)
    return out
