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

from kanbench.results import record_workload

BASELINE = "mlp"

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


def sort_key(record: dict):
    device = str(record.get("device", ""))
    return (record.get("impl", ""), 0 if device == "cpu" else 1, device)


def label(record: dict) -> str:
    if record.get("label"):
        return record["label"]
    device = str(record.get("device", ""))
    return f"{record.get('impl')}-{'gpu' if device.startswith('cuda') else 'cpu'}"


def baseline_ratios(records: list[dict], phase: str) -> dict[int, Optional[float]]:
    """Each record's median divided by the MLP's on the same device (same workload)."""
    base = {}
    for r in records:
        if r.get("impl") == BASELINE and r.get(f"{phase}_ms") and not r.get("error"):
            base[r.get("device")] = r[f"{phase}_ms"]
    out = {}
    for r in records:
        b = base.get(r.get("device"))
        v = r.get(f"{phase}_ms")
        out[id(r)] = (v / b) if (b and v is not None and not r.get("error")) else None
    return out


def _errors_block(records: Iterable[dict]) -> list[str]:
    lines = []
    for r in records:
        if r.get("error"):
            lines.append(f"- {label(r)}: {r['error']}")
    return lines


def seed_table(records: list[dict]) -> str:
    rows = []
    for r in sorted(records, key=sort_key):
        failed = bool(r.get("error")) and r.get("forward_ms") is None
        rows.append(
            [
                label(r),
                "failed" if failed else fmt_ms(r.get("forward_ms")),
                "failed" if failed else fmt_ms(r.get("backward_ms")),
                fmt_bytes(r.get("forward_peak_bytes")),
                fmt_bytes(r.get("backward_peak_bytes")),
                fmt_int(r.get("params")),
                fmt_int(r.get("trainable_params")),
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
]


def full_table(records: list[dict]) -> str:
    records = sorted(records, key=sort_key)
    fr = baseline_ratios(records, "forward")
    br = baseline_ratios(records, "backward")
    rows = []
    for r in records:
        rows.append(
            [
                label(r),
                fmt_ms_precise(r.get("forward_ms")),
                fmt_ms_precise(r.get("forward_iqr_ms")),
                fmt_ms_precise(r.get("backward_ms")),
                fmt_ms_precise(r.get("backward_iqr_ms")),
                fmt_ratio(fr[id(r)]),
                fmt_ratio(br[id(r)]),
                fmt_int(r.get("n_samples")),
                fmt_bytes(r.get("forward_peak_bytes")),
                fmt_bytes(r.get("forward_peak_increase_bytes")),
                fmt_bytes(r.get("backward_peak_bytes")),
                fmt_bytes(r.get("backward_peak_increase_bytes")),
                fmt_int(r.get("params")),
                fmt_int(r.get("trainable_params")),
            ]
        )
    table = tabulate(rows, headers=FULL_HEADERS, tablefmt="pipe", colalign=("left",) + ("right",) * 13, disable_numparse=True)
    return "\n".join([table, *_errors_block(records)])


FORMATS = {"seed": seed_table, "full": full_table}


def workload_title(workload: dict) -> str:
    widths = workload.get("widths")
    w = f"[{','.join(str(x) for x in widths)}]" if widths else "?"
    preset = workload.get("preset")
    text = f"widths {w}, batch {workload.get('batch', '?')}, {workload.get('dtype', 'float32')}"
    return f"{text} (preset `{preset}`)" if preset else text


def group_by_workload(doc: dict) -> "OrderedDict[str, tuple[dict, list[dict]]]":
    groups: "OrderedDict[str, tuple[dict, list[dict]]]" = OrderedDict()
    for r in doc.get("results", []):
        w = record_workload(r, doc)
        key = repr(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in w.items() if k != "preset"))
        groups.setdefault(key, (w, []))[1].append(r)
    return groups


def render_document(doc: dict, fmt: str = "seed", title: bool = False) -> str:
    from kanbench.machine import machine_label

    table_fn = FORMATS[fmt]
    parts = []
    groups = group_by_workload(doc)
    if title:
        m = doc.get("machine", {})
        threads = doc.get("config", {}).get("threads")
        parts.append(f"## {doc.get('_path', 'results')} -- {machine_label(m, 'cpu', threads)}, {m.get('timestamp', '')}")
    for w, records in groups.values():
        if title or len(groups) > 1:
            parts.append(f"### {workload_title(w)}")
        parts.append(table_fn(records))
    if not groups:
        parts.append("(no rows)")
    skipped = doc.get("skipped") or []
    if skipped:
        parts.append("Skipped (not available here):\n" + "\n".join(f"- {s['impl']}: {s['reason']}" for s in skipped))
    if doc.get("interrupted"):
        parts.append("(run interrupted: the rows above are those measured before Ctrl-C)")
    return "\n\n".join(parts)


def render_documents(docs: list[dict], fmt: str = "seed") -> str:
    if len(docs) == 1:
        return render_document(docs[0], fmt)
    return "\n\n".join(render_document(d, fmt, title=True) for d in docs)
