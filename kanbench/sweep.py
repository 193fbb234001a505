"""Sweeps: how time and memory grow with batch, width and grid size (and what
``torch.compile`` and the dtype change), for every implementation and device.

Axes are swept one at a time from a base workload (the preset): ``batch`` sets the
batch size, ``width`` sets widths to [W, W, out] (input and hidden width W), ``grid``
sets the grid size G of implementations that take one (``options=("grid_size",)``),
``compile`` is off/on (``torch.compile`` around the model) and ``dtype`` is float32,
float64 or bfloat16 (skipped where the device cannot run it). Every implementation is
also measured once at the base point, so that every point has an MLP to be compared
with. A point reached from several axes is measured once and tagged with each.

Points of one implementation, device and axis run in ascending order: when one runs
out of memory, the larger ones are skipped with that reason and the sweep goes on.
``--shard i/n`` measures every n-th point (from the i-th) of the same deterministic
list, so n processes or machines can split a sweep; ``kanbench report`` merges their
files again.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from kanbench.baseline import BASELINE
from kanbench.records import ResultsDocument, RowResult
from kanbench.runner import RowJob, empty_record
from kanbench.timing import TimingConfig
from kanbench.workload import Workload, WorkloadError, parse_dtype

AXES = ("batch", "width", "grid", "compile", "dtype")
NUMERIC_AXES = ("batch", "width", "grid")


class SweepError(ValueError):
    """Axes that cannot be swept (empty, malformed, contradictory); exit status 2."""


def parse_axis(axis: str, text: Optional[str]) -> list:
    if text is None:
        return []
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise SweepError(f"--{axis} is empty")
    if axis in NUMERIC_AXES:
        try:
            values = [int(t) for t in items]
        except ValueError:
            raise SweepError(f"--{axis} needs positive integers, got {text!r}") from None
        if any(v < 1 for v in values):
            raise SweepError(f"--{axis} needs positive integers, got {text!r}")
    elif axis == "compile":
        mapping = {"off": False, "on": True, "false": False, "true": True, "0": False, "1": True}
        if any(t.lower() not in mapping for t in items):
            raise SweepError(f"--compile takes off,on; got {text!r}")
        values = [mapping[t.lower()] for t in items]
    elif axis == "dtype":
        try:
            values = [parse_dtype(t) for t in items]
        except WorkloadError as exc:
            raise SweepError(str(exc)) from None
    else:
        raise SweepError(f"unknown axis {axis!r}")
    if len(set(values)) != len(values):
        raise SweepError(f"--{axis} repeats a value: {text!r}")
    return sorted(values) if axis in NUMERIC_AXES else values


def parse_shard(text: Optional[str]) -> tuple[int, int]:
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise SweepError(f"--shard takes i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise SweepError(f"--shard {text}: need 0 <= i < n")
    return i, n


@dataclass
class Point:
    """One point of a sweep: an implementation on a device at a workload, with its axis tags."""

    impl: str
    device: str
    workload: Workload
    options: dict = field(default_factory=dict)
    compile: bool = False
    tags: list = field(default_factory=list)  # [{"axis": ..., "value": ...}]

    @property
    def key(self) -> tuple:
        return (
            self.impl,
            self.device,
            self.workload.widths,
            self.workload.batch,
            self.workload.dtype,
            tuple(sorted(self.options.items())),
            self.compile,
        )


def dtype_supported(dtype: str, device: str) -> Optional[str]:
    """None when ``dtype`` runs on ``device``, else why not."""
    import torch

    if dtype != "bfloat16":
        return None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "CUDA is not available"
        try:  # emulated bfloat16 (pre-Ampere GPUs) runs, slowly: it is not support worth measuring
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch before 2.3 has no including_emulation and never counted emulation
            native = torch.cuda.is_bf16_supported()
        return None if native else "this GPU has no native bfloat16 support (only emulation)"
    try:
        a = torch.ones(4, 4, dtype=torch.bfloat16)
        (a @ a).sum().item()
    except Exception as exc:  # pragma: no cover - depends on the CPU build
        return f"bfloat16 does not run on this CPU ({type(exc).__name__})"
    return None


def plan(
    impls: Sequence[str],
    devices: Sequence[str],
    base: Workload,
    axes: dict,
    grid_capable: Callable[[str], bool],
    base_grid: int = 5,
) -> list[Point]:
    """Every point of a one-axis-at-a-time sweep, deduplicated, in a deterministic order."""
    if not any(axes.get(a) for a in AXES):
        raise SweepError("nothing to sweep: give at least one of --batch, --width, --grid, --compile, --dtype")
    points: dict[tuple, Point] = {}

    def add(impl, device, workload, options, compiled, axis, value):
        p = Point(impl, device, workload, dict(options), compiled)
        existing = points.setdefault(p.key, p)
        existing.tags.append({"axis": axis, "value": value})

    for impl in impls:
        for device in devices:
            add(impl, device, base, {}, False, "base", None)
            for b in axes.get("batch") or []:
                add(impl, device, base.with_(batch=b, preset=None), {}, False, "batch", b)
            for w in axes.get("width") or []:
                add(impl, device, base.with_(widths=(w, w, base.widths[-1]), preset=None), {}, False, "width", w)
            if grid_capable(impl):
                for g in axes.get("grid") or []:
                    add(impl, device, base, {} if g == base_grid else {"grid_size": g}, False, "grid", g)
            for c in axes.get("compile") or []:
                add(impl, device, base, {}, c, "compile", "on" if c else "off")
            for d in axes.get("dtype") or []:
                add(impl, device, base.with_(dtype=d, preset=None), {}, False, "dtype", d)
    return list(points.values())


def _sort_value(tag_value):
    return (0, tag_value) if isinstance(tag_value, (int, float)) else (1, str(tag_value))


def run(
    points: list[Point],
    document: ResultsDocument,
    write: Callable[[ResultsDocument], None],
    measure: Optional[Callable[[RowJob], RowResult]],
    timing: TimingConfig,
    threads: Optional[int] = None,
    extra_dirs: Sequence[str] = (),
    budget_s: Optional[float] = None,
    progress: Optional[Callable[[int, int, float, Point, RowResult], None]] = None,
    measure_many: Optional[Callable[[list[RowJob]], list[RowResult]]] = None,
    batch_size: int = 1,
) -> ResultsDocument:
    """Measure the points in order, ``batch_size`` at a time (``measure_many`` measures a batch,
    e.g. interleaved; else ``measure`` one job at a time); skip larger points after an
    out-of-memory on the same axis (decided between batches)."""
    if measure_many is None:
        measure_many = lambda jobs: [measure(j) for j in jobs]  # noqa: E731
    oom_at: dict[tuple, object] = {}  # (impl, device, axis) -> smallest value that ran out of memory
    started = time.monotonic()
    done = 0
    for start in range(0, len(points), max(1, batch_size)):
        batch = points[start : start + max(1, batch_size)]
        records: dict[int, RowResult] = {}
        to_measure: list[tuple[int, RowJob]] = []
        for i, point in enumerate(batch):
            job = RowJob(
                impl=point.impl,
                device=point.device,
                workload=point.workload,
                timing=timing,
                threads=threads,
                extra_dirs=tuple(extra_dirs),
                budget_s=budget_s,
                options=point.options,
                compile=point.compile,
            )
            skip = _oom_skip(point, oom_at)
            reason = dtype_supported(point.workload.dtype, point.device)
            if skip:
                records[i] = empty_record(job).fail("skipped", skip)
            elif reason:
                records[i] = empty_record(job).fail("unsupported", reason)
            else:
                to_measure.append((i, job))
        if to_measure:
            for (i, _), record in zip(to_measure, measure_many([job for _, job in to_measure])):
                records[i] = record
        for i, point in enumerate(batch):
            record = records[i]
            record.sweep = point.tags
            if record.error_kind == "oom":
                for tag in point.tags:
                    if tag["axis"] in NUMERIC_AXES:
                        key = (point.impl, point.device, tag["axis"])
                        oom_at[key] = min(oom_at.get(key, tag["value"]), tag["value"])
            document.results.append(record)
            done += 1
            if progress:
                elapsed = time.monotonic() - started
                progress(done, len(points), elapsed / done * (len(points) - done), point, record)
        write(document)
    document.complete = True
    write(document)
    return document


def _oom_skip(point: Point, oom_at: dict) -> Optional[str]:
    for tag in point.tags:
        limit = oom_at.get((point.impl, point.device, tag["axis"]))
        if limit is not None and tag["axis"] in NUMERIC_AXES and tag["value"] > limit:
            return f"skipped: {tag['axis']}={limit} already ran out of memory"
    return None


def progress_bar(stream=sys.stderr):
    def show(i: int, n: int, eta: float, point: Point, record: RowResult) -> None:
        width = 20
        done = int(width * i / n)
        tags = ", ".join(f"{t['axis']}={t['value']}" for t in point.tags if t["axis"] != "base") or "base"
        status = (
            f"{record.error_kind}: {record.error}"
            if record.failed
            else (f"fwd {record.forward_ms:.3g} ms bwd {record.backward_ms:.3g} ms")
        )
        eta_text = f"{int(eta // 60)}m{int(eta % 60):02d}s"
        print(
            f"[{'#' * done}{'.' * (width - done)}] {i}/{n} ETA {eta_text}  {point.impl}-{point.device} ({tags}): {status}",
            file=stream,
            flush=True,
        )

    return show


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
