"""The site's ``sweeps.html`` (the sweep axes: time, memory, ratio to the MLP) and ``fits.html`` (the fit loss curves)."""

from __future__ import annotations

from kanbench.site.format import machine_of


def write_sweeps(site) -> None:
    """Render ``sweeps.html``: per sweep file and axis, time, ratio to the MLP and memory along the axis."""
    from kanbench.axes import axis_rows, crossings
    from kanbench.site import charts

    sections, figures = [], []
    for item in site.docs:
        if item.doc.mode != "sweep":
            continue
        axes = list(dict.fromkeys(t["axis"] for r in item.doc.rows() for t in (r.sweep or [])))
        for axis in axes:
            points = axis_rows([item.doc], axis)
            if len({repr(p.value) for p in points}) < 2:  # the base point alone: nothing to plot against
                continue
            ids = []
            for what in ("time", "ratio", "memory"):
                fig_id = f"sweep-{item.slug}-{axis}-{what}"
                figures.append((fig_id, charts.sweep_axis(points, axis, what)))
                ids.append(fig_id)
            cross = crossings(points)
            text = "; ".join(f"{impl} ({dev}) crosses the MLP at {x:.3g}" for (impl, dev), x in sorted(cross.items()))
            sections.append(
                {
                    "anchor": f"{item.slug}-{axis}",
                    "title": f"{axis} ({item.path.name}, {machine_of(item.doc)})",
                    "text": text or "No crossing of the MLP along this axis.",
                    "charts": ids,
                    "details": [],
                }
            )
        item.pages.append(("sweeps.html", "sweep"))
    site.render("sweeps.html", "charts.html", title="Sweeps", sections=sections, figures=figures)


def write_fits(site) -> None:
    """Render ``fits.html``: the loss curves of every fit file, one chart per task."""
    from kanbench.site import charts

    sections, figures = [], []
    for item in site.docs:
        if item.doc.mode != "fit":
            continue
        tasks = sorted({r.task for r in item.doc.results})
        ids = []
        for task in tasks:
            fig_id = f"fit-{item.slug}-{task}"
            figures.append((fig_id, charts.fit_curves(item.doc.results, task)))
            ids.append(fig_id)
        sections.append({"anchor": item.slug, "title": item.path.name, "text": "", "charts": ids, "details": []})
        item.pages.append(("fits.html", "fit curves"))
    site.render("fits.html", "charts.html", title="Fits", sections=sections, figures=figures)
