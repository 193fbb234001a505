"""Running kanbench commands on Slurm through submitit (``--executor slurm``).

kanbench writes no scheduler: submitit submits, tracks and requeues the jobs. A job runs
the very command the user typed, with ``--executor local`` and ``--out`` set to a file in
the job folder, through that command's own entry point (an ``argv -> exit status``
callable the command hands to :func:`submit`, :class:`kanbench.commands.entry.CommandEntry`),
so it measures with exactly the local code path (the fingerprint is the node's; rows are
interleaved within the job). The unit of work:

- ``run``, ``leaderboard``, ``fit``: one job per partition (rows must share a job to be
  interleaved and paired with the MLP of the same rounds);
- ``sweep``: ``--slurm-shards N`` jobs per partition, an array job, each measuring
  ``--shard i/N`` of the points.

A submission leaves a manifest (``kanbench-submission.json``) in the job folder, so
``kanbench collect FOLDER`` can gather results later (``--no-wait``) or after Ctrl-C.
This module checks and submits; following the submitted jobs (their states, waiting,
cancelling) and collecting their results is :mod:`kanbench.cluster_jobs`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

MANIFEST = "kanbench-submission.json"
#: submitit job states that mean the job is over without a result
FAILED_STATES = ("FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")
LOCAL_FILESYSTEMS = ("tmpfs", "ramfs", "devtmpfs")


class ClusterError(Exception):
    """Bad input for --executor slurm (one line; nothing was submitted)."""


@dataclass
class SlurmOptions:
    """What ``--executor slurm`` takes, mapped onto submitit's parameters."""

    partitions: list = field(default_factory=list)
    folder: str = "kanbench-jobs"
    array_parallelism: int = 16
    gpus_per_job: int = 0
    cpus_per_job: Optional[int] = None
    time_min: int = 60
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    options: dict = field(default_factory=dict)  #: extra sbatch options (--slurm-option key=value)
    shards: int = 1
    wait: bool = True
    cancel_on_interrupt: bool = False
    poll_s: float = 2.0

    def submitit_parameters(self, partition: str) -> dict:
        params = {
            "slurm_partition": partition,
            "timeout_min": self.time_min,
            "slurm_array_parallelism": self.array_parallelism,
            "nodes": 1,
            "tasks_per_node": 1,
            "name": "kanbench",
        }
        if self.cpus_per_job:
            params["cpus_per_task"] = self.cpus_per_job
        if self.gpus_per_job:
            params["gpus_per_node"] = self.gpus_per_job
        for key, value in (("account", self.account), ("qos", self.qos), ("constraint", self.constraint)):
            if value:
                params[f"slurm_{key}"] = value
        if self.options:
            params["slurm_additional_parameters"] = dict(self.options)
        return params


@dataclass
class JobRecord:
    """One submitted job as the manifest keeps it."""

    job_id: str
    partition: str
    shard: str  #: "i/n" (sweeps) or "0/1"
    out: str  #: the results file the job writes
    impls: list = field(default_factory=list)


@dataclass
class Submission:
    """The manifest: what was submitted, where the results will be, how to gather them."""

    command: str  #: run, sweep, leaderboard or fit
    argv: list
    folder: str
    results_dir: str
    jobs: list = field(default_factory=list)  #: JobRecord
    submitted_at: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["jobs"] = [asdict(j) if isinstance(j, JobRecord) else j for j in self.jobs]
        return d

    @classmethod
    def load(cls, folder: Path) -> "Submission":
        path = Path(folder) / MANIFEST
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ClusterError(f"{folder} holds no kanbench submission ({MANIFEST} not found)") from None
        except (OSError, ValueError) as exc:
            raise ClusterError(f"cannot read {path}: {exc}") from None
        d["jobs"] = [JobRecord(**j) for j in d.get("jobs", [])]
        return cls(**d)

    def save(self) -> None:
        from kanbench.results import write_atomic

        write_atomic(Path(self.folder) / MANIFEST, self.to_dict())


# ----------------------------------------------------------------------------- checks


def parse_partitions(values: Optional[Sequence[str]]) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return list(dict.fromkeys(out))


def parse_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ClusterError(f"--slurm-option takes key=value (an sbatch option without its dashes), got {text!r}")
    return key.strip().lstrip("-").replace("-", "_"), value.strip()


def filesystem_type(path: Path) -> str:
    """The type of the filesystem ``path`` lives on (from /proc/mounts; "" when unknown)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    path = path.resolve()
    best, kind = "", ""
    # the longest mount point holding ``path``; of one mounted over another, the later (the visible one)
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3:
            mount = parts[1].replace("\\040", " ")
            if (str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                best, kind = mount, parts[2]
    return kind


def available_partitions() -> list[str]:
    proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise ClusterError(f"sinfo failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']}")
    return [p.strip().rstrip("*") for p in proc.stdout.split() if p.strip()]


def check(options: SlurmOptions, threads: Optional[int], in_process: bool) -> None:
    """Everything that can be wrong before submitting; raises ClusterError with one line."""
    if in_process:
        raise ClusterError("--executor slurm measures in worker processes on the nodes: drop --in-process")
    if not options.partitions:
        raise ClusterError("--executor slurm needs --partition NAME (repeatable or comma-separated)")
    if options.cpus_per_job and threads and threads > options.cpus_per_job:
        raise ClusterError(f"--threads {threads} is more than --cpus-per-job {options.cpus_per_job}")
    if options.shards < 1:
        raise ClusterError("--slurm-shards must be at least 1")
    folder = Path(options.folder)
    kind = filesystem_type(folder.parent if not folder.exists() else folder)
    if kind in LOCAL_FILESYSTEMS:
        raise ClusterError(
            f"job folder {folder} is on {kind}, which the compute nodes cannot see: "
            "give --slurm-folder a directory on a shared filesystem"
        )
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ClusterError('--executor slurm needs submitit: pip install "kanbench[slurm]" (or: pip install submitit)') from None
    if shutil.which("sbatch") is None:
        raise ClusterError("--executor slurm: sbatch not found (no Slurm client on this machine's PATH)")
    known = available_partitions()
    unknown = [p for p in options.partitions if p not in known]
    if unknown:
        raise ClusterError(f"unknown partition {', '.join(unknown)}; this cluster has: {', '.join(known) or 'none'}")
    folder.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------- the job


class KanbenchJob:
    """What a Slurm job runs: ``kanbench ARGV --executor local --out OUT`` on the node, through
    ``entry``, the command's own entry point (``entry(argv) -> exit status``, picklable).

    Checkpointable in submitit's sense: on preemption or timeout submitit calls
    :meth:`checkpoint` and requeues the same command (timeouts once: ``slurm_max_num_timeout``).
    """

    def __init__(self, entry: Callable[[Sequence[str]], int], argv: Sequence[str], out: str):
        self.entry = entry
        self.argv = list(argv)
        self.out = out

    def __call__(self) -> dict:
        status = self.entry([*self.argv, "--executor", "local", "--out", self.out])
        if not Path(self.out).exists():
            raise RuntimeError(f"kanbench exited {status} without writing {self.out}")
        return {"status": status, "out": self.out, "node": os.uname().nodename}

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(KanbenchJob(self.entry, self.argv, self.out))


# ----------------------------------------------------------------------------- submit


#: options of --executor slurm, removed from the argv a job runs: name -> takes a value
SLURM_FLAGS = {
    "--executor": True,
    "--partition": True,
    "--slurm-folder": True,
    "--slurm-array-parallelism": True,
    "--gpus-per-job": True,
    "--cpus-per-job": True,
    "--slurm-time": True,
    "--slurm-account": True,
    "--slurm-qos": True,
    "--slurm-constraint": True,
    "--slurm-option": True,
    "--slurm-shards": True,
    "--no-wait": False,
    "--cancel-on-interrupt": False,
    "--out": True,
    "--results-dir": True,
    "--shard": True,
    "--markdown": True,
}


def job_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` without the Slurm options and the output options (the job sets its own)."""
    out, skip = [], False
    for tok in argv:
        if skip:
            skip = False
            continue
        name = tok.split("=", 1)[0]
        if name in SLURM_FLAGS:
            skip = SLURM_FLAGS[name] and "=" not in tok
            continue
        out.append(tok)
    return out


def submit(
    command: str,
    argv: Sequence[str],
    options: SlurmOptions,
    results_dir: str,
    impls: Sequence[str] = (),
    *,
    entry: Callable[[Sequence[str]], int],
) -> Submission:
    """Submit one job per partition (``shards`` per partition for sweeps), each running
    ``entry(argv)`` (the command's entry point, see :class:`KanbenchJob`); returns the manifest."""
    import submitit

    folder = Path(options.folder).resolve()
    base = job_argv(argv)
    sub = Submission(command, list(argv), str(folder), str(Path(results_dir).resolve()), submitted_at=time.time())
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm", slurm_max_num_timeout=1)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for partition in options.partitions:
        executor.update_parameters(**options.submitit_parameters(partition))
        shards = options.shards if command in ("sweep", "accuracy") else 1
        calls = []
        for i in range(shards):
            out = folder / "out" / f"{stamp}_{partition}_{command}_{i}of{shards}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            extra = ["--shard", f"{i}/{shards}"] if shards > 1 else []
            calls.append((KanbenchJob(entry, [*base, *extra], str(out)), f"{i}/{shards}", str(out)))
        with executor.batch():
            jobs = [executor.submit(call) for call, _, _ in calls]
        for job, (_, shard, out) in zip(jobs, calls):
            sub.jobs.append(JobRecord(str(job.job_id), partition, shard, out, list(impls)))
    sub.save()
    return sub
