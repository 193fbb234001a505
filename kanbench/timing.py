"""Timing forward and backward passes.

One *iteration* is a training step without the optimizer update:

1. gradients are dropped (``zero_grad(set_to_none=True)``) and a fresh batch is
   taken from the pool -- untimed;
2. ``out = model(x)`` -- timed as the **forward** sample (autograd graph built,
   as in training);
3. the MSE loss is built -- untimed;
4. ``loss.backward()`` -- timed as the **backward** sample;
5. the loss is checked to be finite -- untimed.

Every iteration builds a new graph, so no stale graph is ever reused. On the
CPU a sample is read from ``time.perf_counter_ns`` (monotonic, nanosecond
resolution); on CUDA from a pair of CUDA events around the phase, after a
``torch.cuda.synchronize`` before the iteration, so queued work from the
previous step never leaks into a sample.

Iterations first *warm up* (at least ``warmup_time`` seconds and
``warmup_min`` iterations: allocator caches, lazy initialization, compiled
kernels), then are *measured* until at least ``min_samples`` samples and
``min_time`` seconds of measured iterations were collected (at most
``max_samples``). The garbage collector is off while measuring, as in timeit.
A deadline (the row's time budget) stops either loop early.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from kanbench.workload import DataPool, loss_fn


class NonFiniteOutput(RuntimeError):
    """The model produced NaN or Inf: the row is reported, not timed."""

    pass


class BadOutputShape(RuntimeError):
    """The model's output does not have the workload's (batch, out) shape."""

    pass


class BudgetExceeded(RuntimeError):
    """The row ran past its time budget; carries the samples taken so far."""

    def __init__(self, message: str, forward_ms: list, backward_ms: list):
        super().__init__(message)
        self.forward_ms = forward_ms
        self.backward_ms = backward_ms


@dataclass
class TimingConfig:
    """Warm-up and sampling rules: minimum time and samples, maximum samples, warm-up."""

    min_time: float = 1.0
    min_samples: int = 20
    max_samples: int = 5000
    warmup_time: float = 0.25
    warmup_min: int = 2

    def __post_init__(self):
        if not (self.min_time >= 0 and math.isfinite(self.min_time)):
            raise ValueError(f"min_time must be a non-negative number of seconds, got {self.min_time!r}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples!r}")
        if self.max_samples < self.min_samples:
            raise ValueError("max_samples must be at least min_samples")
        if self.warmup_min < 0 or self.warmup_time < 0:
            raise ValueError("warm-up settings must be non-negative")

    def to_dict(self) -> dict:
        return asdict(self)


class CpuClock:
    """Phase timer on the CPU: time.perf_counter_ns."""

    def __init__(self):
        self._t = [0, 0, 0, 0]

    def begin(self):
        pass

    def mark(self, i: int):
        self._t[i] = time.perf_counter_ns()

    def read(self) -> tuple[float, float]:
        t = self._t
        return (t[1] - t[0]) / 1e6, (t[3] - t[2]) / 1e6


class CudaClock:
    """Phase timer on CUDA: events recorded on the current stream *of the model's device*,
    the device synchronized before each iteration.

    ``Event.record()`` without a stream records on the current device's stream; with the
    model on ``cuda:1`` and the current device ``cuda:0`` that stream is idle and the
    events would time only the host's kernel launches."""

    def __init__(self, device):
        import torch

        self._torch = torch
        self.device = torch.device(device)
        with torch.cuda.device(self.device):
            self._events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
        self._stream = torch.cuda.current_stream(self.device)

    def begin(self):
        self._torch.cuda.synchronize(self.device)

    def mark(self, i: int):
        self._events[i].record(self._stream)

    def read(self) -> tuple[float, float]:
        e = self._events
        e[3].synchronize()
        return e[0].elapsed_time(e[1]), e[2].elapsed_time(e[3])


def make_clock(device):
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return CudaClock(device)
    return CpuClock()


@dataclass
class Samples:
    """Raw forward and backward times (ms) of one measurement, with warm-up facts."""

    forward_ms: list = field(default_factory=list)
    backward_ms: list = field(default_factory=list)
    warmup_iterations: int = 0
    #: seconds of the first step (it compiles under torch.compile)
    first_step_s: Optional[float] = None
    measured_seconds: float = 0.0
    #: why measuring stopped before min_time (None when it did not)
    cut_short: Optional[str] = None
    #: minor page faults of the process while the samples were taken (None: unreadable)
    minor_faults: Optional[int] = None


def iteration(model, pool: DataPool, clock, check_shape: bool = False) -> tuple[float, float]:
    """One forward+backward step; returns (forward_ms, backward_ms)."""
    model.zero_grad(set_to_none=True)
    x, y = pool.batch()
    clock.begin()
    clock.mark(0)
    out = model(x)
    clock.mark(1)
    if check_shape and tuple(out.shape) != tuple(y.shape):
        raise BadOutputShape(f"model output has shape {tuple(out.shape)}, the workload expects {tuple(y.shape)}")
    loss = loss_fn(out, y)
    clock.mark(2)
    loss.backward()
    clock.mark(3)
    fwd, bwd = clock.read()
    if not math.isfinite(loss.item()):
        raise NonFiniteOutput("the loss is not finite (NaN or Inf in the model's output)")
    return fwd, bwd


def collect(
    model,
    pool: DataPool,
    clock,
    samples: Samples,
    min_time: float,
    min_samples: int,
    max_samples: int,
    deadline: Optional[float] = None,
) -> tuple[float, Optional[str]]:
    """Append samples until ``min_samples`` and ``min_time`` seconds of measured iterations
    (at most ``max_samples``, stopping at ``deadline``); GC off meanwhile.
    Returns (measured seconds, why it stopped early or None)."""
    from kanbench.allocator import minor_faults

    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    faults_before = minor_faults()
    measured = 0.0
    cut_short = None
    try:
        count = 0
        while count < max_samples:
            if count >= min_samples and measured >= min_time:
                break
            if deadline is not None and time.monotonic() >= deadline:
                cut_short = "time budget"
                break
            t0 = time.perf_counter()
            fwd, bwd = iteration(model, pool, clock)
            measured += time.perf_counter() - t0
            samples.forward_ms.append(fwd)
            samples.backward_ms.append(bwd)
            count += 1
        else:
            if measured < min_time:
                cut_short = "max_samples"
    finally:
        if gc_was_enabled:
            gc.enable()
        faults_after = minor_faults()
        if faults_before is not None and faults_after is not None:
            samples.minor_faults = (samples.minor_faults or 0) + faults_after - faults_before
    return measured, cut_short


def warm_up(
    model, pool: DataPool, clock, config: TimingConfig, deadline: Optional[float] = None, facts: Optional[dict] = None
) -> int:
    """Warm-up iterations (the first also checks the output shape); returns how many ran.

    The warm-up clock starts after the first iteration: that one may compile (torch.compile,
    lazy CUDA/cuBLAS initialization) for longer than the whole warm-up time, and the
    iterations that follow must still warm the compiled code. ``facts["first_step_s"]``
    gets the first step's wall time (the compile time under torch.compile)."""
    first = time.perf_counter()
    iteration(model, pool, clock, check_shape=True)
    if facts is not None:
        facts["first_step_s"] = round(time.perf_counter() - first, 4)
    n = 1
    start = time.perf_counter()
    while True:
        if n >= config.warmup_min and time.perf_counter() - start >= config.warmup_time:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        iteration(model, pool, clock)
        n += 1
    return n


def measure(model, pool: DataPool, device, config: TimingConfig, deadline: Optional[float] = None) -> Samples:
    """Warm up, then collect forward/backward samples (ms). ``deadline`` is a time.monotonic() value."""
    clock = make_clock(device)
    samples = Samples()
    facts: dict = {}
    samples.warmup_iterations = warm_up(model, pool, clock, config, deadline, facts)
    samples.first_step_s = facts.get("first_step_s")

    samples.measured_seconds, samples.cut_short = collect(
        model, pool, clock, samples, config.min_time, config.min_samples, config.max_samples, deadline
    )
    if len(samples.forward_ms) < config.min_samples:
        raise BudgetExceeded(
            f"exceeded the per-row time budget after {samples.warmup_iterations} warm-up and "
            f"{len(samples.forward_ms)} of {config.min_samples} measured iterations",
            samples.forward_ms,
            samples.backward_ms,
        )
    return samples
