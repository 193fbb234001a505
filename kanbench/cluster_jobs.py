"""Following jobs submitted with ``--executor slurm`` (:mod:`kanbench.cluster`) and collecting their results.

A job's state comes from submitit (sacct), else from ``scontrol`` (clusters without
accounting have no sacct). Collecting writes one results file per partition (sweep shards
merged), and a job that failed, was cancelled or timed out (after submitit's one requeue)
becomes rows that carry its state and the tail of its log, next to everything the other
jobs measured.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from kanbench.cluster import FAILED_STATES, JobRecord, Submission


def _job(folder: str, job_id: str):
    import submitit

    return submitit.SlurmJob(folder=folder, job_id=job_id)


def _scontrol_state(job_id: str) -> str:
    """The job's state from ``scontrol show job`` ("" when slurmctld no longer knows it)."""
    try:
        proc = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for token in proc.stdout.split():
        if token.startswith("JobState="):
            return token.split("=", 1)[1].upper()
    return ""


def _state(job) -> str:
    """submitit's view (sacct), else scontrol's: clusters without accounting have no sacct."""
    try:
        state = str(job.state).upper()
    except Exception:
        state = "UNKNOWN"
    if state.startswith("UNKNOWN"):
        state = _scontrol_state(str(job.job_id)) or state
    return state


def _over(job, state: str) -> bool:
    if state.split()[0] in FAILED_STATES or state == "COMPLETED":
        return True
    try:
        return bool(job.done())
    except Exception:
        return False


def summarize_states(states: Sequence[str]) -> str:
    queued = sum(s in ("PENDING", "REQUEUED", "CONFIGURING", "SUSPENDED") for s in states)
    running = sum(s in ("RUNNING", "COMPLETING") for s in states)
    done = sum(s == "COMPLETED" for s in states)
    failed = sum(s.split()[0] in FAILED_STATES for s in states)
    return f"{len(states)} job(s): {queued} queued, {running} running, {done} done, {failed} failed"


def wait(sub: Submission, progress: Callable[[str], None], poll_s: float = 2.0, timeout_s: Optional[float] = None) -> None:
    """Poll until every job is over, reporting queued/running/done/failed when it changes."""
    jobs = [_job(sub.folder, j.job_id) for j in sub.jobs]
    last = ""
    started = time.monotonic()
    while True:
        states = [_state(j) for j in jobs]
        line = summarize_states(states)
        if line != last:
            progress(line)
            last = line
        if all(_over(j, s) for j, s in zip(jobs, states)):
            return
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise TimeoutError(line)
        time.sleep(poll_s)


def cancel(sub: Submission) -> None:
    for j in sub.jobs:
        try:
            _job(sub.folder, j.job_id).cancel(check=False)
        except Exception:
            pass


def _log_tail(job, lines: int = 8) -> str:
    for getter in (job.stderr, job.stdout):
        try:
            text = getter() or ""
        except Exception:
            text = ""
        if text.strip():
            return "\n".join(text.strip().splitlines()[-lines:])
    return ""


def failed_rows(record: JobRecord, state: str, message: str, tail: str, workload: Optional[dict] = None) -> list:
    """The rows a failed job should have measured, each carrying the job's error and log tail."""
    from kanbench.records import RowResult

    rows = []
    for impl in record.impls or ["?"]:
        row = RowResult(impl=impl, device="?", workload=dict(workload or {}))
        row.fail("job-" + state.split()[0].lower(), f"slurm job {record.job_id} on {record.partition}: {message}")
        row.extra["log_tail"] = tail
        row.extra["slurm"] = {"job_id": record.job_id, "partition": record.partition, "shard": record.shard}
        rows.append(row)
    return rows


def _workload_of(doc) -> dict:
    return dict((doc.config or {}).get("workload") or {})


def merge(docs: list):
    """One document from a partition's job outputs (sweep shards concatenated)."""
    first = docs[0]
    for doc in docs[1:]:
        first.results.extend(doc.results)
        first.skipped.extend(s for s in doc.skipped if s.impl not in {k.impl for k in first.skipped})
    first.config.pop("shard", None)
    if len(docs) > 1:
        first.config["shards"] = len(docs)
        first.config["shard_machines"] = [d.machine.get("hostname") for d in docs]
    first.complete = all(d.complete for d in docs)
    return first


def collect(sub: Submission, results_dir: Optional[str] = None) -> dict:
    """Gather every job's output: {partition: (path written, ResultsDocument)}; failed jobs become error rows."""
    from kanbench import results as results_mod
    from kanbench.records import ResultsDocument

    target = Path(results_dir or sub.results_dir)
    target.mkdir(parents=True, exist_ok=True)
    by_partition: dict = {}
    for record in sub.jobs:
        job = _job(sub.folder, record.job_id)
        state = _state(job)
        doc, problem = None, None
        if Path(record.out).exists():
            try:
                doc = results_mod.load(record.out)
            except results_mod.ResultsError as exc:
                problem = f"its results file is unreadable ({exc})"
        finished = doc is not None and doc.complete
        if not finished:
            tail = _log_tail(job)
            if problem is None:  # (not job.exception(): it waits on sacct, which clusters may lack)
                detail = tail.splitlines()[-1] if tail else ""
                problem = state.split()[0] + (f": {detail}" if detail else "")
            if doc is None:
                doc = ResultsDocument(machine={}, config={"mode": sub.command, "slurm": True})
            # rows the job measured before it died are kept; the others carry the job's fate
            have = {getattr(r, "impl", None) for r in doc.results}
            missing = dataclasses.replace(record, impls=[i for i in record.impls if i not in have] or ([] if have else ["?"]))
            if missing.impls:
                state_word = state if state.split()[0] in FAILED_STATES else "FAILED"
                doc.results.extend(failed_rows(missing, state_word, problem, tail, _workload_of(doc)))
        for row in doc.results:
            if hasattr(row, "extra"):
                row.extra.setdefault("slurm", {"job_id": record.job_id, "partition": record.partition, "shard": record.shard})
        by_partition.setdefault(record.partition, []).append(doc)
    written = {}
    for partition, docs in by_partition.items():
        good = [d for d in docs if d.machine]
        merged = merge(good + [d for d in docs if not d.machine] if good else docs)
        merged.config["slurm"] = {
            "partition": partition,
            "jobs": [j.job_id for j in sub.jobs if j.partition == partition],
            "folder": sub.folder,
        }
        host = (merged.machine or {}).get("hostname") or "slurm"
        path = results_mod.reserve_path(None, target, f"{partition}-{host}", sub.command)
        results_mod.write_atomic(path, merged)
        written[partition] = (path, merged)
    return written
