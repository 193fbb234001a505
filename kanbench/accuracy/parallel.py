"""The suite's units on several worker processes of this machine (``kanbench accuracy --jobs N``).

The suite's models are small: one training step of a 141-parameter network is mostly per-call
overhead, which a second intra-op thread does not shorten, so N single-threaded processes train
about N units at a time where one N-threaded process trains one. Each worker rebuilds the plan
from names (tasks and implementations are re-discovered there: a task's data generator is a
closure and does not cross a process boundary) and trains the units it is handed by index; the
parent gathers the records in plan order. A unit that fails in a worker is recorded as failed,
like in one process; a worker that dies takes only its unit down (the pool is rebuilt for the
rest).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from kanbench.accuracy.records import AccuracyResult


@dataclass(frozen=True)
class WorkerPlan:
    """What a worker needs to rebuild the parent's plan: picklable names and the run's configuration."""

    task_names: tuple
    impls: tuple
    config: object  #: kanbench.accuracy.suite.SuiteConfig
    shard: tuple
    extra_dirs: tuple = ()
    threads: int = 1


_STATE: dict = {}


def _init(plan: WorkerPlan) -> None:
    import torch

    from kanbench.accuracy import suite, tasks
    from kanbench.discovery import discover

    torch.set_num_threads(plan.threads)
    catalogue = tasks.catalogue()
    units = suite.plan([catalogue[n] for n in plan.task_names], plan.impls, plan.config, plan.shard)
    _STATE.update(units=units, registry=discover(plan.extra_dirs), config=plan.config, prepared={}, budgets={})


def _work(index: int) -> tuple:
    from kanbench.accuracy import suite

    unit, config, prepared = _STATE["units"][index], _STATE["config"], _STATE["prepared"]

    def data_for(seed: int, task=unit.task):
        key = (task.name, seed)
        if key not in prepared:
            prepared[key] = suite.prepare_split(task, config, seed)
        return prepared[key]

    return index, suite.run_unit(unit, _STATE["registry"], config, data_for, _STATE["budgets"])


def default_jobs() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def run(
    units: Sequence,
    plan: WorkerPlan,
    jobs: int,
    progress: Optional[Callable[[int, int, object, list, float], None]] = None,
) -> list[AccuracyResult]:
    """Train ``units`` (the parent's ``suite.plan`` of ``plan``) on ``jobs`` processes; the records
    in plan order. ``progress(done, total, unit, records, elapsed_s)`` after each unit, in the order
    they finish. KeyboardInterrupt stops the workers and propagates."""
    from kanbench.accuracy.suite import failed_records

    started = time.monotonic()
    results: dict[int, list] = {}
    pending = list(range(len(units)))
    context = multiprocessing.get_context("spawn")  # forked OpenMP pools can deadlock
    isolate = False  # after a worker died: the next unit alone, to tell whether it is the one
    while pending:
        batch = pending[:1] if isolate else pending
        pool = futures.ProcessPoolExecutor(
            max_workers=min(jobs, len(batch)), mp_context=context, initializer=_init, initargs=(plan,)
        )
        broke = False
        try:
            running = {pool.submit(_work, i): i for i in batch}
            for done in futures.as_completed(running):
                i = running[done]
                try:
                    _, records = done.result()
                except futures.process.BrokenProcessPool:
                    broke = True
                    break
                results[i] = records
                if progress:
                    progress(len(results), len(units), units[i], records, time.monotonic() - started)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if broke and isolate:  # this unit alone killed its worker
            i = batch[0]
            results[i] = failed_records(units[i], plan.config, "crash", "its worker process died (out of memory or a signal)")
            if progress:
                progress(len(results), len(units), units[i], results[i], time.monotonic() - started)
        isolate = broke and not isolate
        pending = [i for i in pending if i not in results]
    return [r for i in range(len(units)) for r in results[i]]


__all__ = ["WorkerPlan", "default_jobs", "run"]
