"""The site's front page: the question first -- which KAN for which workload, and at what accuracy.

The newest leaderboard of every workload as one heatmap (speed relative to the MLP, rank bands)
beside the newest accuracy-suite run as error against time per step with its Pareto front; each
panel links to its page. The file index follows on the same page (``index.html``)."""

from __future__ import annotations

from kanbench.site.format import file_date


def panels(site) -> tuple:
    """The question first: the newest leaderboard of every workload as one heatmap (speed relative
    to the MLP) and the newest accuracy run as error vs time per step. ([(title, text, figure id,
    href)], [(figure id, json)])."""
    from kanbench import multiboard
    from kanbench.site import charts

    by_workload: dict = {}  # the newest leaderboard file of each workload
    item = None  # the newest accuracy file, a default-tier one (every implementation) where there is one
    for input_ in sorted(site.docs, key=lambda i: file_date(i.doc)):
        doc = input_.doc
        if doc.mode == "leaderboard" and doc.rows():
            by_workload[doc.rows()[0].workload_key] = doc
        elif doc.mode == "accuracy" and (item is None or _default_tier(input_) or not _default_tier(item)):
            item = input_
    front, figures = [], []
    boards = list(by_workload.values())
    if boards:
        figures.append(("front-workloads", charts.workload_ratios(multiboard.boards(boards), multiboard.not_ranked(boards))))
        front.append(
            (
                "Speed, per workload",
                "The newest leaderboard of each workload: forward+backward time relative to the MLP of the same run, "
                "parameter-matched; in brackets the rank band.",
                "front-workloads",
                "workloads.html",
            )
        )
    if item is not None:
        records = [r for r in item.doc.results if hasattr(r, "task_family")]
        figures.append(("front-accuracy", charts.accuracy_overview(records)))
        front.append(
            (
                "Accuracy, at what cost",
                f"{item.path.name}: test error and time per training step relative to the MLP's at matched "
                "parameter budgets, tuned alike; the dotted line is the Pareto front.",
                "front-accuracy",
                f"accuracy.html#{item.slug}",
            )
        )
    return front, figures


def _default_tier(item) -> bool:
    """True for a default-tier accuracy run (its file name, as kanbench accuracy writes it)."""
    return "accuracy-default" in item.path.name
