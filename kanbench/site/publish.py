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
  the fit loss curves; ``accuracy.html``: the accuracy suite.

This module loads the inputs and writes the leaderboards, distributions, machines and index
pages; the others have a module each (:mod:`kanbench.site.history_page`,
:mod:`kanbench.site.sweep_page`, :mod:`kanbench.site.accuracy_page`), and
:mod:`kanbench.site.format` is how every page shows numbers, dates and machines.

Inputs are copied into ``data/`` so every page links to the file it shows. plotly.js comes
from the plotly Python package (``plotly.offline.get_plotlyjs``), written into ``assets/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from kanbench.leaderboard import HEADERS as LEADERBOARD_HEADERS
from kanbench.records import ResultsDocument, RowResult
from kanbench.site.format import escape, file_date, machine_of, mb, ms, num, slugify

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


def load_inputs(paths: Sequence[str]) -> list[Input]:
    from kanbench import results as results_mod

    inputs, seen = [], set()
    for p in paths:
        path = Path(p)
        slug = slugify(path.stem)
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
                ("workloads.html", "workloads"),
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
                    "anchor": slugify(r.label),
                    "family": r.family or "",
                    "widths": "[" + ",".join(map(str, r.built_widths)) + "]",
                    "params": f"{r.trainable_params:,}" if r.trainable_params is not None else "-",
                    "params_sort": num(r.trainable_params),
                    "fwd": ms(r.forward_ms) if r.forward_ms is not None else ("failed" if r.failed else "-"),
                    "fwd_sort": num(r.forward_ms),
                    "fwd_title": f"IQR {ms(r.forward_iqr_ms)} ms, {r.n_samples} samples, {len(r.round_medians('forward'))} rounds",
                    "bwd": ms(r.backward_ms) if r.backward_ms is not None else ("failed" if r.failed else "-"),
                    "bwd_sort": num(r.backward_ms),
                    "bwd_title": f"IQR {ms(r.backward_iqr_ms)} ms, {r.n_samples} samples",
                    "ratio": "-" if ratio is None else f"{ratio:.2f}x",
                    "ratio_sort": num(ratio),
                    "fpeak": mb(r.forward_peak_bytes),
                    "fpeak_sort": num(r.forward_peak_bytes),
                    "bpeak": mb(r.backward_peak_bytes),
                    "bpeak_sort": num(r.backward_peak_bytes),
                    "gflops": "-" if gf is None else f"{gf:.2f}",
                    "gflops_sort": num(gf),
                    "sanity": r.sanity_status or "-",
                    "rmse": "-" if rmse is None else f"{rmse:.3g}",
                    "rmse_sort": num(rmse),
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
            machine=machine_of(doc, device),
            date=file_date(doc),
            commit=doc.short_commit or "?",
            data=item.data_href,
            dist=dist,
            headers=BOARD_HEADERS,
            rows=out,
            families=families,
            problems=problems,
            claims=self._claims(doc, rows),
            fingerprint=json.dumps(doc.machine, indent=1, sort_keys=True, default=str),
        )

    @staticmethod
    def _claims(doc, rows: list[RowResult]) -> list:
        """The published claims about this board's rows, as measured in it (kanbench.claims)."""
        from kanbench import claims

        key = (rows[0].workload_key, rows[0].device)
        return [v.line() + f' -- "{v.claim.quote}" ({v.claim.where})' for v in claims.check(doc) if (v.workload, v.device) == key]

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
                    "anchor": slugify(r.label),
                    "title": r.label,
                    "text": f"forward {ms(r.forward_ms)} ms (IQR {ms(r.forward_iqr_ms)}), backward {ms(r.backward_ms)} ms "
                    f"(IQR {ms(r.backward_iqr_ms)}), {r.n_samples} samples" + (f"; error: {r.error}" if r.error else ""),
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
        for item in sorted(self.docs, key=lambda i: file_date(i.doc), reverse=True):
            if item.doc.mode not in ("run", "leaderboard"):
                continue
            for r in item.doc.rows():
                machines = by_workload.setdefault(r.workload_key, {})
                label = machine_of(item.doc, r.device)
                entry = machines.setdefault(label, (item, {}))
                if entry[0] is item:
                    entry[1][r.impl] = ratio_to_mlp(item.doc, r)
        sections, figures = [], []
        for n, (workload, machines) in enumerate(sorted(by_workload.items())):
            series = {m: {i: v for i, v in ratios.items() if v is not None} for m, (_, ratios) in machines.items()}
            fig_id = f"machines-{n}"
            figures.append((fig_id, charts.machine_bars(series)))
            impls = sorted({i for ratios in series.values() for i in ratios})
            head = "".join(f"<th>{escape(m)}</th>" for m in series)
            body = "".join(
                f'<tr><td class="text">{escape(i)}</td>'
                + "".join(
                    f'<td data-sort="{num(series[m].get(i))}">{series[m][i]:.2f}x</td>' if i in series[m] else "<td>-</td>"
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
                    "anchor": slugify(workload),
                    "title": workload,
                    "text": "Cells: (forward+backward) / the MLP measured in the same file (paired by round).",
                    "charts": [fig_id],
                    "table": table,
                    "details": details,
                }
            )
        self.render("machines.html", "charts.html", title="Machines side by side", sections=sections, figures=figures)

    def index(self) -> None:
        files = []
        for item in sorted(self.docs, key=lambda i: file_date(i.doc), reverse=True):
            doc = item.doc
            files.append(
                {
                    "name": item.path.name,
                    "data": item.data_href,
                    "mode": doc.mode,
                    "machine": machine_of(doc),
                    "commit": doc.short_commit or "?",
                    "date": file_date(doc),
                    "rows": len(doc.results),
                    "pages": item.pages,
                    "command": display_command(doc.config.get("command") or ""),
                }
            )
        skipped = [(i.path.name, i.reason) for i in self.inputs if i.doc is None]
        from kanbench.site import front_page

        front, figures = front_page.panels(self)
        self.render(
            "index.html",
            "index.html",
            title="Results",
            files=files,
            skipped=skipped,
            start=self.start_here(),
            front=front,
            figures=figures,
        )

    def start_here(self) -> list:
        """What a visitor comes for, first: the newest leaderboard of each workload, the newest run
        table of each machine, the newest accuracy-suite run -- (label, href, detail), newest first."""
        newest: dict = {}
        for item in sorted(self.docs, key=lambda i: file_date(i.doc)):
            doc = item.doc
            boards = [(href, label) for href, label in item.pages if href.startswith("board-")]
            if doc.mode == "leaderboard" and boards:
                workload = (doc.rows()[0].workload or {}).get("preset") or doc.rows()[0].workload_key if doc.rows() else "?"
                newest[("leaderboard", workload)] = (
                    f"Leaderboard: {workload}",
                    boards[0][0],
                    f"{machine_of(doc)}, {file_date(doc)}",
                )
            elif doc.mode == "run" and boards:
                newest[("run", machine_of(doc))] = (f"Latest table: {machine_of(doc)}", boards[0][0], file_date(doc))
            elif doc.mode == "accuracy":
                newest[("accuracy", "")] = (
                    "Accuracy suite",
                    f"accuracy.html#{item.slug}",
                    f"{machine_of(doc)}, {file_date(doc)}",
                )
        order = {"leaderboard": 0, "accuracy": 1, "run": 2}
        return [v for k, v in sorted(newest.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))]


def display_command(command: str) -> str:
    """A recorded command as a reader would type it: a scheduler's runner script (``_submit.py
    <job folder>``) becomes "(a --executor slurm job)", and temporary paths of the machine that ran
    it keep only their file name."""
    import re

    if command.split(" ", 1)[0].endswith("_submit.py"):
        return "(a job of kanbench ... --executor slurm)"
    return re.sub(r"(?<![\w.])/tmp/(?:[^\s/]+/)*([^\s/]+)", r"\1", command)


def publish(paths: Sequence[str], out: Path, force: bool = False) -> dict:
    """Build the site from ``paths`` into ``out``; returns {"pages", "bytes", "skipped"}."""
    import plotly.offline

    from kanbench.site import accuracy_page, history_page, sweep_page, workloads_page

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
    history_page.write(site)
    sweep_page.write_sweeps(site)
    sweep_page.write_fits(site)
    accuracy_page.write(site)
    workloads_page.write(site)
    site.index()
    (out / MARKER).write_text("written by kanbench publish\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"pages": site.written, "bytes": size, "skipped": [(i.path.name, i.reason) for i in inputs if i.doc is None]}
