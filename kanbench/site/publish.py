"""Write the static site: jinja2 templates + plotly charts, no network at view time.

Pages (all in one flat directory, so every link is relative and the site opens from
``file://`` and from any static host):

- ``index.html``: every input file (machine, commit, date, command, mode, its pages) and
  the inputs that were skipped, with the reason;
- ``board-<file>-<n>.html``: the leaderboard of one (file, workload, device), sortable,
  filterable by family, spreads on hover, failed and sanity-flagged rows with reasons;
- ``dist-<file>-<n>.html``: the raw forward/backward samples of those rows and the
  median of every interleaved round;
- ``machines.html``: implementations side by side per machine (relative to each machine's
  MLP), each machine's fingerprint one click away;
- ``history.html``: per machine and workload, f+b time over the files' dates, regressions
  (the verdict rules of ``kanbench compare`` between consecutive files) marked; a point
  links to its results file;
- ``sweeps.html`` and ``fits.html``: the sweep axes (time, memory, ratio to the MLP) and
  the fit loss curves; ``accuracy.html``: the accuracy suite (:mod:`kanbench.site.accuracy_page`).

Inputs are copied into ``data/`` so every page links to the file it shows. plotly.js comes
from the plotly Python package (``plotly.offline.get_plotlyjs``), written into ``assets/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from kanbench.leaderboard import HEADERS as LEADERBOARD_HEADERS
from kanbench.records import ResultsDocument, RowResult

MARKER = ".kanbench-site"
ASSETS = Path(__file__).resolve().parent / "assets"
TEMPLATES = Path(__file__).resolve().parent / "templates"
#: the leaderboard's columns (kanbench.leaderboard), with both phases' absolute peaks in place of
#: the backward's increase and the FLOPs per sample (which the hover and the results file keep)
BOARD_HEADERS = [*LEADERBOARD_HEADERS[:8], "fwd peak", "bwd peak", *LEADERBOARD_HEADERS[10:]]


class PublishError(Exception):
    """Bad input for publish (one line; nothing written)."""


@dataclass
class Input:
    """One input file: its document, or why it was skipped."""

    path: Path
    slug: str
    doc: Optional[ResultsDocument] = None
    reason: str = ""
    pages: list = field(default_factory=list)  #: (href, label)

    @property
    def data_href(self) -> str:
        return f"data/{self.path.name}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "file"


def load_inputs(paths: Sequence[str]) -> list[Input]:
    from kanbench import results as results_mod

    inputs, seen = [], set()
    for p in paths:
        path = Path(p)
        slug = _slug(path.stem)
        while slug in seen:
            slug += "-x"
        seen.add(slug)
        item = Input(path, slug)
        try:
            item.doc = results_mod.load(path)
        except (results_mod.ResultsError, OSError) as exc:
            item.reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        inputs.append(item)
    return inputs


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse an existing non-empty directory that is not a previous kanbench site (unless force)."""
    if out.exists() and not out.is_dir():
        raise PublishError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists() and not force:
        raise PublishError(f"--out {out} is not empty and is not a kanbench site; use --force to write into it anyway")


# ----------------------------------------------------------------------------- formatting


def _ms(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 1 else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def _mb(v: Optional[int]) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v / 2**20:.2f} MB"


def _num(v) -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(float(v))


def _date(doc: ResultsDocument) -> str:
    return str(doc.machine.get("timestamp") or "")[:19]


def _machine(doc: ResultsDocument, device: str = "cpu") -> str:
    from kanbench.machine import machine_label

    try:
        return machine_label(doc.machine, device, doc.threads)
    except Exception:
        return str(doc.machine.get("hostname") or "?")


# ----------------------------------------------------------------------------- pages


class Site:
    """Renders the pages of one publish into ``out``."""

    def __init__(self, out: Path, inputs: list[Input]):
        import jinja2

        from kanbench.version import __version__

        self.out = out
        self.inputs = inputs
        self.docs = [i for i in inputs if i.doc is not None]
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
        self.common = {
            "version": __version__,
            "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "n_files": len(self.docs),
            "nav": [
                ("index.html", "files"),
                ("machines.html", "machines"),
                ("history.html", "history"),
                ("sweeps.html", "sweeps"),
                ("fits.html", "fits"),
                ("accuracy.html", "accuracy"),
            ],
        }
        self.written: list[str] = []

    def render(self, name: str, template: str, **context) -> None:
        figures = context.pop("figures", [])
        html = self.env.get_template(template).render(
            **self.common, **context, figures=figures, charts=bool(figures) or context.get("charts", False)
        )
        (self.out / name).write_text(html, encoding="utf-8")
        self.written.append(name)

    # -- leaderboards and distributions

    def boards(self) -> None:
        from kanbench.leaderboard import ratio_to_mlp

        for item in self.docs:
            doc = item.doc
            if doc.mode not in ("run", "leaderboard", "ab"):
                continue
            groups: dict = {}
            for r in doc.rows():
                groups.setdefault((r.workload_key, r.device), []).append(r)
            for n, ((_, device), rows) in enumerate(groups.items()):
                board, dist = f"board-{item.slug}-{n}.html", f"dist-{item.slug}-{n}.html"
                self._board(item, rows, device, board, dist, ratio_to_mlp)
                self._distribution(item, rows, device, dist, board)
                item.pages.append((board, f"leaderboard {rows[0].workload_key} {device}"))

    def _board(self, item: Input, rows: list[RowResult], device: str, name: str, dist: str, ratio_of) -> None:
        from kanbench.render import workload_title

        doc = item.doc
        ratios = {id(r): ratio_of(doc, r) for r in rows}
        ordered = sorted(rows, key=lambda r: (r.forward_ms is None, ratios[id(r)] if ratios[id(r)] is not None else math.inf))
        out, problems = [], []
        for rank, r in enumerate(ordered, 1):
            ratio = ratios[id(r)]
            batch = (r.workload or {}).get("batch") or 0
            gf = r.flops_per_sample * batch / (r.forward_ms * 1e-3) / 1e9 if r.flops_per_sample and r.forward_ms else None
            status = r.sanity_status if r.sanity_status in ("warn", "fail") else ("fail" if r.failed else "")
            rmse = (r.fit or {}).get("test_rmse")
            out.append(
                {
                    "rank": rank if r.forward_ms is not None else "-",
                    "rank_sort": rank if r.forward_ms is not None else "",
                    "label": r.label,
                    "anchor": _slug(r.label),
                    "family": r.family or "",
                    "widths": "[" + ",".join(map(str, r.built_widths)) + "]",
                    "params": f"{r.trainable_params:,}" if r.trainable_params is not None else "-",
                    "params_sort": _num(r.trainable_params),
                    "fwd": _ms(r.forward_ms) if r.forward_ms is not None else ("failed" if r.failed else "-"),
                    "fwd_sort": _num(r.forward_ms),
                    "fwd_title": f"IQR {_ms(r.forward_iqr_ms)} ms, {r.n_samples} samples, {len(r.round_medians('forward'))} rounds",
                    "bwd": _ms(r.backward_ms) if r.backward_ms is not None else ("failed" if r.failed else "-"),
                    "bwd_sort": _num(r.backward_ms),
                    "bwd_title": f"IQR {_ms(r.backward_iqr_ms)} ms, {r.n_samples} samples",
                    "ratio": "-" if ratio is None else f"{ratio:.2f}x",
                    "ratio_sort": _num(ratio),
                    "fpeak": _mb(r.forward_peak_bytes),
                    "fpeak_sort": _num(r.forward_peak_bytes),
                    "bpeak": _mb(r.backward_peak_bytes),
                    "bpeak_sort": _num(r.backward_peak_bytes),
                    "gflops": "-" if gf is None else f"{gf:.2f}",
                    "gflops_sort": _num(gf),
                    "sanity": r.sanity_status or "-",
                    "rmse": "-" if rmse is None else f"{rmse:.3g}",
                    "rmse_sort": _num(rmse),
                    "status": status,
                }
            )
            if r.error or status:
                problems.append((r.label, r.error or f"sanity {r.sanity_status}: {r.sanity_reason}"))
        families = sorted({r["family"] for r in out if r["family"]})
        title = f"Leaderboard: {workload_title(rows[0].workload)}, {device}"
        subtitle = f"{len(rows)} rows from {item.path.name}" + (
            f", matched {doc.config.get('match')}" if doc.config.get("match") else ""
        )
        self.render(
            name,
            "leaderboard.html",
            title=title,
            subtitle=subtitle,
            machine=_machine(doc, device),
            date=_date(doc),
            commit=doc.short_commit or "?",
            data=item.data_href,
            dist=dist,
            headers=BOARD_HEADERS,
            rows=out,
            families=families,
            problems=problems,
            fingerprint=json.dumps(doc.machine, indent=1, sort_keys=True, default=str),
        )

    def _distribution(self, item: Input, rows: list[RowResult], device: str, name: str, board: str) -> None:
        from kanbench.site import charts

        measured = [r for r in rows if r.raw("forward")]
        figures, sections = [], []
        if measured:
            for phase in ("forward", "backward"):
                figures.append((f"dist-{phase}", charts.distributions(measured, phase)))
                figures.append((f"rounds-{phase}", charts.rounds(measured, phase)))
            sections.append(
                {
                    "anchor": "samples",
                    "title": "Samples",
                    "text": f"Every sample (at most {charts.MAX_POINTS} per row, spread over the sorted samples) "
                    "and the median of every interleaved round: a common trend across rows is the machine, "
                    "not the code.",
                    "charts": [f[0] for f in figures],
                    "details": [],
                }
            )
        for r in rows:
            procs = (r.extra or {}).get("processes")
            sections.append(
                {
                    "anchor": _slug(r.label),
                    "title": r.label,
                    "text": f"forward {_ms(r.forward_ms)} ms (IQR {_ms(r.forward_iqr_ms)}), backward {_ms(r.backward_ms)} ms "
                    f"(IQR {_ms(r.backward_iqr_ms)}), {r.n_samples} samples" + (f"; error: {r.error}" if r.error else ""),
                    "charts": [],
                    "details": [("per-process medians", json.dumps(procs, indent=1))] if procs else [],
                }
            )
        self.render(
            name,
            "charts.html",
            title=f"Distributions: {rows[0].workload_key}, {device} ({item.path.name})",
            intro=f'Back to the <a href="{board}">leaderboard</a>.',
            sections=sections,
            figures=figures,
        )

    # -- machines

    def machines(self) -> None:
        from kanbench.leaderboard import ratio_to_mlp
        from kanbench.site import charts

        by_workload: dict = {}
        # one column per machine (its newest file with this workload): machines, not files, side by side
        for item in sorted(self.docs, key=lambda i: _date(i.doc), reverse=True):
            if item.doc.mode not in ("run", "leaderboard"):
                continue
            for r in item.doc.rows():
                machines = by_workload.setdefault(r.workload_key, {})
                label = _machine(item.doc, r.device)
                entry = machines.setdefault(label, (item, {}))
                if entry[0] is item:
                    entry[1][r.impl] = ratio_to_mlp(item.doc, r)
        sections, figures = [], []
        for n, (workload, machines) in enumerate(sorted(by_workload.items())):
            series = {m: {i: v for i, v in ratios.items() if v is not None} for m, (_, ratios) in machines.items()}
            fig_id = f"machines-{n}"
            figures.append((fig_id, charts.machine_bars(series)))
            impls = sorted({i for ratios in series.values() for i in ratios})
            head = "".join(f"<th>{_escape(m)}</th>" for m in series)
            body = "".join(
                f'<tr><td class="text">{_escape(i)}</td>'
                + "".join(
                    f'<td data-sort="{_num(series[m].get(i))}">{series[m][i]:.2f}x</td>' if i in series[m] else "<td>-</td>"
                    for m in series
                )
                + "</tr>"
                for i in impls
            )
            table = (
                f'<table class="sortable"><thead><tr><th class="text">implementation</th>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>"
            )
            details = [
                (f"{m}: fingerprint ({item.path.name})", json.dumps(item.doc.machine, indent=1, sort_keys=True, default=str))
                for m, (item, _) in machines.items()
            ]
            sections.append(
                {
                    "anchor": _slug(workload),
                    "title": workload,
                    "text": "Cells: (forward+backward) / the MLP measured in the same file (paired by round).",
                    "charts": [fig_id],
                    "table": table,
                    "details": details,
                }
            )
        self.render("machines.html", "charts.html", title="Machines side by side", sections=sections, figures=figures)

    # -- history

    def history(self) -> None:
        from kanbench.compare import CompareError, compare_documents
        from kanbench.site import charts

        runs = [i for i in self.docs if i.doc.mode == "run"]
        by_key: dict = {}
        for item in runs:
            for r in item.doc.rows():
                by_key.setdefault((_machine(item.doc, r.device), r.workload_key), []).append((item, r))
        sections, figures = [], []
        for n, ((machine, workload), entries) in enumerate(sorted(by_key.items())):
            points: dict = {}
            for item, r in entries:
                if r.usable:
                    points.setdefault(r.impl, []).append(
                        (_date(item.doc), r.forward_ms + r.backward_ms, item.data_href, item.doc.short_commit or "?")
                    )
            files = sorted({id(i): i for i, _ in entries}.values(), key=lambda i: _date(i.doc))
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
                        regressions.append((pc.impl, _date(cur.doc), row.forward_ms + row.backward_ms, text))
                        lines.append(f'<li><a href="{cur.data_href}">{_escape(cur.path.name)}</a>: {_escape(text)}</li>')
            fig_id = f"history-{n}"
            figures.append((fig_id, charts.history(points, regressions)))
            sections.append(
                {
                    "anchor": _slug(f"{machine}-{workload}"),
                    "title": f"{machine}: {workload}",
                    "text": f"{len(files)} file(s). Regressions: the verdict of <code>kanbench compare</code> between "
                    "consecutive files (threshold 1.10, alpha 0.01); click a point to open its results file.",
                    "charts": [fig_id],
                    "table": ("<ul>" + "".join(lines) + "</ul>") if lines else "<p>No regression between consecutive files.</p>",
                    "details": [],
                }
            )
        self.render("history.html", "charts.html", title="History per machine", sections=sections, figures=figures)

    # -- sweeps and fits

    def sweeps(self) -> None:
        from kanbench.axes import axis_rows, crossings
        from kanbench.site import charts

        sections, figures = [], []
        for item in self.docs:
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
                        "title": f"{axis} ({item.path.name}, {_machine(item.doc)})",
                        "text": text or "No crossing of the MLP along this axis.",
                        "charts": ids,
                        "details": [],
                    }
                )
            item.pages.append(("sweeps.html", "sweep"))
        self.render("sweeps.html", "charts.html", title="Sweeps", sections=sections, figures=figures)

    def fits(self) -> None:
        from kanbench.site import charts

        sections, figures = [], []
        for item in self.docs:
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
        self.render("fits.html", "charts.html", title="Fits", sections=sections, figures=figures)

    def index(self) -> None:
        files = []
        for item in sorted(self.docs, key=lambda i: _date(i.doc), reverse=True):
            doc = item.doc
            files.append(
                {
                    "name": item.path.name,
                    "data": item.data_href,
                    "mode": doc.mode,
                    "machine": _machine(doc),
                    "commit": doc.short_commit or "?",
                    "date": _date(doc),
                    "rows": len(doc.results),
                    "pages": item.pages,
                    "command": doc.config.get("command") or "",
                }
            )
        skipped = [(i.path.name, i.reason) for i in self.inputs if i.doc is None]
        self.render("index.html", "index.html", title="Results", files=files, skipped=skipped)


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))


def publish(paths: Sequence[str], out: Path, force: bool = False) -> dict:
    """Build the site from ``paths`` into ``out``; returns {"pages", "bytes", "skipped"}."""
    import plotly.offline

    from kanbench.site import accuracy_page

    if not paths:
        raise PublishError("no results files given")
    out = Path(out)
    check_out_dir(out, force)
    inputs = load_inputs(paths)
    out.mkdir(parents=True, exist_ok=True)
    (out / "assets").mkdir(exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    for asset in ASSETS.iterdir():
        shutil.copyfile(asset, out / "assets" / asset.name)
    (out / "assets" / "plotly.min.js").write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    for item in inputs:
        if item.doc is not None:
            shutil.copyfile(item.path, out / item.data_href)
    site = Site(out, inputs)
    site.boards()
    site.machines()
    site.history()
    site.sweeps()
    site.fits()
    accuracy_page.write(site)
    site.index()
    (out / MARKER).write_text("written by kanbench publish\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"pages": site.written, "bytes": size, "skipped": [(i.path.name, i.reason) for i in inputs if i.doc is None]}
