"""Peak memory per phase, measured in one extra, untimed iteration.

Both devices report two figures per phase (forward, backward):

- ``*_peak_bytes``: the absolute peak of tensor memory during the phase -- what
  the seed's table printed (``torch.cuda.max_memory_allocated``);
- ``*_peak_increase_bytes``: that peak minus the tensor memory allocated when
  the phase started, i.e. what the phase itself added.

**CUDA**: the caching allocator's own counters: ``reset_peak_memory_stats``
before the phase, ``memory_allocated`` at its start and
``max_memory_allocated`` at its end, with synchronization around it.

**CPU**: torch has no allocator counters for the CPU, so the phase runs under
``torch.profiler`` with ``profile_memory=True``, which records every CPU
tensor allocation and free with a timestamp. Replaying those events in time
order gives the live tensor bytes added since the profile began; its maximum
inside the phase's ``record_function`` range is the increase. The absolute
figure adds what was alive at the start: the model's parameters, buffers and
gradients and the workload's data pool and batch (counted from their
storages). This counts tensors, like the CUDA figure, not the process's
resident memory; the worker process's RSS high-water mark is stored beside it
(``rss_peak_bytes``), which includes the Python interpreter and torch itself.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from typing import Optional

from kanbench.workload import DataPool, loss_fn

FORWARD_RANGE = "kanbench::forward"
BACKWARD_RANGE = "kanbench::backward"


def _storage_bytes(tensors, device_type: str = "cpu") -> int:
    seen: set[int] = set()
    total = 0
    for t in tensors:
        if t is None or t.device.type != device_type:
            continue
        try:
            storage = t.untyped_storage()
            key = storage.data_ptr()
            size = storage.nbytes()
        except Exception:
            key, size = id(t), t.numel() * t.element_size()
        if key in seen:
            continue
        seen.add(key)
        total += size
    return total


def model_state_bytes(model, device_type: str = "cpu") -> int:
    """Bytes of the model's parameters, their gradients and its buffers on ``device_type`` (each storage once)."""
    tensors = []
    for p in model.parameters():
        tensors.append(p)
        tensors.append(p.grad)
    tensors.extend(model.buffers())
    return _storage_bytes(tensors, device_type)


def rss_peak_bytes() -> Optional[int]:
    """This process's resident-set high-water mark."""
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except Exception:
        return None
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def cuda_phase_peaks(model, pool: DataPool, device) -> dict:
    """Peaks from the caching allocator, made comparable with the CPU figures.

    ``max_memory_allocated`` also counts what the allocator holds for the library
    (cuBLAS workspaces, allocator rounding of earlier blocks): the absolute figure
    here is, as on the CPU, the tensors alive when the phase starts (model state,
    gradients, data pool and batch, counted from their storages) plus the allocator's
    peak increase since the forward began. The raw allocator peaks are kept in
    ``*_allocator_peak_bytes``."""
    import torch

    model.zero_grad(set_to_none=True)
    x, y = pool.batch()
    resident = model_state_bytes(model, "cuda") + pool.nbytes() + _storage_bytes([x, y], "cuda")
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    f_start = torch.cuda.memory_allocated(device)
    out = model(x)
    torch.cuda.synchronize(device)
    f_peak = torch.cuda.max_memory_allocated(device)
    loss = loss_fn(out, y)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    b_start = torch.cuda.memory_allocated(device)
    loss.backward()
    torch.cuda.synchronize(device)
    b_peak = torch.cuda.max_memory_allocated(device)
    return {
        "forward_peak_bytes": int(resident + f_peak - f_start),
        "forward_peak_increase_bytes": int(f_peak - f_start),
        "backward_peak_bytes": int(resident + b_peak - f_start),
        "backward_peak_increase_bytes": int(b_peak - b_start),
        "forward_allocator_peak_bytes": int(f_peak),
        "backward_allocator_peak_bytes": int(b_peak),
        "memory_method": "cuda-allocator",
    }


def _profiler_memory_timeline(prof):
    """[(time_ns, delta_bytes)] of CPU tensor allocations made during the profile, and
    {range name: (start_ns, end_ns)}.

    Frees are matched to allocations by address: a free of a block allocated
    before the profile began (or in an earlier profile) is ignored, so the
    replay starts at zero and counts only what this profile allocated.
    """
    allocations = []
    ranges = {}
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        fields = event.extra_fields
        if type(fields).__name__ == "_ExtraFields_Allocation":
            if str(fields.device).startswith("cpu"):
                allocations.append((event.start_time_ns, int(fields.ptr), int(fields.alloc_size)))
        elif event.name in (FORWARD_RANGE, BACKWARD_RANGE):
            ranges[event.name] = (event.start_time_ns, event.end_time_ns)
    # in time order, frees (negative sizes) before allocations at equal timestamps: a block
    # freed and reused in the same tick must not count twice
    allocations.sort(key=lambda a: (a[0], a[2]))
    live: dict[int, int] = {}
    deltas = []
    for t, ptr, size in allocations:
        if size > 0:
            live[ptr] = live.get(ptr, 0) + size
            deltas.append((t, size))
        elif size < 0 and ptr in live:
            freed = min(-size, live.pop(ptr))
            deltas.append((t, -freed))
    return deltas, ranges


def _peak_in_range(deltas, start_ns: int, end_ns: int) -> tuple[int, int]:
    """(live bytes when the range starts, max live bytes inside it), live counted from the
    profile's start; ``deltas`` are (time_ns, bytes) in time order, the range's ends inclusive."""
    at_start = sum(d for t, d in deltas if t < start_ns)
    live = peak = at_start
    for t, d in deltas:
        if start_ns <= t <= end_ns:
            live += d
            peak = max(peak, live)
    return at_start, peak


@contextlib.contextmanager
def _quiet_native_stderr():
    """The profiler's native logger prints start/stop lines on fd 2; hide them."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cpu_phase_peaks(model, pool: DataPool) -> dict:
    from torch.profiler import ProfilerActivity, profile, record_function

    model.zero_grad(set_to_none=True)
    x, y = pool.batch()
    resident = model_state_bytes(model) + pool.nbytes() + _storage_bytes([x, y])
    try:
        with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            with record_function(FORWARD_RANGE):
                out = model(x)
            loss = loss_fn(out, y)
            with record_function(BACKWARD_RANGE):
                loss.backward()
        deltas, ranges = _profiler_memory_timeline(prof)
        if FORWARD_RANGE not in ranges or BACKWARD_RANGE not in ranges:
            raise RuntimeError("profiler returned no phase ranges")
    except Exception as exc:  # an older/newer torch without these profiler internals
        return {
            "forward_peak_bytes": None,
            "forward_peak_increase_bytes": None,
            "backward_peak_bytes": None,
            "backward_peak_increase_bytes": None,
            "memory_method": f"unavailable ({type(exc).__name__}: {exc})".splitlines()[0],
        }
    f_start, f_peak = _peak_in_range(deltas, *ranges[FORWARD_RANGE])
    b_start, b_peak = _peak_in_range(deltas, *ranges[BACKWARD_RANGE])
    return {
        "forward_peak_bytes": int(resident + f_peak),
        "forward_peak_increase_bytes": int(f_peak - f_start),
        "backward_peak_bytes": int(resident + b_peak),
        "backward_peak_increase_bytes": int(b_peak - b_start),
        "memory_method": "cpu-profiler",
    }


def phase_peaks(model, pool: DataPool, device) -> dict:
    import torch

    if torch.device(device).type == "cuda":
        return cuda_phase_peaks(model, pool, device)
    return cpu_phase_peaks(model, pool)
