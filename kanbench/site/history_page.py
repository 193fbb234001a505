"""The site's ``history.html``: per machine and workload, forward+backward time over the files' dates,
regressions (the verdict rules of ``kanbench compare`` between consecutive files) marked."""

from __future__ import annotations

from kanbench.site.format import escape, file_date, machine_of, slugify


def write(site) -> None:
    """Render ``history.html`` for the run files among ``site``'s inputs."""
    from kanbench.compare import CompareError, compare_documents
    from kanbench.site import charts

    runs = [i for i in site.docs if i.doc.mode == "run"]
    by_key: dict = {}
    for item in runs:
        for r in item.doc.rows():
            by_key.setdefault((machine_of(item.doc, r.device), r.workload_key), []).append((item, r))
    sections, figures = [], []
    for n, ((machine, workload), entries) in enumerate(sorted(by_key.items())):
        if len({id(i) for i, _ in entries}) < 2:  # one file: nothing over time to show
            continue
        points: dict = {}
        for item, r in entries:
            if r.usable:
                points.setdefault(r.impl, []).append(
                    (file_date(item.doc), r.forward_ms + r.backward_ms, item.data_href, item.doc.short_commit or "?")
                )
        files = sorted({id(i): i for i, _ in entries}.values(), key=lambda i: file_date(i.doc))
        regressions, lines = [], []
        for prev, cur in zip(files[:-1], files[1:]):
            try:
                comparison = compare_documents(prev.doc, cur.doc, normalize="auto")
            except CompareError:
                continue
            for pc in comparison.rows:
                if pc.verdict == "slower" and pc.workload == workload:
                    row = next((r for i, r in entries if i is cur and r.impl == pc.impl and r.usable), None)
                    if row is None:
                        continue
                    text = f"{pc.impl} {pc.phase} {pc.ratio:.2f}x slower than {prev.path.name}" + (
                        f" (p={pc.p_value:.3g})" if pc.p_value is not None else ""
                    )
                    regressions.append((pc.impl, file_date(cur.doc), row.forward_ms + row.backward_ms, text))
                    lines.append(f'<li><a href="{cur.data_href}">{escape(cur.path.name)}</a>: {escape(text)}</li>')
        fig_id = f"history-{n}"
        figures.append((fig_id, charts.history(points, regressions)))
        sections.append(
            {
                "anchor": slugify(f"{machine}-{workload}"),
                "title": f"{machine}: {workload}",
                "text": f"{len(files)} file(s). Regressions: the verdict of <code>kanbench compare</code> between "
                "consecutive files (threshold 1.10, alpha 0.01); click a point to open its results file.",
                "charts": [fig_id],
                "table": ("<ul>" + "".join(lines) + "</ul>") if lines else "<p>No regression between consecutive files.</p>",
                "details": [],
            }
        )
    intro = "Each machine and workload measured in two or more of the files, newest on the right." if sections else ""
    site.render("history.html", "charts.html", title="History per machine", sections=sections, figures=figures, intro=intro)
