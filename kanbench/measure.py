"""Measuring one row: the measurement core, with no process plumbing.

A *row* is one implementation on one device. :func:`measure_row` measures it in this
process: resolve the implementation, build the model and the data pool
(:func:`open_row`), run the sanity gate, time forward and backward, measure peak memory,
and turn every failure into the row's one-line ``error`` (:func:`classify_failure`).
:class:`RowJob` is everything that takes, serialized as JSON for worker processes.

Everything that measures builds on this module: the local runner (:mod:`kanbench.runner`),
the worker processes (:mod:`kanbench.worker`), the interleaved modes and sweeps.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from kanbench.records import RowResult
from kanbench.timing import BadOutputShape, BudgetExceeded, NonFiniteOutput, TimingConfig
from kanbench.workload import Workload

DEFAULT_BUDGET_S = 120.0


@dataclass
class RowJob:
    """Everything a worker needs to measure one row; serialized as JSON for worker processes."""

    impl: str
    device: str
    workload: Workload
    timing: TimingConfig = field(default_factory=TimingConfig)
    threads: Optional[int] = None
    extra_dirs: Sequence[str] = ()
    budget_s: Optional[float] = DEFAULT_BUDGET_S
    memory: bool = True
    seed: int = 0
    #: discover the built-in ``implementations`` package too (A/B workers load a tree's instead)
    builtin: bool = True
    #: folders of installed packages whose entry points are this row's only ones (an A/B side's build)
    site_dirs: Sequence[str] = ()
    #: build options (e.g. {"grid_size": 10}); only for implementations that declare them
    options: dict = field(default_factory=dict)
    #: wrap the model in torch.compile
    compile: bool = False
    #: build with these widths instead of the workload's (--match); same in/out
    widths: Optional[tuple] = None
    #: what --match chose, recorded on the row: {"metric", "target", "value", "error"}
    match: Optional[dict] = None
    #: run the sanity gate after building; time a row that fails it only with time_broken
    sanity: bool = True
    time_broken: bool = False

    def to_dict(self) -> dict:
        return {
            "impl": self.impl,
            "device": self.device,
            "workload": self.workload.to_dict(),
            "timing": self.timing.to_dict(),
            "threads": self.threads,
            "extra_dirs": [str(d) for d in self.extra_dirs],
            "budget_s": self.budget_s,
            "memory": self.memory,
            "seed": self.seed,
            "builtin": self.builtin,
            "site_dirs": [str(d) for d in self.site_dirs],
            "options": dict(self.options),
            "compile": self.compile,
            "widths": list(self.widths) if self.widths else None,
            "match": self.match,
            "sanity": self.sanity,
            "time_broken": self.time_broken,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RowJob":
        return cls(
            impl=d["impl"],
            device=d["device"],
            workload=Workload.from_dict(d["workload"]),
            timing=TimingConfig(**d.get("timing", {})),
            threads=d.get("threads"),
            extra_dirs=tuple(d.get("extra_dirs", ())),
            budget_s=d.get("budget_s", DEFAULT_BUDGET_S),
            memory=d.get("memory", True),
            seed=d.get("seed", 0),
            builtin=d.get("builtin", True),
            site_dirs=tuple(d.get("site_dirs", ())),
            options=dict(d.get("options") or {}),
            compile=bool(d.get("compile", False)),
            widths=tuple(d["widths"]) if d.get("widths") else None,
            match=d.get("match"),
            sanity=bool(d.get("sanity", True)),
            time_broken=bool(d.get("time_broken", False)),
        )

    @property
    def build_widths(self) -> tuple:
        return tuple(self.widths or self.workload.widths)


def empty_record(job: RowJob) -> RowResult:
    """The row a job fills in: identity and configuration set, nothing measured yet."""
    return RowResult(
        impl=job.impl,
        device=job.device,
        workload=job.workload.to_dict(),
        threads=job.threads,
        options=dict(job.options),
        compile=job.compile,
        widths=list(job.widths) if job.widths else None,
        match=dict(job.match) if job.match else None,
    )


def count_parameters(model) -> tuple[int, int]:
    """(total, trainable) from ``model.parameters()``; buffers are not parameters and are not counted."""
    total = trainable = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        if p.requires_grad:
            trainable += n
    return total, trainable


def _round_samples(values: list) -> list:
    return [float(f"{v:.6g}") for v in values]


def fill_samples(record: RowResult, forward_ms: list, backward_ms: list) -> None:
    from kanbench.stats import summarize

    record.samples = {"forward_ms": _round_samples(forward_ms), "backward_ms": _round_samples(backward_ms)}
    record.n_samples = len(forward_ms)
    for phase, values in (("forward", forward_ms), ("backward", backward_ms)):
        s = summarize(values)
        setattr(record, f"{phase}_ms", s["median"] if s["n"] else None)
        setattr(record, f"{phase}_iqr_ms", s["iqr"] if s["n"] else None)
        setattr(record, f"{phase}_mad_ms", s["mad"] if s["n"] else None)


def add_faults(total: Optional[int], counted: Optional[int]) -> Optional[int]:
    """A running page-fault count plus one chunk's; ``None`` once any chunk could not count."""
    return None if total is None or counted is None else total + counted


def faults_per_step(faults: Optional[int], steps: int) -> Optional[float]:
    """Minor page faults per measured step, one decimal; ``None`` when not counted."""
    return round(faults / steps, 1) if faults is not None and steps else None


def apply_memory(record: RowResult, peaks: dict) -> None:
    """Store :func:`kanbench.memory.phase_peaks`'s figures in the row."""
    for key, value in peaks.items():
        setattr(record, key, value)


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, (MemoryError,)) or isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text


class RowFailed(Exception):
    """The row cannot be measured; its record carries the reason."""

    def __init__(self, record: RowResult):
        super().__init__(record.error)
        self.record = record


@dataclass
class Row:
    """An implementation built on a device, with its data pool: ready to be timed."""

    job: RowJob
    record: RowResult
    model: object
    pool: object
    device: object


def open_row(job: RowJob, record: RowResult, registry=None, checkpoint: Optional[Callable[[RowResult], None]] = None) -> Row:
    """Resolve the implementation, build the model and the data pool. Raises :class:`RowFailed`."""
    import torch

    from kanbench import allocator, discovery
    from kanbench import workload as workload_mod

    if job.threads:
        torch.set_num_threads(int(job.threads))
    record.threads = torch.get_num_threads()
    record.allocator = allocator.setting()
    if registry is None:
        registry = discovery.discover(job.extra_dirs, builtin=job.builtin, check=False, site_dirs=job.site_dirs)
    try:
        entry = registry.get(job.impl)
    except discovery.UnknownImplementation as exc:
        raise RowFailed(record.fail("unknown", str(exc))) from None
    spec = entry.spec
    if spec is None:
        raise RowFailed(record.fail("unavailable", entry.reason or "failed to load"))
    reason = entry.reason if not entry.available else discovery.check_requirements(spec)
    if reason:
        raise RowFailed(record.fail("unavailable", reason))
    device = torch.device(job.device)
    if device.type not in ("cpu", "cuda"):
        raise RowFailed(record.fail("unsupported", f"device {job.device!r} is not supported (use cpu or cuda)"))
    if device.type not in spec.devices:
        raise RowFailed(
            record.fail("unsupported", f"{spec.name} does not support {device.type} (supports {', '.join(spec.devices)})")
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RowFailed(record.fail("cuda-unavailable", cuda_absent_reason()))
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RowFailed(
            record.fail("cuda-unavailable", f"{job.device} does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
        )
    unsupported = [k for k in job.options if k not in spec.options]
    if unsupported:
        raise RowFailed(record.fail("unsupported", f"{spec.name} does not take {', '.join(unsupported)}"))
    torch.manual_seed(job.seed)
    dtype = workload_mod.torch_dtype(job.workload.dtype)
    stage = "build"
    try:
        widths = job.build_widths
        record.family = spec.family or None
        if spec.flops:
            record.flops_per_sample = float(spec.flops(widths, **job.options))
        model = spec.build(widths, device=device, dtype=dtype, **job.options)
        if not isinstance(model, torch.nn.Module):
            raise RowFailed(record.fail("crash", f"build() returned {type(model).__name__}, not a torch.nn.Module"))
        model.train()
        record.params, record.trainable_params = count_parameters(model)
        if checkpoint:
            checkpoint(record)
        stage = "data"
        pool = workload_mod.DataPool(job.workload, device)
        if spec.path_note is not None:
            record.note = spec.path_note(model, pool.x[: min(2, job.workload.batch)]) or record.note
        if job.sanity:
            stage = "sanity"
            run_sanity(record, model, pool, job)
        if job.compile:
            stage = "compile"
            model = torch.compile(model)
        if checkpoint:
            checkpoint(record)
    except RowFailed:
        raise
    except Exception as exc:
        raise RowFailed(classify_failure(record, exc, stage, job)) from None
    return Row(job, record, model, pool, device)


def run_sanity(record: RowResult, model, pool, job: RowJob) -> None:
    """The sanity gate (:mod:`kanbench.sanity`) on one batch; a failing row stops here unless time_broken."""
    import torch

    from kanbench import sanity

    x, y = pool.batch()
    state = torch.random.get_rng_state()
    report = sanity.check(model, x, job.workload.widths[-1], y)
    torch.random.set_rng_state(state)
    record.sanity = report.to_dict()
    if report.failed and not report.loud and not job.time_broken:
        raise RowFailed(record.fail("sanity", f"{report.reason} (time it anyway: --time-broken)"))


def classify_failure(record: RowResult, exc: BaseException, stage: str, job: RowJob) -> RowResult:
    """Turn an exception raised while measuring into the row's one-line error."""
    if isinstance(exc, BudgetExceeded):
        fill_samples(record, exc.forward_ms, exc.backward_ms)
        return record.fail("budget", f"{exc} (budget {job.budget_s:g} s)")
    if isinstance(exc, NonFiniteOutput):
        return record.fail("nonfinite", str(exc))
    if isinstance(exc, BadOutputShape):
        return record.fail("bad-output", str(exc))
    if job.compile and type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
        return record.fail("compile", f"torch.compile failed during {stage}: {_first_line(exc)}")
    if _is_oom(exc):
        return record.fail("oom", f"out of memory on {job.device} during {stage}: {_first_line(exc)}")
    return record.fail("crash", f"{type(exc).__name__} during {stage}: {_first_line(exc)}{_implementation_frame(exc)}")


def release(row: Optional[Row]) -> None:
    if row is not None and row.device.type == "cuda":
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass


def measure_row(job: RowJob, registry=None, checkpoint: Optional[Callable[[RowResult], None]] = None) -> RowResult:
    """Measure one row in this process. Never raises for a problem of the row itself.

    ``checkpoint(record)`` is called with the partial record as it fills in (after the
    model is built, after timing), so a worker that is killed still reports what it knew."""
    from kanbench import memory, timing

    record = empty_record(job)
    started = time.monotonic()
    rss_before = memory.rss_peak_bytes()  # imports done: what follows is the row's own
    deadline = started + job.budget_s if job.budget_s else None
    row = None
    stage = "setup"
    try:
        row = open_row(job, record, registry, checkpoint)
        stage = "timing"
        samples = timing.measure(row.model, row.pool, row.device, job.timing, deadline=deadline)
        fill_samples(record, samples.forward_ms, samples.backward_ms)
        record.warmup_iterations = samples.warmup_iterations
        record.first_step_s = samples.first_step_s
        record.measured_s = round(samples.measured_seconds, 4)
        record.minor_faults_per_step = faults_per_step(samples.minor_faults, len(samples.forward_ms))
        if samples.cut_short:
            cut = f"stopped before min_time ({samples.cut_short})"
            record.note = f"{record.note}; {cut}" if record.note else cut
        if checkpoint:
            checkpoint(record)
        if job.memory:
            stage = "memory"
            apply_memory(record, memory.phase_peaks(row.model, row.pool, row.device))
    except RowFailed:
        pass
    except Exception as exc:
        classify_failure(record, exc, stage, job)
    finally:
        release(row)
    if not str(job.device).startswith("cuda") and record.rss_peak_bytes is None:
        record.rss_peak_bytes = memory.rss_peak_bytes()
        if record.rss_peak_bytes is not None and rss_before is not None:
            # the high-water mark's rise during this row (in one process it only rises past earlier rows' peaks)
            record.rss_increase_bytes = record.rss_peak_bytes - rss_before
    record.wall_s = round(time.monotonic() - started, 3)
    return record


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _implementation_frame(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(tb):
        if "/kanbench/" not in frame.filename.replace(os.sep, "/"):
            return f" (at {Path(frame.filename).name}:{frame.lineno})"
    return ""


def cuda_absent_reason() -> str:
    import torch

    if torch.version.cuda is None:
        return f"CUDA requested but this torch ({torch.__version__}) is a CPU-only build"
    return "CUDA requested but no CUDA device is available (torch.cuda.is_available() is False)"
