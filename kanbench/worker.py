"""Worker process entry points.

This module owns the process plumbing: the workers' environment
(:func:`worker_env`), one row in a fresh process (:func:`measure_row_isolated`,
used by ``kanbench run`` and ``sweep``) and the long-lived chunk servers of the
interleaved modes (:class:`ServeWorker`). Entry points:

``python -m kanbench.worker JOB.json RECORD.json``
    Measure one row (:func:`kanbench.measure.measure_row`) and write its record as JSON.
    Started by :func:`measure_row_isolated`.

``python -m kanbench.worker --serve JOB.json``
    Build the row's model, warm it up, then measure chunks on request: the A/B mode
    (:mod:`kanbench.ab`) keeps one such worker per source tree and alternates between
    them. Requests are JSON lines on stdin; replies are JSON lines on the file
    descriptor named by ``KANBENCH_RESULT_FD`` (stdout stays free for whatever the
    implementation prints).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from kanbench.measure import RowJob, empty_record
from kanbench.records import RowResult


def kill_after(budget_s: float) -> float:
    """Seconds after which a worker is killed: its budget plus time to start, import and
    run the memory pass (one more step)."""
    return budget_s + 15.0 + 0.25 * budget_s


#: OpenMP thread placement of CPU rows' workers (kept when the user set them): one thread per core,
#: the team packed from the first core. Unpinned, the kernel places a worker's OpenMP threads
#: when they are created, and where it put them decides the worker's speed for its whole life:
#: on this 2-core VM a process whose helper thread shared the main thread's core ran the MLP's
#: small matmuls 2x slower (0.11 vs 0.055 ms forward at the seed workload) and our layers 1.35x
#: slower, so (f+b)/MLP moved between 2.07 and 2.62 from run to run (5 runs, ±19%). Pinned, 4
#: runs gave 2.60-2.63 (see benchmarks/results/reproducibility-pinned-2026-11-29-0249.md).
OPENMP_PLACEMENT = {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}


def pins_threads(device: str) -> bool:
    """Whether workers of rows on ``device`` get :data:`OPENMP_PLACEMENT`: CPU rows only.

    libgomp applies ``OMP_PROC_BIND`` when torch is imported, to the process's main thread
    (``os.sched_getaffinity`` in a worker reads {0} from then on, on any number of cores), and
    every thread that thread starts later inherits that one core: autograd's per-device thread
    that runs a CUDA backward, torch.compile's compile threads, the CUDA driver's own. For a
    CUDA row the arithmetic is on the GPU and the CPU's work is launching kernels from those
    threads: pinned, they share one core with each other, and with every other worker live at
    the same time (each packs from core 0), which slows warm-up and the first (compiling) step.
    CUDA workers are therefore left to the scheduler; an ``OMP_*`` the user set still applies.
    """
    return not str(device).startswith("cuda")


def worker_env(device: str = "cpu") -> dict:
    """The environment of a worker process for a row on ``device``: this kanbench importable,
    no display, OpenMP threads pinned for CPU rows (:func:`pins_threads`)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    # plots from implementations never need a display
    env.setdefault("MPLBACKEND", "Agg")
    if pins_threads(device):
        for key, value in OPENMP_PLACEMENT.items():
            env.setdefault(key, value)
    return env


def measure_row_isolated(job: RowJob, python: Optional[str] = None, cwd: Optional[str] = None) -> RowResult:
    """Measure one row in a fresh worker process; a crash, kill or hang becomes the row's error."""
    record = empty_record(job)
    with tempfile.TemporaryDirectory(prefix="kanbench-worker-") as tmp:
        job_path = Path(tmp) / "job.json"
        out_path = Path(tmp) / "record.json"
        log_path = Path(tmp) / "worker.log"
        job_path.write_text(json.dumps(job.to_dict()))
        cmd = [python or sys.executable, "-m", "kanbench.worker", str(job_path), str(out_path)]
        timeout = kill_after(job.budget_s) if job.budget_s else None
        started = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=worker_env(job.device), cwd=cwd
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                record = _partial(out_path, record)
                return record.fail(
                    "budget",
                    f"worker killed after {time.monotonic() - started:.0f} s: exceeded the per-row time budget "
                    f"of {job.budget_s:g} s (a single step is too slow for this budget; raise --budget)",
                )
            except BaseException:  # Ctrl-C: stop the worker too
                proc.kill()
                proc.wait()
                raise
        if rc == 0 and out_path.exists():
            try:
                return RowResult.from_dict(json.loads(out_path.read_text()))
            except json.JSONDecodeError:
                pass
        record = _partial(out_path, record)
        tail = log_tail(log_path)
        if rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
            hint = " (the system's out-of-memory killer?)" if -rc == signal.SIGKILL else ""
            kind = "oom" if -rc == signal.SIGKILL else "crash"
            return record.fail(kind, f"worker process killed by {name}{hint}{': ' + tail if tail else ''}")
        return record.fail("crash", f"worker process exited with status {rc}{': ' + tail if tail else ''}")


def _partial(path: Path, fallback: RowResult) -> RowResult:
    """What a worker had checkpointed before it died (parameter counts, samples), if anything."""
    try:
        return RowResult.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError):
        return fallback


def log_tail(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


class ServeWorker:
    """A ``kanbench.worker --serve`` process for one side of one row."""

    def __init__(self, job: RowJob, directory: str, tag: str):
        self.job_path = Path(directory) / f"{tag}.json"
        self.log_path = Path(directory) / f"{tag}.log"
        self.job_path.write_text(json.dumps(job.to_dict()))
        read_fd, write_fd = os.pipe()
        env = worker_env(job.device)
        env["KANBENCH_RESULT_FD"] = str(write_fd)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kanbench.worker", "--serve", str(self.job_path)],
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "r")

    def read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self._reader], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer within {timeout:.0f} s")
        line = self._reader.readline()
        if not line:
            rc = self.proc.poll()
            tail = self.log_tail()
            raise RuntimeError(f"worker process ended (status {rc}){': ' + tail if tail else ''}")
        return json.loads(line)

    def request(self, message: dict, timeout: float) -> dict:
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()
        return self.read(timeout)

    def log_tail(self) -> str:
        return log_tail(self.log_path)

    def ask_to_quit(self) -> None:
        """Tell the worker to exit (without waiting: closing many workers overlaps their exits)."""
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.flush()
        except Exception:
            pass

    def close(self) -> None:
        self.ask_to_quit()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.close()
        self._log.close()


def serve(job_path: str) -> int:
    from kanbench import memory, timing
    from kanbench.measure import RowFailed, classify_failure, open_row

    out = os.fdopen(int(os.environ["KANBENCH_RESULT_FD"]), "w", buffering=1)

    def reply(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    with open(job_path) as f:
        job = RowJob.from_dict(json.load(f))
    record = empty_record(job)
    try:
        row = open_row(job, record)
        clock = timing.make_clock(row.device)
        facts: dict = {}
        record.warmup_iterations = timing.warm_up(row.model, row.pool, clock, job.timing, facts=facts)
        record.first_step_s = facts.get("first_step_s")
    except RowFailed:
        reply({"ready": False, "record": record.to_dict()})
        return 0
    except Exception as exc:
        reply({"ready": False, "record": classify_failure(record, exc, "warm-up", job).to_dict()})
        return 0
    # what is alive now (torch, the implementation's imports, the model) stays alive: freeze it,
    # so the collection before every chunk (timing.collect) walks only new objects -- walking
    # all of them took 0.09 s per chunk with torch, 0.17 s with pykan's imports
    gc.collect()
    gc.freeze()
    reply({"ready": True, "record": record.to_dict()})
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.get("cmd")
        if cmd == "quit":
            break
        try:
            if cmd == "chunk":
                samples = timing.Samples()
                timing.collect(
                    row.model,
                    row.pool,
                    clock,
                    samples,
                    float(request.get("min_time", 0.2)),
                    int(request.get("min_samples", 5)),
                    int(request.get("max_samples", 100000)),
                )
                reply(
                    {"forward_ms": samples.forward_ms, "backward_ms": samples.backward_ms, "minor_faults": samples.minor_faults}
                )
            elif cmd == "memory":
                peaks = memory.phase_peaks(row.model, row.pool, row.device)
                if row.device.type == "cpu":
                    peaks["rss_peak_bytes"] = memory.rss_peak_bytes()
                reply({"memory": peaks})
            else:
                reply({"error": f"unknown command {cmd!r}"})
        except Exception as exc:
            failed = classify_failure(dataclasses.replace(record), exc, cmd or "?", job)
            reply({"error": failed.error, "error_kind": failed.error_kind})
    return 0


def main(argv=None) -> int:
    from kanbench import allocator

    allocator.keep_freed_memory()  # before torch and the model allocate anything
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--serve":
        return serve(argv[1])
    if len(argv) != 2:
        print("usage: python -m kanbench.worker JOB.json RECORD.json | --serve JOB.json", file=sys.stderr)
        return 2
    from kanbench import results
    from kanbench.measure import measure_row

    with open(argv[0]) as f:
        job = RowJob.from_dict(json.load(f))
    record = measure_row(job, checkpoint=lambda partial: results.write_atomic(argv[1], partial.to_dict()))
    results.write_atomic(argv[1], record.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
