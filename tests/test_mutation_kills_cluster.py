"""kanbench.cluster and kanbench.cluster_jobs without a scheduler: submitit, sbatch, sinfo,
scontrol and sacct are replaced by fakes, so the submission, job-state and collect logic is
checked exactly in milliseconds (the real Slurm runs are tests/test_slurm.py, `make test-slurm`)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from kanbench import cluster, cluster_jobs
from kanbench import results as results_mod
from kanbench.cluster import ClusterError, JobRecord, SlurmOptions, Submission
from kanbench.records import ResultsDocument, RowResult, Skipped

# ----------------------------------------------------------------------------- options and manifest


def test_submitit_parameters_exactly():
    assert SlurmOptions().submitit_parameters("p") == {
        "slurm_partition": "p",
        "timeout_min": 60,
        "slurm_array_parallelism": 16,
        "nodes": 1,
        "tasks_per_node": 1,
        "name": "kanbench",
    }
    full = SlurmOptions(
        time_min=5,
        array_parallelism=3,
        cpus_per_job=4,
        gpus_per_job=2,
        account="acc",
        qos="q",
        constraint="c",
        options={"mem": "1G"},
    )
    params = full.submitit_parameters("gpu")
    assert params == {
        "slurm_partition": "gpu",
        "timeout_min": 5,
        "slurm_array_parallelism": 3,
        "nodes": 1,
        "tasks_per_node": 1,
        "name": "kanbench",
        "cpus_per_task": 4,
        "gpus_per_node": 2,
        "slurm_account": "acc",
        "slurm_qos": "q",
        "slurm_constraint": "c",
        "slurm_additional_parameters": {"mem": "1G"},
    }
    assert params["slurm_additional_parameters"] is not full.options  # a copy
    d = SlurmOptions()
    assert (d.folder, d.gpus_per_job, d.cpus_per_job, d.shards, d.wait, d.cancel_on_interrupt, d.poll_s) == (
        "kanbench-jobs",
        0,
        None,
        1,
        True,
        False,
        2.0,
    )
    assert (d.account, d.qos, d.constraint, d.partitions, d.options) == (None, None, None, [], {})


def test_submission_round_trip_and_load_errors(tmp_path):
    sub = Submission("run", ["run", "--impl", "mlp"], str(tmp_path), str(tmp_path / "res"), submitted_at=12.5)
    sub.jobs.append(JobRecord("7", "p", "0/1", str(tmp_path / "o.json"), ["mlp"]))
    sub.jobs.append({"job_id": "8"})  # a dict (as loaded elsewhere) is kept as it is
    d = sub.to_dict()
    assert d["jobs"] == [
        {"job_id": "7", "partition": "p", "shard": "0/1", "out": str(tmp_path / "o.json"), "impls": ["mlp"]},
        {"job_id": "8"},
    ]
    sub.jobs.pop()
    sub.save()
    assert json.loads((tmp_path / cluster.MANIFEST).read_text()) == sub.to_dict()
    assert cluster.MANIFEST == "kanbench-submission.json"
    back = Submission.load(tmp_path)
    assert back == sub and isinstance(back.jobs[0], JobRecord)
    # a manifest without jobs
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / cluster.MANIFEST).write_text(
        json.dumps({"command": "fit", "argv": [], "folder": "f", "results_dir": "r"})
    )
    assert Submission.load(tmp_path / "empty") == Submission("fit", [], "f", "r")
    with pytest.raises(ClusterError, match=r"holds no kanbench submission \(kanbench-submission.json not found\)"):
        Submission.load(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / cluster.MANIFEST).write_text("{not json")
    with pytest.raises(ClusterError, match="^cannot read .*kanbench-submission.json: "):
        Submission.load(tmp_path / "bad")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / cluster.MANIFEST).mkdir()  # OSError (a directory)
    with pytest.raises(ClusterError, match="^cannot read "):
        Submission.load(tmp_path / "dir")


def test_parse_partitions_and_options():
    assert cluster.parse_partitions(None) == []
    assert cluster.parse_partitions([]) == []
    assert cluster.parse_partitions(["a, b", "b,c", " ,", "a"]) == ["a", "b", "c"]
    assert cluster.parse_option("mem=4G") == ("mem", "4G")
    assert cluster.parse_option(" --mail-type = END ") == ("mail_type", "END")
    assert cluster.parse_option("a=b=c") == ("a", "b=c")
    assert cluster.parse_option("x=") == ("x", "")
    for bad in ("mem", "=4G", " =4G"):
        with pytest.raises(ClusterError, match=r"--slurm-option takes key=value \(an sbatch option without its dashes\), got "):
            cluster.parse_option(bad)


def _fake_mounts(monkeypatch, text):
    real = Path

    class FakePath(type(Path())):
        def read_text(self, *a, **k):
            if str(self) == "/proc/mounts":
                if text is None:
                    raise OSError("no /proc")
                return text
            return real.read_text(self, *a, **k)

    monkeypatch.setattr(cluster, "Path", FakePath)


def test_filesystem_type_takes_the_longest_mount(monkeypatch, tmp_path):
    mounts = "\n".join(
        [
            "rootfs / ext4 rw 0 0",
            f"tmp {tmp_path} tmpfs rw 0 0",
            f"sub {tmp_path}/a\\040b nfs rw 0 0",
            "short line",
            f"x {tmp_path}/ab xfs rw 0 0",
        ]
    )
    _fake_mounts(monkeypatch, mounts)
    (tmp_path / "a b").mkdir()
    (tmp_path / "abc").mkdir()
    assert cluster.filesystem_type(tmp_path) == "tmpfs"  # the mount itself
    assert cluster.filesystem_type(tmp_path / "a b" / "f") == "nfs"  # "\040" is a space
    assert cluster.filesystem_type(tmp_path / "abc") == "tmpfs"  # /ab is not a parent of /abc
    assert cluster.filesystem_type(Path("/usr")) == "ext4"
    _fake_mounts(monkeypatch, f"a {tmp_path} nfs rw\nb / ext4 rw")  # a shorter mount listed later loses
    assert cluster.filesystem_type(tmp_path / "q") == "nfs"
    _fake_mounts(monkeypatch, None)
    assert cluster.filesystem_type(tmp_path) == ""
    _fake_mounts(monkeypatch, "x y\n")
    assert cluster.filesystem_type(tmp_path) == ""


def _fake_run(monkeypatch, module, returncode=0, stdout="", stderr="", raises=None, calls=None):
    def run(cmd, **kwargs):
        if calls is not None:
            calls.append((cmd, kwargs))
        if raises:
            raise raises
        return subprocess.CompletedProcess(cmd, returncode, stdout, stderr)

    monkeypatch.setattr(module.subprocess, "run", run)


def test_available_partitions(monkeypatch):
    calls = []
    _fake_run(monkeypatch, cluster, stdout="debug*\n gpu \n\n", calls=calls)
    assert cluster.available_partitions() == ["debug", "gpu"]
    assert calls == [(["sinfo", "-h", "-o", "%P"], {"capture_output": True, "text": True, "timeout": 30})]
    _fake_run(monkeypatch, cluster, returncode=1, stderr="x\nslurm_load_partitions: down\n")
    with pytest.raises(ClusterError) as e:
        cluster.available_partitions()
    assert str(e.value) == "sinfo failed: ['slurm_load_partitions: down']"
    _fake_run(monkeypatch, cluster, returncode=1, stdout="only stdout\n")
    with pytest.raises(ClusterError, match=r"^sinfo failed: \['only stdout'\]$"):
        cluster.available_partitions()
    _fake_run(monkeypatch, cluster, returncode=1)
    with pytest.raises(ClusterError, match=r"^sinfo failed: \['no output'\]$"):
        cluster.available_partitions()


@pytest.fixture
def slurm_present(monkeypatch):
    """A machine with submitit, sbatch and partitions a, b, on a shared filesystem."""
    monkeypatch.setitem(sys.modules, "submitit", types.ModuleType("submitit"))
    monkeypatch.setattr(cluster.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(cluster, "available_partitions", lambda: ["a", "b"])
    seen = []

    def fs(path):
        seen.append(path)
        return "nfs"

    monkeypatch.setattr(cluster, "filesystem_type", fs)
    return seen


def test_check_every_refusal(monkeypatch, tmp_path, slurm_present):
    folder = tmp_path / "jobs" / "deep"
    ok = SlurmOptions(partitions=["a"], folder=str(folder), cpus_per_job=4)
    cluster.check(ok, threads=4, in_process=False)
    assert folder.is_dir() and slurm_present == [folder.parent]  # not there yet: its parent's filesystem
    cluster.check(ok, threads=None, in_process=False)
    assert slurm_present[-1] == folder  # there now: its own
    cluster.check(SlurmOptions(partitions=["a", "b"], folder=str(folder)), threads=64, in_process=False)

    def refused(options, threads=None, in_process=False):
        with pytest.raises(ClusterError) as e:
            cluster.check(options, threads, in_process)
        return str(e.value)

    assert refused(ok, in_process=True) == "--executor slurm measures in worker processes on the nodes: drop --in-process"
    assert refused(SlurmOptions(folder=str(folder))) == "--executor slurm needs --partition NAME (repeatable or comma-separated)"
    assert refused(ok, threads=5) == "--threads 5 is more than --cpus-per-job 4"
    assert refused(SlurmOptions(partitions=["a"], folder=str(folder), shards=0)) == "--slurm-shards must be at least 1"
    cluster.check(SlurmOptions(partitions=["a"], folder=str(folder), shards=1), None, False)
    assert refused(SlurmOptions(partitions=["a", "c", "d"], folder=str(folder))) == (
        "unknown partition c, d; this cluster has: a, b"
    )
    monkeypatch.setattr(cluster, "available_partitions", lambda: [])
    assert refused(ok) == "unknown partition a; this cluster has: none"
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    assert refused(ok) == "--executor slurm: sbatch not found (no Slurm client on this machine's PATH)"
    monkeypatch.setitem(sys.modules, "submitit", None)  # import fails
    assert refused(ok) == '--executor slurm needs submitit: pip install "kanbench[slurm]" (or: pip install submitit)'
    for kind in ("tmpfs", "ramfs", "devtmpfs"):
        monkeypatch.setattr(cluster, "filesystem_type", lambda path, kind=kind: kind)
        assert refused(ok) == (
            f"job folder {folder} is on {kind}, which the compute nodes cannot see: "
            "give --slurm-folder a directory on a shared filesystem"
        )
    assert cluster.LOCAL_FILESYSTEMS == ("tmpfs", "ramfs", "devtmpfs")


def test_job_argv_drops_the_slurm_and_output_options():
    argv = [
        "run",
        "--impl",
        "mlp",
        "--executor",
        "slurm",
        "--partition=a",
        "--no-wait",
        "--out",
        "x.json",
        "--slurm-shards",
        "3",
        "--cancel-on-interrupt",
        "--batch",
        "8",
        "--markdown=t.md",
    ]
    assert cluster.job_argv(argv) == ["run", "--impl", "mlp", "--batch", "8"]
    for flag, takes in cluster.SLURM_FLAGS.items():
        assert cluster.job_argv([flag, "v", "k"]) == (["k"] if takes else ["v", "k"])
    assert len(cluster.SLURM_FLAGS) == 18


def test_kanbench_job_runs_the_entry_and_checkpoints(monkeypatch, tmp_path):
    out = tmp_path / "o.json"
    seen = []

    def entry(argv):
        seen.append(list(argv))
        out.write_text("{}")
        return 3

    job = cluster.KanbenchJob(entry, ("run", "--impl", "mlp"), str(out))
    assert job.argv == ["run", "--impl", "mlp"]
    result = job()
    assert seen == [["run", "--impl", "mlp", "--executor", "local", "--out", str(out)]]
    assert result == {"status": 3, "out": str(out), "node": cluster.os.uname().nodename}
    silent = cluster.KanbenchJob(lambda argv: 2, ["run"], str(tmp_path / "never.json"))
    with pytest.raises(RuntimeError, match=r"^kanbench exited 2 without writing .*never.json$"):
        silent()

    class Delayed:
        def __init__(self, fn):
            self.fn = fn

    fake = types.ModuleType("submitit")
    fake.helpers = types.SimpleNamespace(DelayedSubmission=Delayed)
    monkeypatch.setitem(sys.modules, "submitit", fake)
    again = job.checkpoint("anything", k=1)
    assert isinstance(again, Delayed) and isinstance(again.fn, cluster.KanbenchJob)
    assert (again.fn.entry, again.fn.argv, again.fn.out) == (entry, job.argv, job.out)
    assert again.fn is not job


class _FakeExecutor:
    made: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.params = []
        self.batches = 0
        self.submitted = []
        self.in_batch = False
        _FakeExecutor.made.append(self)

    def update_parameters(self, **kwargs):
        self.params.append(kwargs)

    def batch(self):
        executor = self

        class Ctx:
            def __enter__(self):
                executor.in_batch = True
                executor.batches += 1

            def __exit__(self, *a):
                executor.in_batch = False

        return Ctx()

    def submit(self, call):
        assert self.in_batch
        self.submitted.append(call)
        return types.SimpleNamespace(job_id=100 + len(self.submitted))


@pytest.fixture
def fake_submitit(monkeypatch):
    fake = types.ModuleType("submitit")
    fake.AutoExecutor = _FakeExecutor
    _FakeExecutor.made = []
    monkeypatch.setitem(sys.modules, "submitit", fake)
    monkeypatch.setattr(cluster.time, "strftime", lambda fmt: "STAMP" if fmt == "%Y%m%dT%H%M%S" else "?")
    monkeypatch.setattr(cluster.time, "time", lambda: 42.0)
    return _FakeExecutor


def test_submit_one_job_per_partition(tmp_path, fake_submitit):
    folder = tmp_path / "jobs"
    opts = SlurmOptions(partitions=["a", "b"], folder=str(folder), gpus_per_job=1)
    entry = lambda argv: 0  # noqa: E731
    argv = ["run", "--impl", "mlp", "--executor", "slurm", "--partition", "a,b", "--slurm-shards", "4"]
    sub = cluster.submit("run", argv, opts, str(tmp_path / "res"), ["mlp", "x"], entry=entry)
    (ex,) = fake_submitit.made
    assert ex.kwargs == {"folder": str(folder.resolve()), "cluster": "slurm", "slurm_max_num_timeout": 1}
    assert ex.params == [opts.submitit_parameters("a"), opts.submitit_parameters("b")]
    assert ex.batches == 2 and len(ex.submitted) == 2  # shards only for sweeps and accuracy
    assert (sub.command, sub.argv, sub.folder, sub.results_dir, sub.submitted_at) == (
        "run",
        argv,
        str(folder.resolve()),
        str((tmp_path / "res").resolve()),
        42.0,
    )
    out_a = str(folder.resolve() / "out" / "STAMP_a_run_0of1.json")
    out_b = str(folder.resolve() / "out" / "STAMP_b_run_0of1.json")
    assert sub.jobs == [JobRecord("101", "a", "0/1", out_a, ["mlp", "x"]), JobRecord("102", "b", "0/1", out_b, ["mlp", "x"])]
    call = ex.submitted[0]
    assert call.entry is entry and call.argv == ["run", "--impl", "mlp"] and call.out == out_a
    assert (folder / "out").is_dir()
    assert Submission.load(folder) == sub  # the manifest is saved


@pytest.mark.parametrize("command", ["sweep", "accuracy"])
def test_submit_shards_sweeps_and_accuracy(tmp_path, fake_submitit, command):
    folder = tmp_path / "jobs"
    opts = SlurmOptions(partitions=["p"], folder=str(folder), shards=3)
    sub = cluster.submit(command, [command, "--axis", "batch"], opts, str(tmp_path), entry=lambda argv: 0)
    (ex,) = fake_submitit.made
    assert ex.batches == 1
    assert [c.argv for c in ex.submitted] == [[command, "--axis", "batch", "--shard", f"{i}/3"] for i in range(3)]
    assert [(j.job_id, j.shard, Path(j.out).name, j.impls) for j in sub.jobs] == [
        (str(101 + i), f"{i}/3", f"STAMP_p_{command}_{i}of3.json", []) for i in range(3)
    ]
    single = cluster.submit(
        command, [command], SlurmOptions(partitions=["p"], folder=str(folder)), str(tmp_path), entry=lambda a: 0
    )
    assert [c.argv for c in fake_submitit.made[-1].submitted] == [[command]]  # one shard: no --shard
    assert single.jobs[0].shard == "0/1"


# ----------------------------------------------------------------------------- job states


class FakeJob:
    def __init__(self, job_id="1", state="RUNNING", done=False, stderr="", stdout="", fail=()):
        self.job_id = job_id
        self._state = state
        self._done = done
        self._stderr = stderr
        self._stdout = stdout
        self.fail = set(fail)
        self.cancelled = []

    @property
    def state(self):
        if "state" in self.fail:
            raise RuntimeError("sacct missing")
        return self._state

    def done(self):
        if "done" in self.fail:
            raise RuntimeError("cannot tell")
        return self._done

    def stderr(self):
        if "stderr" in self.fail:
            raise OSError("gone")
        return self._stderr

    def stdout(self):
        if "stdout" in self.fail:
            raise OSError("gone")
        return self._stdout

    def cancel(self, check=True):
        if "cancel" in self.fail:
            raise RuntimeError("scancel failed")
        self.cancelled.append(check)


def test_job_uses_submitits_slurm_job(monkeypatch):
    fake = types.ModuleType("submitit")
    fake.SlurmJob = lambda folder, job_id: ("job", folder, job_id)
    monkeypatch.setitem(sys.modules, "submitit", fake)
    assert cluster_jobs._job("f", "9") == ("job", "f", "9")


def test_scontrol_state(monkeypatch):
    calls = []
    _fake_run(monkeypatch, cluster_jobs, stdout="JobId=5 JobName=k JobState=running Reason=None\n", calls=calls)
    assert cluster_jobs._scontrol_state("5") == "RUNNING"
    assert calls == [(["scontrol", "-o", "show", "job", "5"], {"capture_output": True, "text": True, "timeout": 30})]
    _fake_run(monkeypatch, cluster_jobs, stdout="JobState=A=B\n")
    assert cluster_jobs._scontrol_state("5") == "A=B"
    _fake_run(monkeypatch, cluster_jobs, stdout="slurm_load_jobs error: Invalid job id\n")
    assert cluster_jobs._scontrol_state("5") == ""
    _fake_run(monkeypatch, cluster_jobs, raises=OSError("no scontrol"))
    assert cluster_jobs._scontrol_state("5") == ""
    _fake_run(monkeypatch, cluster_jobs, raises=subprocess.TimeoutExpired("scontrol", 30))
    assert cluster_jobs._scontrol_state("5") == ""


def test_state_falls_back_to_scontrol(monkeypatch):
    asked = []
    monkeypatch.setattr(cluster_jobs, "_scontrol_state", lambda job_id: asked.append(job_id) or "PENDING")
    assert cluster_jobs._state(FakeJob("3", "completed")) == "COMPLETED" and asked == []
    assert cluster_jobs._state(FakeJob(3, "UNKNOWN")) == "PENDING" and asked == ["3"]
    assert cluster_jobs._state(FakeJob("4", fail={"state"})) == "PENDING" and asked[-1] == "4"
    monkeypatch.setattr(cluster_jobs, "_scontrol_state", lambda job_id: "")
    assert cluster_jobs._state(FakeJob("4", "unknown (sacct)")) == "UNKNOWN (SACCT)"
    assert cluster_jobs._state(FakeJob("4", fail={"state"})) == "UNKNOWN"


def test_over_and_summaries():
    for state in cluster.FAILED_STATES:
        assert cluster_jobs._over(FakeJob(done=False), state + " by 0")
    assert cluster_jobs._over(FakeJob(done=False), "COMPLETED")
    assert not cluster_jobs._over(FakeJob(done=False), "RUNNING")
    assert cluster_jobs._over(FakeJob(done=True), "RUNNING")
    assert cluster_jobs._over(FakeJob(done=1), "PENDING") is True
    assert cluster_jobs._over(FakeJob(fail={"done"}), "RUNNING") is False
    assert cluster_jobs.summarize_states([]) == "0 job(s): 0 queued, 0 running, 0 done, 0 failed"
    states = [
        "PENDING",
        "REQUEUED",
        "CONFIGURING",
        "SUSPENDED",
        "RUNNING",
        "COMPLETING",
        "COMPLETED",
        "FAILED",
        "CANCELLED by 7",
        "UNKNOWN",
    ]
    assert cluster_jobs.summarize_states(states) == "10 job(s): 4 queued, 2 running, 1 done, 2 failed"


def test_wait_reports_changes_and_times_out(monkeypatch):
    sub = Submission("run", [], "F", "R", jobs=[JobRecord("1", "a", "0/1", "o1"), JobRecord("2", "a", "0/1", "o2")])
    timeline = [["PENDING", "PENDING"], ["PENDING", "PENDING"], ["RUNNING", "PENDING"], ["COMPLETED", "FAILED"]]
    jobs = {}
    made = []

    def job(folder, job_id):
        made.append((folder, job_id))
        jobs[job_id] = FakeJob(job_id)
        return jobs[job_id]

    tick = {"n": 0}
    monkeypatch.setattr(cluster_jobs, "_job", job)
    monkeypatch.setattr(cluster_jobs, "_state", lambda j: timeline[min(tick["n"], len(timeline) - 1)][int(j.job_id) - 1])
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        tick["n"] += 1

    monkeypatch.setattr(cluster_jobs.time, "sleep", sleep)
    lines = []
    cluster_jobs.wait(sub, lines.append, poll_s=0.25)
    assert made == [("F", "1"), ("F", "2")]
    assert lines == [
        "2 job(s): 2 queued, 0 running, 0 done, 0 failed",
        "2 job(s): 1 queued, 1 running, 0 done, 0 failed",
        "2 job(s): 0 queued, 0 running, 1 done, 1 failed",
    ]
    assert sleeps == [0.25, 0.25, 0.25]
    # never over: the timeout raises with the last line
    tick["n"] = 0
    timeline[:] = [["RUNNING", "RUNNING"]]
    clock = iter([100.0, 100.0, 105.0, 111.0, 200.0])
    monkeypatch.setattr(cluster_jobs.time, "monotonic", lambda: next(clock))
    sleeps.clear()
    with pytest.raises(TimeoutError, match=r"^2 job\(s\): 0 queued, 2 running, 0 done, 0 failed$"):
        cluster_jobs.wait(sub, lambda line: None, timeout_s=10)
    assert sleeps == [2.0, 2.0]  # 0 s and 5 s are within 10 s; 11 s is past it
    clock2 = iter([0.0, 10.0, 10.0])
    monkeypatch.setattr(cluster_jobs.time, "monotonic", lambda: next(clock2))
    sleeps.clear()
    with pytest.raises(StopIteration):  # exactly at the limit is not past it: it sleeps and polls again
        cluster_jobs.wait(sub, lambda line: None, timeout_s=10)
    assert sleeps == [2.0, 2.0]


def test_cancel_every_job_ignoring_errors(monkeypatch):
    sub = Submission(
        "run",
        [],
        "F",
        "R",
        jobs=[JobRecord("1", "a", "0/1", "o"), JobRecord("2", "a", "0/1", "o"), JobRecord("3", "a", "0/1", "o")],
    )
    jobs = {"1": FakeJob("1"), "2": FakeJob("2", fail={"cancel"}), "3": FakeJob("3")}
    monkeypatch.setattr(cluster_jobs, "_job", lambda folder, job_id: jobs[job_id] if folder == "F" else None)
    cluster_jobs.cancel(sub)
    assert jobs["1"].cancelled == [False] and jobs["3"].cancelled == [False]


def test_log_tail():
    long = "\n".join(f"l{i}" for i in range(12)) + "\n\n"
    assert cluster_jobs._log_tail(FakeJob(stderr=long)) == "\n".join(f"l{i}" for i in range(4, 12))
    assert cluster_jobs._log_tail(FakeJob(stderr=long), lines=2) == "l10\nl11"
    assert cluster_jobs._log_tail(FakeJob(stderr="  \n", stdout="out\n")) == "out"
    assert cluster_jobs._log_tail(FakeJob(stderr=None, stdout="o")) == "o"
    assert cluster_jobs._log_tail(FakeJob(stdout="o", fail={"stderr"})) == "o"
    assert cluster_jobs._log_tail(FakeJob(stderr="e", stdout="o")) == "e"
    assert cluster_jobs._log_tail(FakeJob(fail={"stderr", "stdout"})) == ""
    assert cluster_jobs._log_tail(FakeJob(stdout=None)) == ""


def test_failed_rows_exactly():
    rec = JobRecord("12", "gpu", "1/2", "o", ["a", "b"])
    rows = cluster_jobs.failed_rows(rec, "CANCELLED by 5", "msg", "tail", {"batch": 8})
    assert [r.impl for r in rows] == ["a", "b"]
    for r in rows:
        assert (r.device, r.workload, r.error_kind, r.error) == ("?", {"batch": 8}, "job-cancelled", "slurm job 12 on gpu: msg")
        assert r.extra == {"log_tail": "tail", "slurm": {"job_id": "12", "partition": "gpu", "shard": "1/2"}}
    workload = {"batch": 1}
    rows = cluster_jobs.failed_rows(JobRecord("1", "p", "0/1", "o"), "TIMEOUT", "m", "", workload)
    assert [r.impl for r in rows] == ["?"] and rows[0].workload == {"batch": 1} and rows[0].workload is not workload
    assert cluster_jobs.failed_rows(JobRecord("1", "p", "0/1", "o", ["x"]), "FAILED", "m", "")[0].workload == {}


def _doc(host, impls, complete=True, config=None, skipped=()):
    return ResultsDocument(
        machine={"hostname": host} if host else {},
        config=dict(config or {"mode": "run", "workload": {"batch": 4}}),
        results=[RowResult(impl=i, device="cpu", forward_ms=1.0) for i in impls],
        skipped=[Skipped(s, "r") for s in skipped],
        complete=complete,
    )


def test_merge_concatenates_shards():
    a = _doc("n1", ["x"], config={"mode": "sweep", "shard": "0/2"}, skipped=["s1"])
    b = _doc("n2", ["y"], complete=False, skipped=["s1", "s2"])
    merged = cluster_jobs.merge([a, b])
    assert merged is a
    assert [r.impl for r in merged.results] == ["x", "y"]
    assert [s.impl for s in merged.skipped] == ["s1", "s2"]
    assert merged.config == {"mode": "sweep", "shards": 2, "shard_machines": ["n1", "n2"]}
    assert merged.complete is False
    one = cluster_jobs.merge([_doc("n", ["x"], config={"mode": "run", "shard": "0/1"})])
    assert one.config == {"mode": "run"} and one.complete is True
    assert cluster_jobs.merge([_doc("n", [], complete=True), _doc("m", [], complete=True)]).complete is True
    assert cluster_jobs._workload_of(_doc("n", [])) == {"batch": 4}
    assert cluster_jobs._workload_of(ResultsDocument(config=None)) == {}
    assert cluster_jobs._workload_of(ResultsDocument(config={"workload": None})) == {}


# ----------------------------------------------------------------------------- collect


@pytest.fixture
def collect_env(monkeypatch, tmp_path):
    """collect() with fake jobs: jobs[job_id] = FakeJob; state from FakeJob._state."""
    jobs = {}
    monkeypatch.setattr(cluster_jobs, "_job", lambda folder, job_id: jobs[job_id] if folder in ("F", "FOLDER") else None)
    monkeypatch.setattr(cluster_jobs, "_scontrol_state", lambda job_id: "")
    return jobs


def _write(path, doc):
    results_mod.write_atomic(path, doc)
    return str(path)


def test_collect_merges_each_partitions_jobs(tmp_path, collect_env):
    o1 = _write(tmp_path / "o1.json", _doc("n1", ["a"], config={"mode": "sweep", "workload": {"batch": 4}, "shard": "0/2"}))
    o2 = _write(tmp_path / "o2.json", _doc("n2", ["b"], config={"mode": "sweep", "workload": {"batch": 4}, "shard": "1/2"}))
    o3 = _write(tmp_path / "o3.json", _doc("n3", ["c"]))
    collect_env.update({"1": FakeJob("1", "COMPLETED"), "2": FakeJob("2", "COMPLETED"), "3": FakeJob("3", "COMPLETED")})
    sub = Submission(
        "sweep",
        [],
        "FOLDER",
        str(tmp_path / "res"),
        jobs=[
            JobRecord("1", "p", "0/2", o1, ["a"]),
            JobRecord("2", "p", "1/2", o2, ["b"]),
            JobRecord("3", "q", "0/1", o3, ["c"]),
        ],
    )
    written = cluster_jobs.collect(sub, results_dir=str(tmp_path / "new" / "res"))  # created with its parents
    assert sorted(written) == ["p", "q"] and written["p"][0].parent == tmp_path / "new" / "res"
    written = cluster_jobs.collect(sub)
    path, doc = written["p"]
    assert path.parent == tmp_path / "res" and path.name.endswith("_p-n1_sweep.json")
    assert [r.impl for r in doc.results] == ["a", "b"]
    assert doc.config["slurm"] == {"partition": "p", "jobs": ["1", "2"], "folder": "FOLDER"}
    assert doc.config["shards"] == 2 and doc.config["shard_machines"] == ["n1", "n2"] and "shard" not in doc.config
    assert [r.extra["slurm"] for r in doc.results] == [
        {"job_id": "1", "partition": "p", "shard": "0/2"},
        {"job_id": "2", "partition": "p", "shard": "1/2"},
    ]
    assert results_mod.load(path).to_dict() == doc.to_dict()
    assert written["q"][1].config["slurm"]["jobs"] == ["3"]
    other = cluster_jobs.collect(sub, results_dir=str(tmp_path / "elsewhere"))
    assert other["q"][0].parent == tmp_path / "elsewhere"


def test_collect_turns_failed_jobs_into_rows(tmp_path, collect_env):
    # job 1 died after measuring "a" (an incomplete file); job 2 wrote nothing; job 3 wrote garbage
    o1 = _write(tmp_path / "o1.json", _doc("n1", ["a"], complete=False))
    (tmp_path / "o3.json").write_text("{broken")
    collect_env.update(
        {
            "1": FakeJob("1", "TIMEOUT", stderr="x\nDUE TO TIME LIMIT"),
            "2": FakeJob("2", "RUNNING", stdout="still going"),
            "3": FakeJob("3", "CANCELLED by 0"),
            "4": FakeJob("4", "COMPLETED"),
        }
    )
    sub = Submission(
        "run",
        [],
        "F",
        str(tmp_path / "res"),
        jobs=[
            JobRecord("1", "p", "0/1", o1, ["a", "b"]),
            JobRecord("2", "q", "0/1", str(tmp_path / "none.json"), ["c"]),
            JobRecord("3", "r", "0/1", str(tmp_path / "o3.json"), []),
            JobRecord("4", "s", "0/1", str(tmp_path / "none4.json"), []),
        ],
    )
    written = cluster_jobs.collect(sub)
    p = written["p"][1]
    assert [(r.impl, r.error_kind) for r in p.results] == [("a", None), ("b", "job-timeout")]
    assert p.results[1].error == "slurm job 1 on p: TIMEOUT: DUE TO TIME LIMIT"
    assert p.results[1].workload == {"batch": 4} and p.results[1].extra["log_tail"] == "x\nDUE TO TIME LIMIT"
    assert p.results[0].extra == {"slurm": {"job_id": "1", "partition": "p", "shard": "0/1"}}
    q_path, q = written["q"]
    assert [(r.impl, r.error_kind, r.error) for r in q.results] == [("c", "job-failed", "slurm job 2 on q: RUNNING: still going")]
    assert q.config == {"mode": "run", "slurm": {"partition": "q", "jobs": ["2"], "folder": "F"}} and q.machine == {}
    assert q_path.name.endswith("_q-slurm_run.json")  # no machine: the host is "slurm"
    (r_row,) = written["r"][1].results
    assert r_row.impl == "?" and r_row.error_kind == "job-cancelled"
    assert r_row.error.startswith("slurm job 3 on r: its results file is unreadable (")
    (s_row,) = written["s"][1].results
    assert (s_row.impl, s_row.error_kind, s_row.error) == ("?", "job-failed", "slurm job 4 on s: COMPLETED")


def test_collect_keeps_a_machine_and_what_died_jobs_measured(tmp_path, collect_env):
    # two shards of one partition: the second died before writing; the merged file keeps the first's machine
    o1 = _write(tmp_path / "o1.json", _doc("n1", ["a"]))
    collect_env.update({"1": FakeJob("1", "FAILED"), "2": FakeJob("2", "COMPLETED")})
    sub = Submission(
        "sweep",
        [],
        "F",
        str(tmp_path),
        jobs=[JobRecord("2", "p", "1/2", str(tmp_path / "none.json"), ["b"]), JobRecord("1", "p", "0/2", o1, ["a"])],
    )
    path, doc = cluster_jobs.collect(sub)["p"]
    assert doc.machine == {"hostname": "n1"} and "_p-n1_" in path.name
    assert [(r.impl, r.error_kind) for r in doc.results] == [("a", None), ("b", "job-failed")]
    assert doc.config["slurm"]["jobs"] == ["2", "1"] and doc.complete is False
    # an incomplete file whose rows cover every impl adds no failure row
    o3 = _write(tmp_path / "o3.json", _doc("n3", ["a"], complete=False))
    collect_env["3"] = FakeJob("3", "FAILED")
    sub3 = Submission("run", [], "F", str(tmp_path), jobs=[JobRecord("3", "z", "0/1", o3, ["a"])])
    assert [r.impl for r in cluster_jobs.collect(sub3)["z"][1].results] == ["a"]
    # ... nor one with rows when the job lists no impls
    o4 = _write(tmp_path / "o4.json", _doc("n4", ["a"], complete=False))
    collect_env["4"] = FakeJob("4", "FAILED")
    sub4 = Submission("run", [], "F", str(tmp_path), jobs=[JobRecord("4", "y", "0/1", o4, [])])
    assert [r.impl for r in cluster_jobs.collect(sub4)["y"][1].results] == ["a"]


def test_filesystem_type_edges(monkeypatch, tmp_path):
    # three fields are enough; a mount point ending in X is not /data; of two mounts on one point
    # the later is the visible one (a tmpfs mounted over a shared directory)
    _fake_mounts(monkeypatch, "r / ext4\nd /dataX nfs rw 0 0\n")
    assert cluster.filesystem_type(Path("/data/f")) == "ext4"
    assert cluster.filesystem_type(Path("/dataX/f")) == "nfs"
    _fake_mounts(monkeypatch, f"a {tmp_path} nfs rw 0 0\nb {tmp_path} tmpfs rw 0 0\n")
    assert cluster.filesystem_type(tmp_path) == "tmpfs"


def test_slurm_helpers_edges(monkeypatch, tmp_path):
    _fake_run(monkeypatch, cluster, stdout="boX*\nX\n")
    assert cluster.available_partitions() == ["boX", "X"]
    monkeypatch.setitem(sys.modules, "submitit", types.ModuleType("submitit"))
    monkeypatch.setattr(cluster, "available_partitions", lambda: ["a"])
    monkeypatch.setattr(cluster, "filesystem_type", lambda path: "nfs")
    assert cluster.parse_option("Xmem=1") == ("Xmem", "1")
    assert cluster.parse_option("--X-y=1") == ("X_y", "1")
    assert cluster.job_argv(["--out=x.json", "--batch", "8", "--out=a=b", "--impl=k"]) == ["--batch", "8", "--impl=k"]
    monkeypatch.setattr(cluster.shutil, "which", lambda name: "/usr/bin/sbatch" if name == "sbatch" else None)
    cluster.check(SlurmOptions(partitions=["a"], folder=str(tmp_path / "j")), None, False)


def test_submit_shards_only_sweeps_and_from_two(tmp_path, fake_submitit):
    folder = tmp_path / "jobs"
    sub = cluster.submit(
        "run", ["run"], SlurmOptions(partitions=["p"], folder=str(folder), shards=3), str(tmp_path), entry=lambda a: 0
    )
    assert [j.shard for j in sub.jobs] == ["0/1"] and fake_submitit.made[-1].submitted[0].argv == ["run"]
    sub = cluster.submit(
        "sweep", ["sweep"], SlurmOptions(partitions=["p"], folder=str(folder), shards=2), str(tmp_path), entry=lambda a: 0
    )
    assert [c.argv for c in fake_submitit.made[-1].submitted] == [["sweep", "--shard", "0/2"], ["sweep", "--shard", "1/2"]]


def test_collect_trusts_a_complete_file(tmp_path, collect_env):
    # the job finished and wrote a complete file without "b" (skipped there): no failure row for it
    o1 = _write(tmp_path / "o1.json", _doc("n1", ["a"]))
    collect_env["1"] = FakeJob("1", "COMPLETED")
    sub = Submission("run", [], "F", str(tmp_path), jobs=[JobRecord("1", "p", "0/1", o1, ["a", "b"])])
    assert [r.impl for r in cluster_jobs.collect(sub)["p"][1].results] == ["a"]


def test_wait_asks_a_running_job_whether_it_is_done(monkeypatch):
    sub = Submission("run", [], "F", "R", jobs=[JobRecord("1", "a", "0/1", "o")])
    monkeypatch.setattr(cluster_jobs, "_job", lambda folder, job_id: FakeJob(job_id, done=True))
    monkeypatch.setattr(cluster_jobs, "_state", lambda j: "RUNNING")  # sacct lags behind
    monkeypatch.setattr(cluster_jobs.time, "sleep", lambda s: (_ for _ in ()).throw(AssertionError("polled again")))
    lines = []
    cluster_jobs.wait(sub, lines.append)
    assert lines == ["1 job(s): 0 queued, 1 running, 0 done, 0 failed"]
