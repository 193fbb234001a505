"""The site's ``workloads.html``: the leaderboards of several workloads side by side (kanbench.multiboard):
each implementation's rank band and ratio to the MLP per workload, and one chart of every board."""

from __future__ import annotations


def write(site) -> None:
    """Render ``workloads.html`` from the leaderboard files among ``site``'s inputs (a page even when none)."""
    from tabulate import tabulate

    from kanbench import multiboard
    from kanbench.site import charts

    docs = [i.doc for i in site.docs if i.doc.mode == "leaderboard"]
    placed = multiboard.boards(docs) if docs else {}
    sections, figures = [], []
    if placed:
        figures.append(("workloads", charts.workload_ratios(placed, multiboard.not_ranked(docs))))
        table = multiboard.summary(placed)
        rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
        html = tabulate([[c.strip() for c in r] for r in rows], headers=["implementation", *placed], tablefmt="html")
        sections.append(
            {
                "anchor": "summary",
                "title": f"{len(placed)} workloads",
                "text": "Rank band (forward+backward relative to the MLP of the same run). A band joins the rows whose "
                "95% intervals of the median per-round ratio overlap: they are not ordered by this measurement.",
                "table": html,
                "charts": ["workloads"],
                "details": [],
            }
        )
    site.render("workloads.html", "charts.html", title="Workloads", sections=sections, figures=figures)
