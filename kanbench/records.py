"""The typed records of a results file: :class:`RowResult`, :class:`FitResult`, :class:`ResultsDocument`.

This module *is* the schema. Each class owns its JSON (``to_dict`` / ``from_dict``);
every module that reads or writes results goes through these types, so adding a
field to a row is one field here (with its comment) and its use.

File layout (``schema`` = :data:`SCHEMA_VERSION`)::

    {
      "schema": 2,
      "kind": "kanbench-results",
      "machine": {...fingerprint, see kanbench.machine...},
      "config": {"mode": "run" | "sweep" | "fit" | "ab", "workload": {...}, "timing": {...},
                 "threads": 2, "devices": [...], "command": "...", ...},
      "results": [ {RowResult or FitResult}, ... ],
      "skipped": [ {"impl": ..., "reason": ...}, ... ],
      "complete": true,
      "interrupted": false
    }

Migrations: version 1 files (kanbench before the typed records) hold the same
row fields; rows that lack their ``workload`` take the file's ``config.workload``
(:func:`migrate`). Unknown fields of a row are kept in ``extra`` and written back
unchanged, so a newer file read by an older kanbench loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from kanbench.baseline import BASELINE
from kanbench.record_base import Record

SCHEMA_VERSION = 2
#: versions :func:`migrate` can bring up to :data:`SCHEMA_VERSION`
READABLE_VERSIONS = (1, 2)
KIND = "kanbench-results"
PHASES = ("forward", "backward")


def device_kind(device: str) -> str:
    """The suffix of the seed's row labels: ``cpu``, ``gpu`` (``cuda``, ``cuda:0``), ``gpu1`` (``cuda:1``), ...

    The index is kept so two GPUs in one file never share a label or a compare key."""
    device = str(device)
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        return f"gpu{index}" if index not in ("", "0") else "gpu"
    return device if device.startswith("gpu") else "cpu"


def row_label(impl: str, device: str) -> str:
    """The seed's row names: ``<impl>-cpu``, ``<impl>-gpu``."""
    return f"{impl}-{device_kind(device)}"


def workload_key(workload: dict) -> str:
    """A short stable label of a workload dict, e.g. ``2x150x1-b32-float32`` (= ``Workload.key``)."""
    widths = "x".join(str(v) for v in workload.get("widths", [])) or "?"
    return f"{widths}-b{workload.get('batch', '?')}-{workload.get('dtype', 'float32')}"


#: the records' base class (kept under its old name for the record modules that import it from here)
_Record = Record


@dataclass
class RowResult(Record):
    """One implementation measured on one device at one workload (a row of the table).

    Times are milliseconds per step; memory is bytes; ``None`` means not measured.
    """

    impl: str  #: implementation name (its spec's ``name``)
    device: str  #: torch device string: ``cpu``, ``cuda``, ``cuda:1``
    workload: dict = field(default_factory=dict)  #: ``Workload.to_dict()``: widths, batch, dtype, pool, seed, preset
    forward_ms: Optional[float] = None  #: median forward time
    backward_ms: Optional[float] = None  #: median backward time (loss.backward() only)
    forward_iqr_ms: Optional[float] = None  #: interquartile range of the forward samples
    backward_iqr_ms: Optional[float] = None
    forward_mad_ms: Optional[float] = None  #: median absolute deviation (unscaled)
    backward_mad_ms: Optional[float] = None
    n_samples: int = 0  #: samples per phase
    samples: dict = field(default_factory=lambda: {"forward_ms": [], "backward_ms": []})  #: raw samples per phase
    rounds: Optional[dict] = None  #: interleaved runs: the median of every round, per phase ``{"forward_ms": [...]}``
    workers: Optional[int] = None  #: interleaved runs: worker processes that took the rounds in turn
    forward_peak_bytes: Optional[int] = None  #: peak memory during the forward (absolute, see memory_method)
    backward_peak_bytes: Optional[int] = None
    forward_peak_increase_bytes: Optional[int] = None  #: the peak minus what was allocated before the phase
    backward_peak_increase_bytes: Optional[int] = None
    forward_allocator_peak_bytes: Optional[int] = None  #: CUDA: the allocator's raw peak (workspaces included)
    backward_allocator_peak_bytes: Optional[int] = None
    memory_method: Optional[str] = None  #: how memory was measured (CUDA allocator, CPU profiler replay)
    rss_peak_bytes: Optional[int] = None  #: the worker's resident-set high-water mark (CPU rows; imports included)
    rss_increase_bytes: Optional[int] = None  #: how much that high-water mark rose while the row was measured
    params: Optional[int] = None  #: parameters of the model (``model.parameters()``)
    trainable_params: Optional[int] = None  #: of which ``requires_grad``
    threads: Optional[int] = None  #: torch intra-op threads the row ran with
    allocator: Optional[str] = None  #: the worker's malloc setting (:mod:`kanbench.allocator`)
    minor_faults_per_step: Optional[float] = None  #: page faults per measured step (all threads; CPU work)
    options: dict = field(default_factory=dict)  #: build options (e.g. ``{"grid_size": 10}``)
    compile: bool = False  #: measured under ``torch.compile``
    flops_per_sample: Optional[float] = None  #: analytic forward FLOPs per sample (specs that declare them)
    forward_gflops: Optional[float] = None  #: achieved forward GFLOP/s (analytic FLOPs over the forward median)
    backward_gflops: Optional[float] = None  #: achieved backward GFLOP/s (2x the forward's FLOPs over its median)
    roofline: Optional[dict] = None  #: the step's GFLOP/s against the machine's peaks (:mod:`kanbench.roofline`)
    warmup_iterations: Optional[int] = None
    first_step_s: Optional[float] = None  #: wall time of the first step (includes compiling under --compile)
    measured_s: Optional[float] = None  #: seconds spent taking samples
    wall_s: Optional[float] = None  #: seconds for the whole row (build, warm-up, samples, memory)
    note: Optional[str] = None  #: a remark on the measurement (e.g. stopped before min_time)
    sweep: Optional[list] = None  #: sweep rows: the (axis, value) tags of the point
    widths: Optional[list] = None  #: the widths the model was built with, when not the workload's (--match)
    match: Optional[dict] = None  #: --match: {"metric": "params"|"flops", "target": N, "value": N, "error": rel}
    sanity: Optional[dict] = None  #: the sanity gate's report (kanbench.sanity.SanityReport.to_dict())
    family: Optional[str] = None  #: the implementation's basis family (its spec's ``family``)
    fit: Optional[dict] = None  #: leaderboard: fit quality at the row's widths (FitResult fields)
    error: Optional[str] = None  #: why the row could not be (fully) measured, one line
    error_kind: Optional[str] = None  #: unknown, unavailable, unsupported, crash, oom, budget, nonfinite, ...
    extra: dict = field(default_factory=dict)  #: fields this version does not know, kept as read

    _derived = ("label",)

    @property
    def label(self) -> str:
        """``<impl>-cpu`` / ``<impl>-gpu``, the seed table's row name."""
        return row_label(self.impl, self.device)

    @property
    def measured(self) -> bool:
        """True when both phases have a median (a failed row may still have them, e.g. over budget)."""
        return self.forward_ms is not None and self.backward_ms is not None

    @property
    def usable(self) -> bool:
        """Measured and not failed: a row that tables and comparisons can use."""
        return self.measured and not self.failed

    @property
    def sanity_status(self) -> Optional[str]:
        """``ok``, ``warn`` or ``fail`` from the sanity gate (None when it did not run)."""
        return (self.sanity or {}).get("status")

    @property
    def sanity_reason(self) -> str:
        s = self.sanity or {}
        return "; ".join(s.get("failures") or s.get("warnings") or [])

    @property
    def built_widths(self) -> list:
        """The widths the model was built with (the workload's unless --match chose others)."""
        return list(self.widths or (self.workload or {}).get("widths") or [])

    @property
    def is_baseline(self) -> bool:
        return self.impl == BASELINE

    @property
    def workload_key(self) -> str:
        return workload_key(self.workload)

    @property
    def variant(self) -> str:
        """What else changes the measurement: torch.compile, build options, threads ("" when none)."""
        parts = []
        if self.compile:
            parts.append("compile")
        if self.widths and list(self.widths) != list((self.workload or {}).get("widths") or []):
            parts.append("w=" + "x".join(str(w) for w in self.widths))
        parts.extend(f"{k}={v}" for k, v in sorted((self.options or {}).items()))
        if self.threads:
            parts.append(f"{self.threads}t")
        return ",".join(parts)

    @property
    def key(self) -> tuple:
        """What identifies a row across files: (impl, cpu|gpu|gpuN, workload key, variant)."""
        return (self.impl, device_kind(self.device), self.workload_key, self.variant)

    def median(self, phase: str) -> Optional[float]:
        """The median of ``phase`` (forward or backward) in ms."""
        return getattr(self, f"{phase}_ms")

    def spread(self, phase: str) -> Optional[float]:
        """The IQR of ``phase`` in ms."""
        return getattr(self, f"{phase}_iqr_ms")

    def raw(self, phase: str) -> list[float]:
        """The raw samples of ``phase`` in ms (nulls dropped)."""
        return [float(v) for v in (self.samples or {}).get(f"{phase}_ms") or [] if v is not None]

    def round_medians(self, phase: str) -> list[float]:
        return [float(v) for v in (self.rounds or {}).get(f"{phase}_ms") or [] if v is not None]

    def ratio_to(self, base: "RowResult", phases: tuple = PHASES) -> Optional[float]:
        """This row's time over ``base``'s (the phases summed), e.g. the "x MLP" of the tables.

        When both rows have the same number of interleaved rounds, round i of each was measured
        within the same second: the ratio is the median of the per-round ratios, so drift of the
        machine between rounds cancels. Otherwise (sequential runs, old files) it is the ratio of
        the medians."""
        if self.failed or base.failed or not self.measured or not base.measured:
            return None
        mine = [self.round_medians(p) for p in phases]
        theirs = [self.paired_rounds_of(base, p) for p in phases]
        n = len(mine[0])
        if n >= 1 and all(len(x) == n for x in mine + theirs):
            ratios = sorted(sum(m[i] for m in mine) / sum(t[i] for t in theirs) for i in range(n))
            return ratios[n // 2] if n % 2 else (ratios[n // 2 - 1] + ratios[n // 2]) / 2
        denominator = sum(base.median(p) for p in phases)
        return sum(self.median(p) for p in phases) / denominator if denominator else None

    def paired_rounds_of(self, base: "RowResult", phase: str) -> list[float]:
        """``base``'s round medians of ``phase`` as measured beside this row: the MLP measured in
        this row's own batch when it has one (``extra["baseline_rounds"]``, rows beyond
        ``--max-live``), else ``base``'s rounds."""
        companion = (self.extra or {}).get("baseline_rounds")
        if companion and base.is_baseline:
            return [float(v) for v in companion.get(f"{phase}_ms") or [] if v is not None]
        return base.round_medians(phase)

    def round_ratios(self, base: "RowResult", phase: str) -> list[float]:
        """Round i of this row's ``phase`` over round i of ``base``'s (measured in the same
        second of an interleaved run, so the machine's drift cancels); [] when the two rows'
        rounds do not line up (different counts, sequential runs, old files)."""
        mine, theirs = self.round_medians(phase), self.paired_rounds_of(base, phase)
        if not mine or len(mine) != len(theirs) or min(theirs) <= 0:
            return []
        return [m / t for m, t in zip(mine, theirs)]

    def process_spread(self) -> Optional[float]:
        """Slowest over fastest worker process (forward+backward medians); None without processes.

        Rows measured side by side share the machine's state, so a large spread of the MLP's
        processes means the machine itself changed speed during the run (seen on shared VMs:
        the MLP's small two-thread matmuls 2x slower for tens of seconds, our layers 1.35x)."""
        procs = self.extra.get("processes") or {}
        totals = [f + b for f, b in zip(procs.get("forward_ms") or [], procs.get("backward_ms") or [])]
        return max(totals) / min(totals) if len(totals) >= 2 and min(totals) > 0 else None

    def fail(self, kind: str, message: str) -> "RowResult":
        """Mark the row as failed with a one-line reason."""
        self.error_kind = kind
        self.error = " ".join(str(message).split())
        return self

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["label"] = self.label  # for readers of the JSON; derived, not read back
        return out


@dataclass
class FitResult(Record):
    """One implementation trained on one toy task (``kanbench fit``)."""

    impl: str
    device: str
    task: str  #: task name (seed, xy, bessel, exp4d)
    formula: str = ""
    widths: list = field(default_factory=list)
    steps: int = 0
    optimizer: str = "adam"
    lr: float = 0.0
    train_rmse: Optional[float] = None
    test_rmse: Optional[float] = None  #: at the last step
    best_test_rmse: Optional[float] = None
    step_ms: Optional[float] = None  #: median time of a full-batch training step
    time_to_target_s: Optional[float] = None  #: training seconds until test RMSE <= target_rmse
    target_rmse: Optional[float] = None
    curve: list = field(default_factory=list)  #: [[step, test RMSE], ...]
    params: Optional[int] = None
    error: Optional[str] = None
    error_kind: Optional[str] = None
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.impl}-{self.device}"

    def fail(self, kind: str, message: str) -> "FitResult":
        self.error_kind = kind
        self.error = " ".join(str(message).split())
        return self


@dataclass
class Skipped:
    """An implementation left out of a run, with the reason (and install line)."""

    impl: str
    reason: str

    def to_dict(self) -> dict:
        return {"impl": self.impl, "reason": self.reason}


@dataclass
class ResultsDocument:
    """A whole results file: the machine, the run's configuration and its rows."""

    machine: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    results: list = field(default_factory=list)  #: RowResult (runs, sweeps, A/B) or FitResult (fits)
    skipped: list = field(default_factory=list)  #: Skipped
    complete: bool = False
    interrupted: bool = False
    schema: int = SCHEMA_VERSION
    path: Optional[str] = None  #: where it was loaded from (not stored)
    name: Optional[str] = None  #: a display name (not stored)

    @property
    def mode(self) -> str:
        return self.config.get("mode", "run")

    @property
    def commit(self) -> str:
        return (self.machine.get("kanbench") or {}).get("commit") or ""

    @property
    def dirty(self) -> bool:
        return bool((self.machine.get("kanbench") or {}).get("dirty"))

    @property
    def short_commit(self) -> str:
        return self.commit[:8] + ("+" if self.dirty and self.commit else "")

    @property
    def threads(self) -> Optional[int]:
        return self.config.get("threads")

    def rows(self) -> list[RowResult]:
        return [r for r in self.results if isinstance(r, RowResult)]

    def baseline(self, row: RowResult) -> Optional[RowResult]:
        """The usable MLP row measured in this file on ``row``'s device and workload, if any."""
        for r in self.rows():
            if r.is_baseline and r.usable and r.device == row.device and r.workload_key == row.workload_key:
                return r
        return None

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA_VERSION,
            "kind": KIND,
            "machine": self.machine,
            "config": self.config,
            "results": [r.to_dict() for r in self.results],
            "skipped": [s.to_dict() for s in self.skipped],
            "complete": self.complete,
            "interrupted": self.interrupted,
        }

    @classmethod
    def from_dict(cls, d: dict, path: Optional[str] = None) -> "ResultsDocument":
        """A document from its (validated, migrated) JSON dict."""
        config = d.get("config") or {}
        row_type = _row_type(config.get("mode"))
        return cls(
            machine=d.get("machine") or {},
            config=config,
            results=[row_type.from_dict(r) for r in d.get("results", [])],
            skipped=[Skipped(s.get("impl", "?"), s.get("reason", "")) for s in d.get("skipped") or []],
            complete=bool(d.get("complete", False)),
            interrupted=bool(d.get("interrupted", False)),
            schema=SCHEMA_VERSION,
            path=path,
        )


def _row_type(mode: Optional[str]):
    """The record type of a results file's rows, by its mode."""
    if mode == "fit":
        return FitResult
    if mode == "accuracy":
        from kanbench.accuracy.records import AccuracyResult

        return AccuracyResult
    return RowResult


def migrate(d: dict) -> dict:
    """Bring a results dict of any readable version to :data:`SCHEMA_VERSION` (in place)."""
    if d.get("schema") == 1:
        workload = (d.get("config") or {}).get("workload") or {}
        if (d.get("config") or {}).get("mode") != "fit":
            for r in d.get("results", []):
                if isinstance(r, dict) and not r.get("workload"):
                    r["workload"] = dict(workload)
        d["schema"] = 2
    return d


def as_row(obj: Any) -> RowResult:
    """A RowResult from a RowResult or a record dict (for callers holding JSON)."""
    return obj if isinstance(obj, RowResult) else RowResult.from_dict(obj)
