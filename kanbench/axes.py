"""Sweep axes: their names, and reading sweep results along one axis.

What both the sweep (which measures points along the axes, :mod:`kanbench.sweep`) and the
reports of sweep files (:mod:`kanbench.plots`, the site) need, without the run logic:
the axes, each measured point of an axis with its ratio to the MLP and achieved GFLOP/s
(:func:`axis_rows`), and where an implementation crosses the MLP (:func:`crossings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from kanbench.baseline import BASELINE
from kanbench.records import ResultsDocument, RowResult

AXES = ("batch", "width", "grid", "compile", "dtype")
NUMERIC_AXES = ("batch", "width", "grid")


def _sort_value(tag_value):
    return (0, tag_value) if isinstance(tag_value, (int, float)) else (1, str(tag_value))


@dataclass
class AxisPoint:
    """One measured point of a sweep axis, with its ratio to the MLP and achieved GFLOP/s."""

    impl: str
    device: str
    value: object
    record: RowResult
    ratio: Optional[float] = None  #: (forward+backward) / the MLP's at the same device, workload and compile
    gflops: Optional[float] = None


def axis_rows(docs: list[ResultsDocument], axis: str) -> list[AxisPoint]:
    """Records tagged with ``axis`` from (merged) sweep documents, with value, ratio to the MLP
    (forward+backward, same device/workload/compile) and achieved GFLOP/s."""
    from kanbench.flops import gflops_per_second

    records = [r for d in docs for r in d.rows()]

    def key(r: RowResult):
        return (r.device, r.workload_key, bool(r.compile))

    mlp = {key(r): r for r in records if r.is_baseline and r.usable}
    rows = []
    for r in records:
        for tag in r.sweep or []:
            if tag["axis"] != axis:
                continue
            row = AxisPoint(r.impl, r.device, tag["value"], r)
            base = mlp.get(key(r))
            if base and r.usable:
                row.ratio = (r.forward_ms + r.backward_ms) / (base.forward_ms + base.backward_ms)
            if r.flops_per_sample and r.forward_ms:
                row.gflops = gflops_per_second(r.flops_per_sample, r.workload.get("batch", 1), r.forward_ms)
            rows.append(row)
    rows.sort(key=lambda x: (x.impl, x.device, _sort_value(x.value)))
    return rows


def crossings(rows: list[AxisPoint]) -> dict:
    """Where each implementation's ratio to the MLP crosses 1 along a numeric axis (log-interpolated)."""
    out = {}
    by: dict = {}
    for r in rows:
        if r.ratio is not None and r.impl != BASELINE:
            by.setdefault((r.impl, r.device), []).append((r.value, r.ratio))
    for k, pts in by.items():
        pts.sort()
        last = None  # index of the last point off 1
        for i, (x1, y1) in enumerate(pts):
            if y1 == 1:
                continue
            if last is not None and (pts[last][1] - 1) * (y1 - 1) < 0:
                x0, y0 = pts[last]
                on = [x for x, y in pts[last + 1 : i] if y == 1]
                if on:  # measured exactly at 1 between the two sides: it crosses there
                    out[k] = on[0]
                else:
                    t = math.log(y0) / (math.log(y0) - math.log(y1))
                    out[k] = math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))
                break
            last = i
    return out
