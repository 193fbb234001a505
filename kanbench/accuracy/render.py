"""Markdown for the accuracy suite: one table per task, the summary, the scaling exponents."""

from __future__ import annotations

from typing import Optional, Sequence

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


def min_seed(records: Sequence[AccuracyResult]) -> int:
    return min((r.seed for r in records), default=0)


def _options(rec) -> str:
    if rec is None or not rec.options:
        return ""
    return ", ".join(f"{k}={v}" for k, v in rec.options.items() if k != "hidden_factor")


def _param_error(rec) -> str:
    """The trained model's distance from its budget, in what the budget counts."""
    error = None if rec is None else (rec.flops_error if getattr(rec, "match", "params") == "flops" else rec.param_error)
    return "-" if error is None else f"{100 * error:.1f}%"


def task_tables(records: Sequence[AccuracyResult], budget_scale: Optional[float] = None) -> str:
    """One markdown table per task (best first), each headed by the task's formula and source, at
    one budget (default: :func:`~kanbench.accuracy.summary.main_budget`)."""
    budget_scale = summary.main_budget(records) if budget_scale is None else budget_scale
    tasks = catalogue()
    per_task = summary.task_rows(records, budget_scale)
    marks = summary.flags(records)
    chosen = {(r.impl, r.task): r for r in records if r.budget_scale == budget_scale and r.seed == min_seed(records)}
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
                _options(chosen.get((row.impl, name))),
                _param_error(chosen.get((row.impl, name))),
                f"{row.finished}/{row.seeds}",
                ", ".join(marks.get((row.impl, name, budget_scale), [])),
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
            "chosen",
            "off budget",
            "seeds ok",
            "flags",
        ]
        table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
        notes = [f"- {row.impl}: {f}" for row in rows for f in row.failures[:1]]
        parts.append("\n".join([head, "", table, *([""] + notes if notes else [])]))
    return "\n\n".join(parts)


def summary_table(records: Sequence[AccuracyResult], budget_scale: Optional[float] = None, fmt: str = "github") -> str:
    """Mean rank over tasks; wins, ties and losses against the MLP with the win share's 95% bootstrap
    interval (tasks and seeds resampled); the error ratio to the MLP with the same interval; at one
    budget (default: :func:`~kanbench.accuracy.summary.main_budget`)."""
    budget_scale = summary.main_budget(records) if budget_scale is None else budget_scale
    per_task = summary.task_rows(records, budget_scale)
    ranks = summary.mean_ranks(per_task)
    wins = summary.win_rates(records, budget_scale=budget_scale)
    ratios = summary.error_ratios(records, budget_scale=budget_scale)
    families = {r.impl: r.family for r in records}
    body = []
    for impl, (rank, n) in ranks.items():
        w, q = wins.get(impl), ratios.get(impl)
        cell = "-" if w is None else f"{w.rate:.0%} [{w.low:.0%}-{w.high:.0%}] ({w.wins}/{w.ties}/{w.losses})"
        ratio = "-" if q is None else f"{q.ratio:.2f}x [{q.low:.2f}-{q.high:.2f}]"
        steps = [row.step_ms for rows in per_task.values() for row in rows if row.impl == impl and row.step_ms]
        median_ms = sorted(steps)[len(steps) // 2] if steps else None
        body.append([impl, families.get(impl, ""), f"{rank:.2f}", n, cell, ratio, _g(median_ms)])
    headers = [
        "implementation",
        "family",
        "mean rank",
        "tasks",
        "win share vs MLP [95%] (W/T/L)",
        "error / MLP's [95%]",
        "median ms/step",
    ]
    return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)


def _budget_label(records: Sequence[AccuracyResult], budget_scale: float) -> str:
    """ "x2" for a multiple of each task's reference; "1000 parameters" (or FLOPs) for an absolute
    budget (one whose records' targets all equal it)."""
    targets = {round(r.budget) for r in records if r.budget_scale == budget_scale and r.budget}
    if targets == {round(budget_scale)} and budget_scale >= 10:
        return f"{budget_scale:g} {'FLOPs' if records[0].match == 'flops' else 'parameters'}"
    return f"x{budget_scale:g}"


def budget_table(records: Sequence[AccuracyResult], budgets: Sequence[float]) -> str:
    """Per implementation, the error / MLP's ratio [95%] and the win share at each budget, side by side."""
    columns = []
    for b in budgets:
        columns.append((summary.error_ratios(records, budget_scale=b), summary.win_rates(records, budget_scale=b)))
    impls = sorted({impl for ratios, wins in columns for impl in ratios})
    body = []
    for impl in impls:
        row = [impl]
        for ratios, wins in columns:
            q, w = ratios.get(impl), wins.get(impl)
            row.append(
                ("-" if q is None else f"{q.ratio:.2f}x [{q.low:.2f}-{q.high:.2f}]")
                + ("" if w is None else f", wins {w.rate:.0%}")
            )
        body.append(row)
    headers = ["implementation"] + [f"error / MLP's at {_budget_label(records, b)}" for b in budgets]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def scaling_table(records: Sequence[AccuracyResult]) -> str:
    """The widening exponent: alpha in RMSE ~ N^-alpha as the network widens at a fixed grid, per
    implementation (median over tasks); empty with one budget."""
    exps = summary.scaling_exponents(records)
    if not exps:
        return ""
    body = [[impl, f"{sorted(v.values())[len(v) // 2]:.2f}", len(v)] for impl, v in sorted(exps.items())]
    return tabulate(body, headers=["implementation", "alpha (median over tasks)", "tasks"], tablefmt="github")


def report(records: Sequence[AccuracyResult]) -> str:
    """The whole markdown report: summary first, then the tasks, then the scaling exponents."""
    notes = [
        "Win share: wins plus half the ties over (task, seed) pairs against the MLP; W/T/L counts them. Intervals: "
        f"2.5-97.5% of {summary.BOOTSTRAP} bootstrap resamples of tasks and, within each, seeds. Error / MLP's: the "
        "geometric mean over pairs of the test error ratio (below 1: lower error than the MLP). Flags: not converged (a "
        "seed's best checkpoint in the last 5% of its steps), lr at edge (the chosen rate at an end of the range "
        "searched). Off budget: |parameters - budget| / budget of the model trained (FLOPs per sample with --match flops)."
    ]
    budgets = sorted({r.budget_scale for r in records})
    main = summary.main_budget(records)
    head = f"### Summary (budget {_budget_label(records, main)})"
    parts = [head, "", summary_table(records, main), "", *notes]
    if len(budgets) > 1:
        parts += ["", "### Summary per budget", "", budget_table(records, budgets)]
    parts += ["", f"### Per task (budget {_budget_label(records, main)})", "", task_tables(records, main)]
    scaling = scaling_table(records)
    if scaling:
        parts += ["", "### Widening: error versus parameters at a fixed grid (RMSE ~ N^-alpha)", "", scaling]
    return "\n".join(parts)
