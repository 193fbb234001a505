"""How far each row is from what the machine can do: the roofline model.

A row's analytic forward FLOPs per sample (its spec's ``flops``) times the batch, over its measured
forward time, is its achieved forward GFLOP/s; the backward is counted as twice the forward's FLOPs
(a matmul's backward is two matmuls of the forward's size: the usual convention), over the measured
backward time. The training step's rate, 3 x forward FLOPs over forward + backward time, is set
against two ceilings measured on this machine by :mod:`kanbench.peak`:

- the compute peak P (GFLOP/s of a large GEMM), and
- the memory roof B x I, where B is the copy bandwidth (GB/s) and I the row's arithmetic intensity:
  forward FLOPs over the fewest bytes a forward must move (every parameter read once, every
  layer's input and output written or read once per sample).

A row is **memory-bound** when I is below the machine balance P / B (it could not reach P even with
perfect kernels), else **compute-bound**. ``peak_share`` is the step's rate over P;
``roofline_share`` over min(P, B x I), its attainable rate. Rows far below their roofline at small
sizes are bound by neither: per-call overhead (argument parsing, allocation, Python) dominates.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

#: backward FLOPs relative to the forward's
BACKWARD_FACTOR = 2.0
ITEMSIZE = {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}


def forward_bytes(widths, params: int, batch: int, dtype: str = "float32") -> float:
    """The fewest bytes a forward moves: every parameter once, every layer boundary once per sample."""
    return float((params + batch * sum(widths)) * ITEMSIZE.get(dtype, 4))


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def row_figures(row, peak) -> Optional[dict]:
    """The roofline figures of one measured row against ``peak`` (a :class:`kanbench.peak.Peak`);
    None when the row has no FLOP count, no times or no parameter count."""
    if row.failed or not row.flops_per_sample or not row.forward_ms or not row.backward_ms or not row.params:
        return None
    workload = row.workload or {}
    batch = workload.get("batch") or 1
    widths = row.widths or workload.get("widths") or []
    from kanbench.flops import gflops_per_second

    flops = row.flops_per_sample * batch
    forward = gflops_per_second(row.flops_per_sample, batch, row.forward_ms)
    backward = gflops_per_second(BACKWARD_FACTOR * row.flops_per_sample, batch, row.backward_ms)
    step = gflops_per_second((1 + BACKWARD_FACTOR) * row.flops_per_sample, batch, row.forward_ms + row.backward_ms)
    intensity = flops / forward_bytes(widths, row.params, batch, workload.get("dtype", "float32"))
    attainable = min(peak.gflops, intensity * peak.gbytes_per_s)
    return {
        "forward_gflops": _sig(forward),
        "backward_gflops": _sig(backward),
        "step_gflops": _sig(step),
        "intensity_flops_per_byte": _sig(intensity),
        "bound": "memory" if intensity < peak.balance else "compute",
        "attainable_gflops": _sig(attainable),
        "peak_gflops": peak.gflops,
        "peak_share": _sig(step / peak.gflops),
        "roofline_share": _sig(step / attainable),
    }


def attach(document, cache: bool = True) -> None:
    """Measure (or read from the cache) the peaks of every device and dtype among the document's rows,
    store them in ``document.machine["peaks"]`` and set each row's roofline figures
    (``forward_gflops``, ``backward_gflops`` and ``roofline``)."""
    from kanbench import peak as peak_mod

    peaks: dict = {}
    for row in document.results:
        if not hasattr(row, "flops_per_sample") or not row.flops_per_sample:
            continue
        dtype = (row.workload or {}).get("dtype", "float32")
        key = f"{row.device.split(':')[0]}/{dtype}"
        if key not in peaks:
            try:
                peaks[key] = peak_mod.for_machine(document.machine, row.device, dtype, cache=cache)
            except Exception as exc:  # a probe that cannot run (no memory, no kernel for the dtype)
                peaks[key] = None
                document.machine.setdefault("peaks_failed", {})[key] = f"{type(exc).__name__}: {exc}"
        if peaks[key] is None:
            continue
        figures = row_figures(row, peaks[key])
        if figures:
            row.forward_gflops = figures["forward_gflops"]
            row.backward_gflops = figures["backward_gflops"]
            row.roofline = figures
    document.machine["peaks"] = {k: asdict(p) for k, p in peaks.items() if p is not None}


__all__ = ["BACKWARD_FACTOR", "attach", "forward_bytes", "row_figures"]
