"""Tables across machines and across time, from several results files (pandas).

``machine_table`` -- one table per workload; rows are implementations, and every
machine gets a column group: forward ms, backward ms and the ratio of the
forward+backward time to that machine's MLP (same file, same device). A machine
is labelled from its fingerprint: the GPU model for CUDA rows, else the CPU model
with the torch thread count. The last row is the geometric mean of the ratios.
Files measured with different workloads are never mixed: each workload gets its
own table (or, with ``strict``, the files are refused).

``history_table`` -- one machine, many files, ordered by time: a column group per
run (commit and date), the same cells.
"""

from __future__ import annotations

from typing import Optional

from kanbench.machine import machine_label
from kanbench.records import ResultsDocument, device_kind
from kanbench.render import machine_columns_table, workload_title


class CrossHardwareError(ValueError):
    """Files that cannot be put side by side (the message says why); exit status 2."""

    pass


def frame(docs: list[ResultsDocument]):
    """One pandas row per measured record: machine label, impl, device, workload, times, ratio."""
    import pandas as pd

    rows = []
    for i, doc in enumerate(docs):
        for r in doc.rows():
            device = "cuda" if device_kind(r.device) == "gpu" else "cpu"
            rows.append(
                {
                    "file": i,
                    "path": doc.path or f"#{i}",
                    "machine": machine_label(doc.machine, device, r.threads or doc.threads),
                    "host": doc.machine.get("hostname", "?"),
                    "timestamp": doc.machine.get("timestamp", ""),
                    "commit": doc.short_commit,
                    "impl": r.impl,
                    "device": device,
                    "workload": r.workload_key,
                    "workload_title": workload_title(r.workload),
                    "forward_ms": r.forward_ms if not r.failed else None,
                    "backward_ms": r.backward_ms if not r.failed else None,
                    "error": r.error or "",
                    # (forward+backward) / that file's MLP, paired by round where both have rounds
                    "ratio": _ratio(doc, r),
                }
            )
    df = pd.DataFrame(rows)
    if df.empty:
        raise CrossHardwareError("no rows in these files")
    df["ratio"] = df["ratio"].astype(float)
    return df


def _ratio(doc: ResultsDocument, row) -> Optional[float]:
    base = doc.baseline(row)
    return row.ratio_to(base) if base is not None else None


def _disambiguate(df, by: str):
    """Give each file+device its own column label, adding the host (then the file index) on clashes."""
    labels = df[["file", "device", by, "host"]].drop_duplicates()
    counts = labels.groupby(by)["file"].nunique()
    out = {}
    for _, row in labels.iterrows():
        name = row[by]
        if counts[name] > 1:
            name = f"{name} [{row['host']}]"
        out[(row["file"], row["device"])] = name
    # still clashing (same host twice): number them
    seen: dict = {}
    for key in sorted(out):
        name = out[key]
        if name in seen.values():
            name = f"{name} #{key[0]}"
        seen[key] = name
    df = df.copy()
    df["column"] = [seen[(f, d)] for f, d in zip(df["file"], df["device"])]
    return df


def machine_table(docs: list[ResultsDocument], strict: bool = False) -> str:
    df = frame(docs)
    workloads = list(dict.fromkeys(df["workload"]))
    if strict and len(workloads) > 1:
        raise CrossHardwareError(
            "these files were measured with different workloads (" + ", ".join(workloads) + "); "
            "compare like with like, or drop --strict to get one table per workload"
        )
    parts = []
    for w in workloads:
        sub = _disambiguate(df[df["workload"] == w], "machine")
        order = list(dict.fromkeys(sub.sort_values(["device", "file"])["column"]))
        parts.append(machine_columns_table(sub, order, sub["workload_title"].iloc[0]))
    legend = (
        "Cells: median forward and backward time per step (ms) and (forward+backward) / the same machine's MLP "
        "(the median of per-round ratios where both rows have rounds)."
    )
    return "\n\n".join(parts + [legend])


def history_table(docs: list[ResultsDocument]) -> str:
    df = frame(docs)
    machines = df["machine"].unique()
    if len(set(df["host"])) > 1:
        raise CrossHardwareError(
            "history needs files from one machine; these come from "
            + ", ".join(sorted(set(df["host"])))
            + " (use --by machine to put machines side by side)"
        )
    df = df.copy()
    df["column"] = [
        f"{c or 'no-git'} {t[:16]}" + (" gpu" if d == "cuda" and len(machines) > 1 else "")
        for c, t, d in zip(df["commit"], df["timestamp"], df["device"])
    ]
    parts = []
    for w in dict.fromkeys(df["workload"]):
        sub = df[df["workload"] == w]
        order = list(dict.fromkeys(sub.sort_values(["timestamp", "file"])["column"]))
        parts.append(machine_columns_table(sub, order, sub["workload_title"].iloc[0] + f" on {', '.join(machines)}"))
    return "\n\n".join(parts)
