"""Pareto figures of the accuracy suite: error versus time per step, error versus parameters.

One panel per task; each implementation is a point at its medians over seeds (error bars:
min-max over seeds); the Pareto front (no other point both faster/smaller and more accurate)
is drawn as a line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

from kanbench.accuracy import summary
from kanbench.accuracy.records import AccuracyResult


def pareto_front(points: Sequence[tuple]) -> list[tuple]:
    """The points (cost, error, ...) that no other point beats on both (lower is better), by cost."""
    front, best = [], math.inf
    for p in sorted(points, key=lambda p: (p[0], p[1])):
        if p[1] < best:
            front.append(p)
            best = p[1]
    return front


def pareto_figure(records: Sequence[AccuracyResult], path: Path, x: str = "step_ms") -> Optional[Path]:
    """Write the figure (x: ``step_ms`` or ``params``); None when nothing finished."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    per_task = summary.task_rows(records)
    tasks = [t for t, rows in per_task.items() if any(r.error is not None for r in rows)]
    if not tasks:
        return None
    cols = min(4, len(tasks))
    rows_n = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4 * cols, 3.2 * rows_n), squeeze=False)
    impls = sorted({r.impl for r in records})
    from kanbench.palette import style

    styles = {impl: style(impl) for impl in impls}
    for ax, task in zip(axes.flat, tasks):
        pts = []
        for row in per_task[task]:
            cost = row.step_ms if x == "step_ms" else row.params
            if row.error is None or not cost or row.error <= 0:
                continue
            pts.append((cost, row.error, row.impl))
            ax.errorbar(
                cost,
                row.error,
                yerr=[[row.error - row.error_min], [row.error_max - row.error]],
                fmt=styles[row.impl].mpl_marker,
                color=styles[row.impl].color,
                label=row.impl,
                ms=5,
            )
        front = pareto_front(pts)
        if len(front) > 1:
            ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap on short ranges
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("ms per training step" if x == "step_ms" else "trainable parameters", fontsize=8)
        ax.set_ylabel("test error (NRMSE or 1 - accuracy)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker=styles[i].mpl_marker, ls="", color=styles[i].color, label=i) for i in impls]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(impls)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * math.ceil(len(impls) / 6), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
