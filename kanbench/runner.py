"""Measuring whole runs.

A *run* measures its rows (:class:`RunPlan`: implementations x devices) one after another,
writes the results file again (atomically) after each, and turns every failure into that
row's ``error``. By default each row is measured in a fresh worker process
(:func:`kanbench.worker.measure_row_isolated`, ``python -m kanbench.worker``), as pyperf
does: every implementation starts from the same clean state (allocator caches, thread
pools, compiled kernels), a segfault or an out-of-memory kill ends only that row, and a
row that overruns its time budget can be stopped. ``isolate=False`` measures rows in this
process instead (:func:`kanbench.measure.measure_row`; quicker, used by tests and debugging).

What measures one row lives in :mod:`kanbench.measure`; its names are importable from
here too.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from kanbench import results as results_mod
from kanbench.measure import (  # noqa: F401  (re-exported: the row-level API)
    DEFAULT_BUDGET_S,
    Row,
    RowFailed,
    RowJob,
    add_faults,
    apply_memory,
    classify_failure,
    count_parameters,
    cuda_absent_reason,
    empty_record,
    faults_per_step,
    fill_samples,
    measure_row,
    open_row,
    release,
    run_sanity,
)
from kanbench.records import ResultsDocument, RowResult
from kanbench.timing import TimingConfig
from kanbench.workload import Workload


@dataclass
class RunPlan:
    """The rows of a run (implementations x devices) and how to measure them."""

    impls: list[str]
    devices: list[str]
    workload: Workload
    timing: TimingConfig = field(default_factory=TimingConfig)
    threads: Optional[int] = None
    extra_dirs: Sequence[str] = ()
    budget_s: Optional[float] = DEFAULT_BUDGET_S
    isolate: bool = True
    memory: bool = True
    #: --match: the Match (kanbench.matching) chosen per implementation
    matches: dict = field(default_factory=dict)
    time_broken: bool = False
    options: dict = field(default_factory=dict)
    compile: bool = False

    def jobs(self) -> list[RowJob]:
        return [
            RowJob(
                impl=i,
                device=d,
                workload=self.workload,
                timing=self.timing,
                threads=self.threads,
                extra_dirs=tuple(self.extra_dirs),
                budget_s=self.budget_s,
                memory=self.memory,
                widths=tuple(self.matches[i].widths) if i in self.matches else None,
                match=self.matches[i].to_dict() if i in self.matches else None,
                time_broken=self.time_broken,
                options={**self.options, **(getattr(self.matches[i], "options", {}) if i in self.matches else {})},
                compile=self.compile,
            )
            for i in self.impls
            for d in self.devices
        ]


class Interrupted(Exception):
    """Ctrl-C during a run: carries the document with the rows measured so far."""

    def __init__(self, document: ResultsDocument, path: Optional[Path]):
        super().__init__("interrupted")
        self.document = document
        self.path = path


def execute(
    plan: RunPlan,
    document: ResultsDocument,
    path: Optional[Path],
    *,
    registry=None,
    progress: Optional[Callable[[int, int, RowResult], None]] = None,
    measure: Optional[Callable[[RowJob], RowResult]] = None,
    on_start: Optional[Callable[[int, int, RowJob], None]] = None,
) -> ResultsDocument:
    """Measure every row of ``plan`` into ``document``, writing ``path`` after each row.

    On Ctrl-C the rows measured so far stay in the file (``complete: false``)
    and :class:`Interrupted` is raised.
    """
    if measure is None:
        if plan.isolate:
            from kanbench.worker import measure_row_isolated

            measure = measure_row_isolated
        else:
            measure = lambda job: measure_row(job, registry)  # noqa: E731
    jobs = plan.jobs()
    if path is not None:
        results_mod.write_atomic(path, document)
    for i, job in enumerate(jobs):
        if on_start:
            on_start(i + 1, len(jobs), job)
        try:
            record = measure(job)
        except KeyboardInterrupt:
            document.interrupted = True
            if path is not None:
                results_mod.write_atomic(path, document)
            raise Interrupted(document, path) from None
        document.results.append(record)
        if path is not None:
            results_mod.write_atomic(path, document)
        if progress:
            progress(i + 1, len(jobs), record)
    document.complete = True
    if path is not None:
        results_mod.write_atomic(path, document)
    return document


#: set by ``--executor slurm`` for its jobs: the command the user ran (a job's own argv is the
#: scheduler's runner script, e.g. submitit's ``_submit.py <job folder>``)
COMMAND_ENV = "KANBENCH_COMMAND"


def command_line() -> str:
    """The command as the user typed it (results files record it)."""
    import os

    if os.environ.get(COMMAND_ENV):
        return os.environ[COMMAND_ENV]
    prog = Path(sys.argv[0]).name
    if prog in ("__main__.py", "cli.py"):
        prog = "kanbench"
    return " ".join(shlex.quote(a) for a in [prog, *sys.argv[1:]])
