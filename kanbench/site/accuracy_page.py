"""The site's ``accuracy.html``: every accuracy-suite results file's summary, a Pareto chart per task
(test error against time per step) and its per-task tables."""

from __future__ import annotations


def write(site) -> None:
    """Render ``accuracy.html`` for the accuracy files among ``site``'s inputs (a page even when none)."""
    from kanbench.accuracy import render, summary
    from kanbench.site import charts

    sections, figures = [], []
    for item in site.docs:
        if item.doc.mode != "accuracy":
            continue
        records = [r for r in item.doc.results if hasattr(r, "task_family")]
        ids = []
        for task, rows in summary.task_rows(records).items():
            fig_id = f"acc-{item.slug}-{task}"
            figures.append((fig_id, charts.accuracy_pareto(rows, task)))
            ids.append(fig_id)
        config = item.doc.config.get("accuracy") or {}
        sections.append(
            {
                "anchor": item.slug,
                "title": f"{item.path.name}",
                "text": f"{len(records)} results; {config.get('steps')} {config.get('optimizer')} steps, seeds "
                f"{config.get('seeds')}, learning rates {config.get('lrs')} chosen on validation; median over seeds "
                "of the test error at the validation-best checkpoint.",
                "table": render.summary_table(records, fmt="html"),
                "charts": ids,
                "details": [("per-task tables", render.task_tables(records))],
            }
        )
        item.pages.append(("accuracy.html", "accuracy"))
    site.render("accuracy.html", "charts.html", title="Accuracy", sections=sections, figures=figures)
