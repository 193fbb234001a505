"""--executor slurm through submitit.

The bad-input tests run everywhere (nothing is submitted). The integration tests need a
real Slurm: `make test-slurm` starts a one-node Slurm (scripts/slurm-local.sh) and runs
them with SLURM_CONF set; without it they skip with that line.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_cli

from kanbench import cluster

FAST = ["--min-time", "0.05", "--min-samples", "3", "--warmup", "0", "--rounds", "2", "--processes", "1"]


def _slurm_reason():
    if not os.environ.get("SLURM_CONF"):
        return "no Slurm here (make test-slurm starts a local one)"
    if shutil.which("sbatch") is None:
        return "sbatch not found"
    try:
        cluster.available_partitions()
    except Exception as exc:
        return f"Slurm does not answer: {exc}"
    return None


needs_slurm = pytest.mark.skipif(bool(_slurm_reason()), reason=_slurm_reason() or "")


# ------------------------------------------------------------------ bad input (no Slurm needed)


def test_slurm_with_in_process_is_refused():
    proc = run_cli("run", "--impl", "mlp", "--executor", "slurm", "--partition", "cpu", "--in-process")
    assert proc.returncode == 2 and "drop --in-process" in proc.stderr


def test_slurm_without_partition_is_refused():
    proc = run_cli("run", "--impl", "mlp", "--executor", "slurm")
    assert proc.returncode == 2 and "needs --partition" in proc.stderr


def test_job_folder_on_tmpfs_is_refused():
    if cluster.filesystem_type(Path("/dev/shm")) != "tmpfs":
        pytest.skip("/dev/shm is not a tmpfs here")
    proc = run_cli("run", "--impl", "mlp", "--executor", "slurm", "--partition", "cpu", "--slurm-folder", "/dev/shm/kb-jobs")
    assert proc.returncode == 2 and "shared filesystem" in proc.stderr


def test_missing_submitit_is_one_line(tmp_path):
    (tmp_path / "submitit.py").write_text("raise ImportError('no submitit here')\n")
    proc = run_cli(
        "run", "--impl", "mlp", "--executor", "slurm", "--partition", "cpu", "--slurm-folder", tmp_path / "jobs",
        env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{Path(__file__).resolve().parent.parent}"},
    )  # fmt: skip
    assert proc.returncode == 2 and "needs submitit" in proc.stderr


def test_missing_sbatch_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    env = {"PATH": str(tmp_path / "empty")}  # python runs by its full path; sbatch cannot be found
    proc = run_cli("run", "--impl", "mlp", "--executor", "slurm", "--partition", "cpu", "--slurm-folder", tmp_path / "j", env=env)
    assert proc.returncode == 2 and "sbatch not found" in proc.stderr


def test_job_argv_drops_the_slurm_and_output_options():
    argv = ["run", "--impl", "mlp", "--executor", "slurm", "--partition=a,b", "--out", "x.json", "--no-wait", "--threads", "2"]
    assert cluster.job_argv(argv) == ["run", "--impl", "mlp", "--threads", "2"]


def test_options_map_onto_submitit_parameters():
    opts = cluster.SlurmOptions(partitions=["gpu"], gpus_per_job=1, cpus_per_job=8, account="a", options={"mem": "32G"})
    params = opts.submitit_parameters("gpu")
    assert params["slurm_partition"] == "gpu" and params["gpus_per_node"] == 1 and params["cpus_per_task"] == 8
    assert params["slurm_account"] == "a" and params["slurm_additional_parameters"] == {"mem": "32G"}
    with pytest.raises(cluster.ClusterError, match="key=value"):
        cluster.parse_option("mem")


def test_collect_of_a_folder_without_submission_is_one_line(tmp_path):
    proc = run_cli("collect", tmp_path)
    assert proc.returncode == 2 and "holds no kanbench submission" in proc.stderr


# ------------------------------------------------------------------ against a real Slurm


def _rows(path):
    doc = json.loads(Path(path).read_text())
    return {r["impl"]: r for r in doc["results"]}, doc


def _written(stderr):
    return [line.split("results written to ")[1].strip() for line in stderr.splitlines() if "results written to" in line]


@needs_slurm
def test_unknown_partition_is_refused(tmp_path):
    proc = run_cli("run", "--impl", "mlp", "--executor", "slurm", "--partition", "nosuch", "--slurm-folder", tmp_path / "j")
    assert proc.returncode == 2 and "unknown partition nosuch" in proc.stderr and "cpu" in proc.stderr


@needs_slurm
def test_run_through_slurm_gives_the_rows_a_local_run_gives(tmp_path):
    impls = "mlp,splines-better_kan,rbf-better_kan"
    local = tmp_path / "local.json"
    proc = run_cli("run", "--impl", impls, *FAST, "--no-memory", "--out", local)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(
        "run", "--impl", impls, *FAST, "--no-memory", "--executor", "slurm", "--partition", "cpu",
        "--slurm-folder", tmp_path / "jobs", "--results-dir", tmp_path / "res", "--cpus-per-job", "2", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (path,) = _written(proc.stderr)
    slurm_rows, doc = _rows(path)
    local_rows, _ = _rows(local)
    assert set(slurm_rows) == set(local_rows) == set(impls.split(","))
    for impl, row in slurm_rows.items():
        assert row["error"] is None and row["forward_ms"] > 0
        assert row["trainable_params"] == local_rows[impl]["trainable_params"]
        assert row["workload"] == local_rows[impl]["workload"]
    assert doc["config"]["slurm"]["partition"] == "cpu" and doc["machine"]["hostname"]
    assert doc["config"]["isolation"] == "interleaved"
    assert "| mlp-cpu" in proc.stdout


@needs_slurm
def test_sharded_sweep_is_one_file_per_partition(tmp_path):
    proc = run_cli(
        "sweep", "--impl", "mlp", "--batch", "4,8,16", "--min-time", "0.02", "--min-samples", "3", "--rounds", "2",
        "--processes", "1", "--executor", "slurm", "--partition", "cpu", "--slurm-shards", "2",
        "--slurm-folder", tmp_path / "jobs", "--results-dir", tmp_path / "res", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (path,) = _written(proc.stderr)
    doc = json.loads(Path(path).read_text())
    batches = sorted(r["workload"]["batch"] for r in doc["results"])
    assert batches == [4, 8, 16, 32] and doc["config"]["shards"] == 2  # 32: the preset's own batch


@needs_slurm
def test_no_wait_then_collect_and_a_cancelled_job_becomes_its_rows_error(tmp_path):
    jobs = tmp_path / "jobs"
    proc = run_cli(
        "run", "--impl", "mlp", "--min-time", "120", "--rounds", "2", "--processes", "1", "--executor", "slurm",
        "--partition", "cpu", "--slurm-folder", jobs, "--results-dir", tmp_path / "res", "--no-wait",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"kanbench collect {jobs}" in proc.stderr
    manifest = json.loads((jobs / cluster.MANIFEST).read_text())
    (job,) = manifest["jobs"]
    for _ in range(100):  # let it start, then kill it
        state = subprocess.run(["squeue", "-h", "-j", job["job_id"], "-o", "%T"], capture_output=True, text=True).stdout
        if "RUNNING" in state:
            break
        time.sleep(0.2)
    subprocess.run(["scancel", job["job_id"]], check=True)
    proc = run_cli("collect", jobs, timeout=300)
    assert proc.returncode == 1, proc.stderr  # every row failed
    (path,) = _written(proc.stderr)
    rows, _ = _rows(path)
    assert rows["mlp"]["error_kind"] == "job-cancelled"
    assert f"slurm job {job['job_id']} on cpu" in rows["mlp"]["error"]


@needs_slurm
def test_two_partitions_give_two_files_and_the_cross_hardware_report(tmp_path):
    proc = run_cli(
        "run", "--impl", "mlp,splines-better_kan", *FAST, "--no-memory", "--executor", "slurm", "--partition", "cpu,cpu2",
        "--slurm-folder", tmp_path / "jobs", "--results-dir", tmp_path / "res", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    paths = _written(proc.stderr)
    assert len(paths) == 2 and {json.loads(Path(p).read_text())["config"]["slurm"]["partition"] for p in paths} == {"cpu", "cpu2"}
    assert "## partition cpu " in proc.stdout and "## partition cpu2 " in proc.stdout
    assert "(forward+backward) / the same machine's MLP" in proc.stdout
