"""Interleaved measurement of a run's rows: every row measured in the same minutes.

A shared machine drifts: a burst of load or a frequency change lasting seconds lands on
whichever row is being measured, and rows measured one after another each get their
own luck. Here the rows take turns instead, as the two sides of ``kanbench ab`` do:

- a *generation* starts one warm worker process per row (``kanbench.worker --serve``),
  all of them built and warmed up before anything is timed;
- then rounds: in each round every row measures one short chunk (``chunk_time`` seconds,
  at least ``chunk_min_samples`` steps), in an order that rotates from round to round
  (and reverses every other round), so drift hits every row alike;
- ``processes`` generations follow each other, so every row is measured by several
  processes: one process's memory layout or address-space luck cannot decide a row
  (pyperf's reason for worker processes), and the spread between processes is kept.

Memory stays bounded: at most ``max_live`` workers are alive at once (one per row of a
batch); runs with more rows are measured batch by batch. A row whose worker fails to
start, crashes or overruns its budget gets that error; the other rows go on.

Each row keeps its raw samples, the median of every round (``rounds``) and of every
process (``processes``); :mod:`kanbench.compare` decides on those units.
"""

from __future__ import annotations

import signal
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

from kanbench.measure import RowJob, add_faults, empty_record, faults_per_step, fill_samples
from kanbench.records import RowResult
from kanbench.stats import summarize
from kanbench.worker import ServeWorker, kill_after


@dataclass
class InterleaveConfig:
    """How rows take turns: rounds, chunk length, processes per row, live workers."""

    rounds: int = 12  #: rounds per row in the whole run (split over the processes)
    chunk_time: float = 0.1  #: seconds of steps per chunk
    chunk_min_samples: int = 3  #: steps per chunk at least
    processes: int = 3  #: worker processes per row, one generation after another
    max_live: int = 8  #: rows measured side by side at most (one live worker each)
    memory: bool = True  #: peak-memory pass at the end (last generation's workers)

    def __post_init__(self):
        if self.rounds < 1 or self.processes < 1 or self.max_live < 1:
            raise ValueError("rounds, processes and max_live must be at least 1")
        if self.processes > self.rounds:
            raise ValueError(f"--processes {self.processes} is more than --rounds {self.rounds}: every process needs a round")
        if not self.chunk_time >= 0:
            raise ValueError("--chunk-time must not be negative")

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class _Row:
    job: RowJob
    record: RowResult
    forward: list = field(default_factory=list)
    backward: list = field(default_factory=list)
    round_f: list = field(default_factory=list)
    round_b: list = field(default_factory=list)
    proc_f: list = field(default_factory=list)
    proc_b: list = field(default_factory=list)
    faults: Optional[int] = 0  #: minor page faults over the measured chunks (None: not counted)
    worker: Optional[ServeWorker] = None
    started: float = field(default_factory=time.monotonic)


def _rounds_of(generation: int, config: InterleaveConfig) -> int:
    """The rounds generation ``generation`` takes: an even share, the first ones one more."""
    base, extra = divmod(config.rounds, config.processes)
    return base + (1 if generation < extra else 0)


def _order(rows: list, r: int) -> list:
    """Round ``r``'s order: rotated by r, reversed every other round (A B C, C' ... )."""
    if not rows:
        return rows
    k = r % len(rows)
    order = rows[k:] + rows[:k]
    return order if r % 2 == 0 else list(reversed(order))


def _timeout(job: RowJob) -> Optional[float]:
    return kill_after(job.budget_s) if job.budget_s else None


def _fail_from(row: _Row, exc: BaseException, stage: str) -> None:
    kind = "budget" if isinstance(exc, TimeoutError) else "crash"
    hint = f" (budget {row.job.budget_s:g} s)" if kind == "budget" and row.job.budget_s else ""
    row.record.fail(kind, f"worker failed during {stage}: {exc}{hint}")


def _start_generation(rows: list[_Row], workdir: str, g: int) -> None:
    """One warm worker per live row; all start (and warm up) before any is timed. The sanity
    gate runs in the first generation only: the same code on the same batch gives the same
    verdict, and a slow gate (a compiled model's float64 copy: 6 s) would cost every generation."""
    for i, row in enumerate(rows):
        job = row.job if g == 0 else replace(row.job, sanity=False)
        row.worker = ServeWorker(job, workdir, f"g{g}-r{i}")
    for row in rows:
        try:
            hello = row.worker.read(_timeout(row.job) or 1e9)
        except Exception as exc:
            _fail_from(row, exc, "start-up and warm-up")
            continue
        fields = dict(hello.get("record", {}))
        if g > 0:
            fields.pop("sanity", None)  # keep the first generation's report
        row.record.update(fields)


def _close(rows: list[_Row]) -> None:
    for row in rows:  # all asked first, so their exits overlap
        if row.worker is not None:
            row.worker.ask_to_quit()
    for row in rows:
        if row.worker is not None:
            row.worker.close()
            row.worker = None


def _chunk(row: _Row, config: InterleaveConfig) -> Optional[dict]:
    try:
        reply = row.worker.request(
            {"cmd": "chunk", "min_time": config.chunk_time, "min_samples": config.chunk_min_samples},
            _timeout(row.job) or 1e9,
        )
    except Exception as exc:
        _fail_from(row, exc, "a chunk")
        return None
    if "error" in reply:
        row.record.fail(reply.get("error_kind") or "crash", reply["error"])
        return None
    return reply


def _finish(row: _Row, processes: int) -> None:
    rec = row.record
    if row.forward:
        fill_samples(rec, row.forward, row.backward)
        rec.rounds = {"forward_ms": row.round_f, "backward_ms": row.round_b}
        rec.extra["processes"] = {"forward_ms": row.proc_f, "backward_ms": row.proc_b}
        rec.workers = processes
        rec.minor_faults_per_step = faults_per_step(row.faults, len(row.forward))
    rec.wall_s = round(time.monotonic() - row.started, 3)


def ignore_sigint():
    """Ignore SIGINT from now on; returns the handler to give back to :func:`restore_sigint`
    (None off the main thread, where signals cannot be handled)."""
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        return None


def restore_sigint(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during interleaved measurement; ``records`` hold what was measured until then."""

    def __init__(self, records: list[RowResult]):
        super().__init__("interrupted")
        self.records = records


def measure_batch(jobs: Sequence[RowJob], config: InterleaveConfig, on_generation=None, on_ready=None) -> list[RowResult]:
    """Measure ``jobs`` (at most ``max_live`` of them) interleaved; one record per job, in order.
    ``on_ready(g, n)``: generation g of n has started and warmed up, its rows start taking turns;
    ``on_generation(g, n)``: generation g is done.

    Ctrl-C closes the workers and raises :class:`BatchInterrupted` with the records so far."""
    rows = [_Row(job, empty_record(job)) for job in jobs]
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="kanbench-interleave-") as workdir:
        try:
            for g in range(config.processes):
                live = [r for r in rows if not r.record.failed]
                if not live:
                    break
                _start_generation(live, workdir, g)
                live = [r for r in live if not r.record.failed]
                if on_ready:
                    on_ready(g + 1, config.processes)
                pf = {id(r): [] for r in live}
                pb = {id(r): [] for r in live}
                for r in range(_rounds_of(g, config)):
                    for row in _order([x for x in live if not x.record.failed], r):
                        reply = _chunk(row, config)
                        if reply is None:
                            continue
                        row.forward.extend(reply["forward_ms"])
                        row.backward.extend(reply["backward_ms"])
                        pf[id(row)].extend(reply["forward_ms"])
                        pb[id(row)].extend(reply["backward_ms"])
                        row.round_f.append(summarize(reply["forward_ms"])["median"])
                        row.round_b.append(summarize(reply["backward_ms"])["median"])
                        row.faults = add_faults(row.faults, reply.get("minor_faults"))
                for row in live:
                    if pf[id(row)]:
                        row.proc_f.append(summarize(pf[id(row)])["median"])
                        row.proc_b.append(summarize(pb[id(row)])["median"])
                if g == config.processes - 1 and config.memory:
                    for row in live:
                        if row.record.failed or not row.job.memory:
                            continue
                        try:
                            row.record.update(row.worker.request({"cmd": "memory"}, _timeout(row.job) or 1e9).get("memory", {}))
                        except Exception as exc:
                            row.record.memory_method = f"unavailable ({exc})"
                _close(live)
                if on_generation:
                    on_generation(g + 1, config.processes)
        except KeyboardInterrupt:
            interrupted = True
            # `timeout -s INT` and a terminal both signal the whole process group: a second SIGINT
            # must not cut short the clean-up that keeps what was measured
            previous = ignore_sigint()
        finally:
            _close(rows)
            for row in rows:
                _finish(row, config.processes)
    records = [row.record for row in rows]
    if interrupted:
        restore_sigint(previous)
    if interrupted:
        kept = [rec for rec in records if rec.n_samples or rec.failed]  # nothing measured: not a row
        for rec in kept:
            if not rec.failed:
                rec.note = "interrupted: samples of the rounds measured before Ctrl-C"
        raise BatchInterrupted(kept)
    return records


def measure_jobs(
    jobs: Sequence[RowJob],
    config: InterleaveConfig,
    on_batch: Optional[Callable[[list[RowResult]], None]] = None,
    on_generation: Optional[Callable[[int, int], None]] = None,
    on_ready: Optional[Callable[[int, int], None]] = None,
) -> list[RowResult]:
    """Every job, in batches of ``max_live`` rows measured interleaved; ``on_batch(records)``
    after each batch (to write the results file).

    A batch without the MLP of its rows' device and workload measures a *companion* MLP
    alongside them (one more worker), whose per-round medians each row keeps as
    ``extra["baseline_rounds"]``: ratios to the MLP stay paired by round in every batch,
    not only in the one the MLP row itself was measured in. The companion is not a row."""
    out: list[RowResult] = []
    for start in range(0, len(jobs), config.max_live):
        batch = list(jobs[start : start + config.max_live])
        companions = _companions(batch, jobs) if len(jobs) > config.max_live else []
        try:
            records = measure_batch(batch + companions, config, on_generation, on_ready)
        except BatchInterrupted as exc:
            kept = _attach_companions(exc.records, companions)
            out.extend(kept)
            if on_batch:
                on_batch(kept)
            raise BatchInterrupted(out) from None
        records = _attach_companions(records, companions)
        out.extend(records)
        if on_batch:
            on_batch(records)
    return out


def _job_key(job: RowJob) -> tuple:
    return (job.device, job.workload.key, bool(job.compile), tuple(sorted(job.options.items())))


def _record_key(rec: RowResult) -> tuple:
    return (rec.device, rec.workload_key, bool(rec.compile), tuple(sorted((rec.options or {}).items())))


def _companions(batch: list[RowJob], jobs: Sequence[RowJob]) -> list[RowJob]:
    """The baseline jobs this batch's rows need and do not contain."""
    from kanbench.baseline import BASELINE

    baselines = {_job_key(j): j for j in jobs if j.impl == BASELINE}
    present = {_job_key(j) for j in batch if j.impl == BASELINE}
    wanted: dict = {}
    for j in batch:
        key = _job_key(j)
        if j.impl != BASELINE and key in baselines and key not in present:
            wanted.setdefault(key, baselines[key])
    return list(wanted.values())


def _attach_companions(records: list[RowResult], companions: list[RowJob]) -> list[RowResult]:
    """Drop the companions' records, giving their round medians to the rows they accompanied.

    A baseline record whose key is a companion's is the companion: by construction the batch
    itself has no baseline row of that key."""
    from kanbench.baseline import BASELINE

    if not companions:
        return records
    keys = {_job_key(j) for j in companions}
    found: dict = {}
    rows = []
    for rec in records:
        key = _record_key(rec)
        if rec.impl == BASELINE and key in keys and key not in found:
            found[key] = rec
        else:
            rows.append(rec)
    for rec in rows:
        comp = found.get(_record_key(rec))
        if comp is not None and comp.rounds and not comp.failed:
            rec.extra["baseline_rounds"] = dict(comp.rounds)
    return rows


def execute(
    jobs: Sequence[RowJob],
    config: InterleaveConfig,
    document,
    path,
    progress: Optional[Callable[[int, int, RowResult], None]] = None,
    on_generation: Optional[Callable[[int, int], None]] = None,
    on_ready: Optional[Callable[[int, int], None]] = None,
):
    """A run's rows measured interleaved into ``document``, the file rewritten after every batch.

    On Ctrl-C what was measured stays in the file (``complete: false``) and
    :class:`kanbench.runner.Interrupted` is raised."""
    from kanbench import results as results_mod
    from kanbench.runner import Interrupted

    def write():
        if path is not None:
            results_mod.write_atomic(path, document)

    def batch_done(records):
        first = len(document.results)
        document.results.extend(records)
        write()
        if progress:
            for i, rec in enumerate(records):
                progress(first + i + 1, len(jobs), rec)

    write()
    try:
        measure_jobs(jobs, config, on_batch=batch_done, on_generation=on_generation, on_ready=on_ready)
    except BatchInterrupted:
        previous = ignore_sigint()  # one more SIGINT must not lose the file
        try:
            document.interrupted = True
            write()
        finally:
            restore_sigint(previous)
        raise Interrupted(document, path) from None
    document.complete = True
    write()
    return document
