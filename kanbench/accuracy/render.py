"""Markdown for the accuracy suite: one table per task, the summary, the scaling exponents."""

from __future__ import annotations

from typing import Sequence

from tabulate import tabulate

from kanbench.accuracy import summary
from kanbench.accuracy.records import AccuracyResult
from kanbench.accuracy.tasks import catalogue


def _g(v, digits=3) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _error_cell(row: summary.TaskRow, kind: str) -> str:
    if row.error is None:
        return "failed"
    if kind == "classification":  # as accuracy, higher is better
        return f"{1 - row.error:.3f} [{1 - row.error_max:.3f}-{1 - row.error_min:.3f}]"
    return f"{row.error:.3g} [{row.error_min:.3g}-{row.error_max:.3g}]"


def task_tables(records: Sequence[AccuracyResult], budget_scale: float = 1.0) -> str:
    """One markdown table per task (best first), each headed by the task's formula and source."""
    tasks = catalogue()
    per_task = summary.task_rows(records, budget_scale)
    parts = []
    for name, rows in per_task.items():
        task = tasks.get(name)
        kind = task.kind if task else "regression"
        metric = "test accuracy (median [min-max])" if kind == "classification" else "test NRMSE (median [min-max])"
        head = f"#### {name}" + (f": {task.formula}" if task and task.formula else "")
        body = [
            [
                f"{row.rank:g}",
                row.impl,
                _error_cell(row, kind),
                _g(row.rmse) if kind == "regression" else "",
                row.params if row.params is not None else "-",
                _g(row.step_ms),
                _g(row.steps_to_target, 4),
                _g(row.lr, 2),
                f"{row.finished}/{row.seeds}",
            ]
            for row in rows
        ]
        headers = [
            "rank",
            "implementation",
            metric,
            "test RMSE" if kind == "regression" else "",
            "params",
            "ms/step",
            "steps to target",
            "lr",
            "seeds ok",
        ]
        table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
        notes = [f"- {row.impl}: {f}" for row in rows for f in row.failures[:1]]
        parts.append("\n".join([head, "", table, *([""] + notes if notes else [])]))
    return "\n\n".join(parts)


def summary_table(records: Sequence[AccuracyResult], budget_scale: float = 1.0, fmt: str = "github") -> str:
    """Mean rank over tasks and win rate against the MLP with its 95% interval."""
    per_task = summary.task_rows(records, budget_scale)
    ranks = summary.mean_ranks(per_task)
    wins = summary.win_rates(records, budget_scale=budget_scale)
    families = {r.impl: r.family for r in records}
    body = []
    for impl, (rank, n) in ranks.items():
        w = wins.get(impl)
        cell = "-" if w is None else f"{w.rate:.0%} ({w.wins}/{w.pairs}; 95% CI {w.low:.0%}-{w.high:.0%})"
        steps = [row.step_ms for rows in per_task.values() for row in rows if row.impl == impl and row.step_ms]
        median_ms = sorted(steps)[len(steps) // 2] if steps else None
        body.append([impl, families.get(impl, ""), f"{rank:.2f}", n, cell, _g(median_ms)])
    headers = ["implementation", "family", "mean rank", "tasks", "wins vs MLP (task x seed)", "median ms/step"]
    return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)


def scaling_table(records: Sequence[AccuracyResult]) -> str:
    """alpha in RMSE ~ N^-alpha per implementation (median over tasks); empty with one budget."""
    exps = summary.scaling_exponents(records)
    if not exps:
        return ""
    body = [[impl, f"{sorted(v.values())[len(v) // 2]:.2f}", len(v)] for impl, v in sorted(exps.items())]
    return tabulate(body, headers=["implementation", "alpha (median over tasks)", "tasks"], tablefmt="github")


def report(records: Sequence[AccuracyResult]) -> str:
    """The whole markdown report: summary first, then the tasks, then the scaling exponents."""
    parts = ["### Summary (budget x1)", "", summary_table(records), "", "### Per task", "", task_tables(records)]
    scaling = scaling_table(records)
    if scaling:
        parts += ["", "### Error versus parameters (RMSE ~ N^-alpha)", "", scaling]
    return "\n".join(parts)
