"""Markdown tables from results documents (rendered with ``tabulate``).

``seed`` -- the seed README's table: one row per implementation-device
(``<impl>-cpu``, ``<impl>-gpu``), forward/backward median time, forward/backward
peak memory, number of parameters and of trainable parameters.

``full`` -- adds the spread (IQR) and sample count, the ratio to the MLP row
measured on the same device in the same run, and the memory increase per phase.

Rows that could not be measured keep their place; their reasons are listed
under the table, one line each.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Iterable, Optional

from tabulate import DataRow, Line, TableFormat, tabulate

from kanbench.baseline import BASELINE
from kanbench.records import FitResult, ResultsDocument, RowResult, row_label
from kanbench.stats import geometric_mean

SEED_TABLE = TableFormat(
    lineabove=None,
    linebelowheader=Line("|", "-", "|", ""),
    linebetweenrows=None,
    linebelow=None,
    headerrow=DataRow("|", "|", ""),
    datarow=DataRow("|", "|", ""),
    padding=1,
    with_header_hide=None,
)

SEED_HEADERS = ["", "forward", "backward", "forward", "backward", "num params", "num trainable params"]

GIB = 1024**3


def fmt_ms(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan ms"
    return f"{value:.2f} ms"


def fmt_ms_precise(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_bytes(value) -> str:
    """GB (GiB, as the seed) with two decimals; smaller figures in MB or KB so they do not read 0.00."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan GB"
    if abs(value) >= 0.01 * GIB:
        return f"{value / GIB:.2f} GB"
    if abs(value) >= 0.01 * 1024**2:
        return f"{value / 1024**2:.2f} MB"
    return f"{value / 1024:.2f} KB"


def fmt_int(value) -> str:
    return "-" if value is None else str(int(value))


def fmt_ratio(value) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}x"


def sort_key(record: RowResult):
    return (record.impl, 0 if record.device == "cpu" else 1, record.device)


def baseline_ratios(records: list[RowResult], phase: str) -> dict[int, Optional[float]]:
    """Each record's time over the MLP's on the same device and workload (see :meth:`RowResult.ratio_to`)."""
    base = {(r.device, r.workload_key): r for r in records if r.is_baseline and r.usable}
    out = {}
    for r in records:
        b = base.get((r.device, r.workload_key))
        out[id(r)] = r.ratio_to(b, (phase,)) if b is not None else None
    return out


#: a baseline whose worker processes differ more than this (slowest / fastest) flags the run
UNSTABLE_SPREAD = 1.25
#: a row that page-faults more than this per measured step gets a note (see kanbench.allocator)
FAULTY_STEPS = 1000


def _match_line(records: list[RowResult]) -> list[str]:
    """``--match params (target 4,201): mlp [2,105,1] 4,201; ...`` when the rows were matched."""
    matched = [r for r in records if r.match]
    if not matched:
        return []
    m = matched[0].match
    parts = []
    for r in matched:
        widths = ",".join(str(w) for w in r.built_widths)
        off = r.match.get("error") or 0
        parts.append(f"{r.impl} [{widths}]" + (f" ({100 * off:.1f}% off)" if off > 0.02 else ""))
    return [f"- matched {m.get('metric')} (target {m.get('target', 0):,.0f}): " + "; ".join(parts)]


def _errors_block(records: Iterable[RowResult]) -> list[str]:
    records = list(records)
    lines = _match_line(records)
    lines += [f"- {r.label}: {r.error}" for r in records if r.error]
    lines += [f"- {r.label}: {r.note}" for r in records if r.note and not r.error and "path" in r.note]
    lines += [
        f"- {r.label}: sanity {r.sanity_status}: {r.sanity_reason}"
        for r in records
        if r.sanity_status in ("warn", "fail") and not r.error
    ]
    for r in records:
        spread = r.process_spread() if r.is_baseline else None
        if spread is not None and spread > UNSTABLE_SPREAD:
            lines.append(
                f"- note: the machine changed speed during this run ({r.label}'s worker processes differ "
                f"{spread:.2f}x); ratios to the MLP are paired by round but may still be off: measure again"
            )
    faulty = [r for r in records if (r.minor_faults_per_step or 0) > FAULTY_STEPS]
    if faulty:
        lines.append(
            "- note: "
            + ", ".join(f"{r.label} {r.minor_faults_per_step:,.0f}" for r in faulty)
            + " page faults per step: its times include the kernel mapping in fresh memory every step "
            "(allocator: " + (faulty[0].allocator or "unknown") + ")"
        )
    return lines


def seed_table(records: list[RowResult]) -> str:
    rows = []
    for r in sorted(records, key=sort_key):
        failed = r.failed and r.forward_ms is None
        rows.append(
            [
                r.label,
                "failed" if failed else fmt_ms(r.forward_ms),
                "failed" if failed else fmt_ms(r.backward_ms),
                fmt_bytes(r.forward_peak_bytes),
                fmt_bytes(r.backward_peak_bytes),
                fmt_int(r.params),
                fmt_int(r.trainable_params),
            ]
        )
    table = tabulate(
        rows,
        headers=SEED_HEADERS,
        tablefmt=SEED_TABLE,
        colalign=("left",) + ("right",) * 6,
        disable_numparse=True,
    )
    return "\n".join([table, *_errors_block(sorted(records, key=sort_key))])


FULL_HEADERS = [
    "",
    "fwd ms",
    "fwd IQR",
    "bwd ms",
    "bwd IQR",
    "fwd/mlp",
    "bwd/mlp",
    "n",
    "fwd peak",
    "fwd +",
    "bwd peak",
    "bwd +",
    "params",
    "trainable",
    "step GF/s",
    "% peak",
]


def _step_gflops(r: RowResult) -> str:
    roof = r.roofline or {}
    return f"{roof['step_gflops']:.3g}" if roof.get("step_gflops") else "-"


def _peak_share(r: RowResult) -> str:
    roof = r.roofline or {}
    return f"{100 * roof['peak_share']:.2g}% ({roof['bound'][0]})" if roof.get("peak_share") else "-"


def full_table(records: list[RowResult]) -> str:
    records = sorted(records, key=sort_key)
    fr = baseline_ratios(records, "forward")
    br = baseline_ratios(records, "backward")
    rows = []
    for r in records:
        rows.append(
            [
                r.label,
                fmt_ms_precise(r.forward_ms),
                fmt_ms_precise(r.forward_iqr_ms),
                fmt_ms_precise(r.backward_ms),
                fmt_ms_precise(r.backward_iqr_ms),
                fmt_ratio(fr[id(r)]),
                fmt_ratio(br[id(r)]),
                fmt_int(r.n_samples),
                fmt_bytes(r.forward_peak_bytes),
                fmt_bytes(r.forward_peak_increase_bytes),
                fmt_bytes(r.backward_peak_bytes),
                fmt_bytes(r.backward_peak_increase_bytes),
                fmt_int(r.params),
                fmt_int(r.trainable_params),
                _step_gflops(r),
                _peak_share(r),
            ]
        )
    table = tabulate(
        rows,
        headers=FULL_HEADERS,
        tablefmt="pipe",
        colalign=("left",) + ("right",) * (len(FULL_HEADERS) - 1),
        disable_numparse=True,
    )
    return "\n".join([table, *_errors_block(records)])


FORMATS = {"seed": seed_table, "full": full_table}


def workload_title(workload: dict) -> str:
    widths = workload.get("widths")
    w = f"[{','.join(str(x) for x in widths)}]" if widths else "?"
    preset = workload.get("preset")
    text = f"widths {w}, batch {workload.get('batch', '?')}, {workload.get('dtype', 'float32')}"
    return f"{text} (preset `{preset}`)" if preset else text


def group_by_workload(doc: ResultsDocument) -> "OrderedDict[str, tuple[dict, list[RowResult]]]":
    groups: "OrderedDict[str, tuple[dict, list[RowResult]]]" = OrderedDict()
    for r in doc.rows():
        groups.setdefault(r.workload_key, (r.workload, []))[1].append(r)
    return groups


def render_document(doc: ResultsDocument, fmt: str = "seed", title: bool = False) -> str:
    from kanbench.machine import machine_label

    table_fn = FORMATS[fmt]
    parts = []
    groups = group_by_workload(doc)
    if title:
        m = doc.machine
        parts.append(f"## {doc.path or 'results'} -- {machine_label(m, 'cpu', doc.threads)}, {m.get('timestamp', '')}")
    for w, records in groups.values():
        if title or len(groups) > 1:
            parts.append(f"### {workload_title(w)}")
        parts.append(table_fn(records))
    if not groups:
        parts.append("(no rows)")
    if doc.skipped:
        parts.append("Skipped (not available here):\n" + "\n".join(f"- {s.impl}: {s.reason}" for s in doc.skipped))
    if doc.interrupted:
        parts.append("(run interrupted: the rows above are those measured before Ctrl-C)")
    return "\n\n".join(parts)


def render_documents(docs: list[ResultsDocument], fmt: str = "seed") -> str:
    if len(docs) == 1:
        return render_document(docs[0], fmt)
    return "\n\n".join(render_document(d, fmt, title=True) for d in docs)


def sweep_table(rows: list) -> str:
    """One sweep axis (``kanbench.axes.AxisPoint`` rows): a line per implementation-device, a column per value."""
    values = list(dict.fromkeys(r.value for r in rows))
    by: dict = {}
    for r in rows:
        by.setdefault(r.record.label, []).append(r)
    body = []
    for name, pts in sorted(by.items()):
        cells = {p.value: p for p in pts}
        line = [name]
        for v in values:
            p = cells.get(v)
            if p is None:
                line.append("")
            elif p.record.failed:
                line.append(p.record.error_kind)
            else:
                text = f"{p.record.forward_ms:.3g} / {p.record.backward_ms:.3g}"
                if p.ratio is not None:
                    text += f" ({p.ratio:.2f}x)"
                if p.gflops is not None:
                    text += f" {p.gflops:.2g} GF/s"
                line.append(text)
        body.append(line)
    return tabulate(body, headers=["", *[str(v) for v in values]], tablefmt="pipe", disable_numparse=True)


def fit_table(records: list[FitResult]) -> str:
    """Fit runs: per implementation-device, test RMSE, ms per step and time to target for every task."""
    tasks = list(dict.fromkeys(r.task for r in records))
    impls = sorted(dict.fromkeys((r.impl, r.device) for r in records), key=lambda k: (k[0] != BASELINE, k))
    headers = ["", *[f"{t} RMSE" for t in tasks], *[f"{t} ms/step" for t in tasks], *[f"{t} to target (s)" for t in tasks]]
    body = []
    cells = {(r.impl, r.device, r.task): r for r in records}
    for impl, device in impls:
        line = [row_label(impl, device)]
        for what in ("rmse", "ms", "target"):
            for t in tasks:
                r = cells.get((impl, device, t))
                if r is None:
                    line.append("")
                elif r.failed and what == "rmse":
                    finite = r.test_rmse is not None and math.isfinite(r.test_rmse)
                    line.append(r.error_kind + (f" ({r.test_rmse:.3g})" if finite else ""))
                elif what == "rmse":
                    line.append(f"{r.test_rmse:.3g}")
                elif what == "ms":
                    line.append("-" if r.step_ms is None else f"{r.step_ms:.3g}")
                else:
                    line.append("not reached" if r.time_to_target_s is None else f"{r.time_to_target_s:.3g}")
        body.append(line)
    text = tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True)
    errors = [f"- {r.impl}-{r.device} on {r.task}: {r.error}" for r in records if r.failed]
    targets = ", ".join(f"{t} {next(r.target_rmse for r in records if r.task == t):.3g}" for t in tasks)
    return "\n".join([text, "", f"Targets (2% of the test targets' std): {targets}.", *errors])


# ----------------------------------------------------------------------------- comparisons


def _fmt_value(median: Optional[float], spread: Optional[float], normalized: bool) -> str:
    if median is None or not math.isfinite(median):
        return "-"
    half = (spread or 0.0) / 2
    if normalized:
        return f"{median:.3g}±{half:.2g}x"
    return f"{median:.3g}±{half:.2g}ms"


def comparison_table(comparison, only_changed: bool = False) -> str:
    """A :class:`kanbench.compare.Comparison` as markdown in the style of ``asv compare``:
    a mark per row and phase, then a summary line."""
    normalized = comparison.normalize is not None
    rows = []
    order = {"slower": 0, "failed": 1, "faster": 2, "not significant": 3, "fixed": 4, "unchanged": 5}
    for r in sorted(comparison.rows, key=lambda r: (order[r.verdict], r.label, r.phase)):
        if only_changed and r.verdict in ("unchanged", "fixed"):
            continue
        rows.append(
            [
                r.mark,
                _fmt_value(r.base_median, r.base_spread, normalized),
                _fmt_value(r.new_median, r.new_spread, normalized),
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                "-" if r.p_value is None else f"{r.p_value:.2g}",
                f"{r.label} {r.phase}",
                r.note,
            ]
        )
    unit = " (x MLP)" if normalized else ""
    headers = [
        "Change",
        f"Before [{comparison.base_name}]{unit}",
        f"After [{comparison.new_name}]{unit}",
        "Ratio",
        "p",
        "Benchmark (phase)",
        "Note",
    ]
    parts = list(comparison.warnings)
    parts += [tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True)] if rows else ["(no changes)"]
    for title, items in (("Only in BASE", comparison.only_base), ("Only in NEW", comparison.only_new)):
        if items:
            parts.append(f"{title}: {', '.join(items)}")
    if comparison.notes:
        parts.append("\n".join(comparison.notes))
    parts.append(summary_line(comparison))
    return "\n\n".join(parts)


def summary_line(c) -> str:
    mode = "normalized by the MLP of each run" if c.normalize else "absolute times"
    verdict = "REGRESSION" if c.regressed else "OK"
    return (
        f"{verdict}: {c.count('slower')} slower, {c.count('failed')} newly failing, {c.count('faster')} faster, "
        f"{c.count('not significant')} not significant, {c.count('unchanged') + c.count('fixed')} unchanged "
        f"(threshold {c.threshold:.2f}, alpha {c.alpha:g}, {mode})"
    )


# ----------------------------------------------------------------------------- machines and history


def _fmt_cell(v: Optional[float], kind: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if kind == "ratio":
        return f"{v:.2f}x"
    return f"{v:.3g}"


def machine_columns_table(df, columns_order: list[str], title: str) -> str:
    """Cross-hardware and history tables: a row per implementation, a column group per machine or run
    (``df`` from :func:`kanbench.cross_hardware.frame` with a ``column`` label), a geometric-mean row."""
    impls = sorted(df["impl"].unique(), key=lambda s: (s != BASELINE, s))
    headers = ["implementation"]
    for c in columns_order:
        headers += [f"{c} fwd ms", f"{c} bwd ms", f"{c} /mlp"]
    body = []
    present = {impl: set(df[df["impl"] == impl]["column"]) for impl in impls}
    for impl in impls:
        line = [impl]
        for c in columns_order:
            sub = df[(df["impl"] == impl) & (df["column"] == c)]
            if sub.empty:
                line += ["-", "-", "-"]
                continue
            r = sub.iloc[0]
            if isinstance(r["error"], str) and r["error"]:
                line += ["failed", "failed", "-"]
                continue
            line += [_fmt_cell(r["forward_ms"], "ms"), _fmt_cell(r["backward_ms"], "ms"), _fmt_cell(r["ratio"], "ratio")]
        if len(present[impl]) < len(columns_order):
            line[0] = f"{impl} (only on: {', '.join(sorted(present[impl]))})"
        body.append(line)
    geo = ["geometric mean (/mlp)"]
    for c in columns_order:
        ratios = df[(df["column"] == c) & (df["impl"] != BASELINE)]["ratio"].dropna().tolist()
        geo += ["", "", _fmt_cell(geometric_mean(ratios), "ratio")]
    body.append(geo)
    return f"### {title}\n\n" + tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True)
