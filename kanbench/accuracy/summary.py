"""What the accuracy suite reports: per-task tables, ranks, the win rate against the MLP, scaling exponents.

- **Per task**: each implementation's median over seeds of the headline error (test NRMSE,
  or test error rate = 1 - accuracy) with its min-max, its rank among the implementations
  (1 = best; ties share the mean rank; an implementation whose every seed failed ranks last),
  the parameters trained, the median time per step and the median steps to the validation target.
- **Summary**: mean rank over tasks; wins, ties and losses against the MLP over (task, seed) pairs
  of the same budget (a win: a lower error than the MLP's on the same task and seed, a tie: the
  same error; a failed run loses, and a pair where both fail is left out), the win share (ties
  count half) with a 95% interval from a bootstrap over tasks and, within each task, seeds (the
  pairs of one task are not independent draws: Wilson's interval over pairs was too narrow); and
  the error ratio to the MLP (geometric mean over pairs) with the same bootstrap's interval.
- **Widening exponent** (several budgets): per implementation and task, the least-squares slope of
  log(test RMSE) against log(parameters) as the network is widened at a fixed grid, reported as
  ``alpha`` in RMSE ~ N^-alpha, and the median over tasks. This is not the KAN paper's scaling law
  (alpha = k + 1 = 4 for cubic splines), which is about refining the grid:
  :mod:`kanbench.accuracy.grid_scaling` measures that one.
"""

from __future__ import annotations

import functools
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


def main_budget(records: Sequence[AccuracyResult]) -> float:
    """The budget a one-budget summary shows: x1 where the records have it (every tier with budgets
    relative to the reference), else the middle of their budgets (absolute budgets)."""
    budgets = sorted({r.budget_scale for r in records})
    return 1.0 if 1.0 in budgets or not budgets else budgets[len(budgets) // 2]


def task_rows(records: Sequence[AccuracyResult], budget_scale: Optional[float] = None) -> dict:
    """{task: [TaskRow ranked best first]} for one budget (default: :func:`main_budget`)."""
    from scipy.stats import rankdata

    budget_scale = main_budget(records) if budget_scale is None else budget_scale

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


#: bootstrap resamples for the summary's intervals
BOOTSTRAP = 2000


@dataclass
class WinRate:
    """An implementation's wins, ties and losses against the MLP over (task, seed) pairs, and the win
    share (ties count half) with its 95% bootstrap interval over tasks and seeds."""

    impl: str
    wins: int
    ties: int
    losses: int
    low: float
    high: float

    @property
    def pairs(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def rate(self) -> float:
        return (self.wins + 0.5 * self.ties) / self.pairs if self.pairs else float("nan")


@dataclass
class ErrorRatio:
    """An implementation's error over the MLP's on the same (task, seed): the geometric mean over pairs
    where both finished, with its 95% bootstrap interval over tasks and seeds (below 1: lower error)."""

    impl: str
    ratio: float
    low: float
    high: float
    pairs: int
    tasks: int


def _pairs(records: Sequence[AccuracyResult], baseline: str, budget_scale: float) -> dict:
    """{impl: {task: [(score, baseline score) per seed]}}; a failed run's score is None."""
    index = {(r.impl, r.task, r.seed): r for r in records if r.budget_scale == budget_scale}
    out: dict = {}
    for (name, task, seed), rec in sorted(index.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        base = index.get((baseline, task, seed))
        if name == baseline or base is None or (not _ok(rec) and not _ok(base)):
            continue
        pair = (rec.score if _ok(rec) else None, base.score if _ok(base) else None)
        out.setdefault(name, {}).setdefault(task, []).append(pair)
    return out


def _outcome(pair) -> float:
    """1 a win, 0.5 a tie, 0 a loss (a failed run loses)."""
    mine, base = pair
    if mine is None:
        return 0.0
    if base is None or mine < base:
        return 1.0
    return 0.5 if mine == base else 0.0


def bootstrap(by_task: dict, statistic, resamples: int = BOOTSTRAP, seed: int = 0) -> tuple:
    """(low, high): the 2.5% and 97.5% quantiles of ``statistic`` over resamples that draw tasks with
    replacement and, within each drawn task, its seeds with replacement. ``by_task``: {task: [values]};
    ``statistic(array of values) -> float``. Deterministic (seeded), so kept per process: the pages
    that show the same interval compute it once."""
    groups = tuple(tuple(float(x) for x in v) for v in by_task.values() if len(v))
    return _bootstrap(groups, statistic, resamples, seed)


@functools.lru_cache(maxsize=4096)
def _bootstrap(group_values: tuple, statistic, resamples: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    groups = [np.asarray(v, dtype=np.float64) for v in group_values]
    stats = []
    for _ in range(resamples):
        drawn = [
            groups[g][rng.integers(len(groups[g]), size=len(groups[g]))] for g in rng.integers(len(groups), size=len(groups))
        ]
        stats.append(statistic(np.concatenate(drawn)))
    low, high = np.quantile(np.asarray(stats, dtype=np.float64), [0.025, 0.975])
    return float(low), float(high)


def _mean(values) -> float:
    return float(np.mean(values))


def _share(outcomes) -> float:
    return float(np.mean(outcomes)) if len(outcomes) else float("nan")


def win_rates(records: Sequence[AccuracyResult], baseline: str = BASELINE, budget_scale: Optional[float] = None) -> dict:
    """{impl: WinRate} against ``baseline`` on paired (task, seed) runs of one budget (default: :func:`main_budget`)."""
    budget_scale = main_budget(records) if budget_scale is None else budget_scale
    out = {}
    for impl, by_task in _pairs(records, baseline, budget_scale).items():
        outcomes = {task: [_outcome(p) for p in pairs] for task, pairs in by_task.items()}
        flat = [o for values in outcomes.values() for o in values]
        low, high = bootstrap(outcomes, _share)
        out[impl] = WinRate(impl, flat.count(1.0), flat.count(0.5), flat.count(0.0), low, high)
    return out


def _geometric_mean(log_ratios) -> float:
    return float(np.exp(np.mean(log_ratios))) if log_ratios else float("nan")


def error_ratios(records: Sequence[AccuracyResult], baseline: str = BASELINE, budget_scale: Optional[float] = None) -> dict:
    """{impl: ErrorRatio} against ``baseline``: pairs where both finished with a positive error, at one
    budget (default: :func:`main_budget`)."""
    budget_scale = main_budget(records) if budget_scale is None else budget_scale
    out = {}
    for impl, by_task in _pairs(records, baseline, budget_scale).items():
        logs = {
            task: [math.log(a / b) for a, b in pairs if a is not None and b is not None and a > 0 and b > 0]
            for task, pairs in by_task.items()
        }
        logs = {task: v for task, v in logs.items() if v}
        flat = [v for values in logs.values() for v in values]
        if not flat:
            continue
        low, high = bootstrap(logs, _mean)
        out[impl] = ErrorRatio(impl, _geometric_mean(flat), math.exp(low), math.exp(high), len(flat), len(logs))
    return out


def flags(records: Sequence[AccuracyResult]) -> dict:
    """{(impl, task, budget_scale): [flags]}: "not converged" (a seed's best checkpoint in the last 5%
    of its steps), "lr at edge" (the chosen rate at an end of the range searched)."""
    out: dict = {}
    for r in records:
        key = (r.impl, r.task, r.budget_scale)
        marks = out.setdefault(key, [])
        if r.converged is False and "not converged" not in marks:
            marks.append("not converged")
        if r.lr_at_edge and "lr at edge" not in marks:
            marks.append("lr at edge")
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
