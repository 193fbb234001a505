"""Bad input and faults: one clear line per problem, the rest of the run goes on, the file is written."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from kanbench import results
from kanbench.discovery import discover
from kanbench.runner import RowJob, measure_row
from kanbench.timing import TimingConfig
from kanbench.worker import measure_row_isolated
from kanbench.workload import Workload
from tests.conftest import QUICK, ROOT, TOYS, run_cli

FAST = TimingConfig(min_time=0, min_samples=3, warmup_time=0, warmup_min=1)


def row(impl, device="cpu", **kw):
    reg = discover([TOYS], builtin=True, entry_points=False, check=False)
    return measure_row(RowJob(impl=impl, device=device, workload=Workload((2, 4, 1), 8), timing=FAST, **kw), reg)


@pytest.mark.parametrize(
    "impl,kind,text",
    [
        ("raises", "crash", "ValueError during timing: boom from a broken implementation (at toys.py"),
        ("returns-nan", "nonfinite", "not finite"),
        ("oom", "oom", "out of memory on cpu"),
        ("wrong-shape", "bad-output", "shape (8, 2), the workload expects (8, 1)"),
        ("build-fails", "crash", "ZeroDivisionError during build"),
        ("needs-missing", "unavailable", "not installed"),
        ("nope", "unknown", "unknown implementation 'nope'; known:"),
        ("cuda-only", "unsupported", "does not support cpu"),
    ],
)
def test_row_errors(impl, kind, text):
    rec = row(impl)
    assert rec.error_kind == kind
    assert text in rec.error
    assert "\n" not in rec.error


def test_cuda_absent_is_a_row_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rec = row("mlp", device="cuda")
    assert rec.error_kind == "cuda-unavailable"
    assert "CUDA requested" in rec.error


def test_budget_exceeded_is_reported_not_dropped():
    rec = row("very-slow", budget_s=1.0)
    assert rec.error_kind == "budget"
    assert "time budget" in rec.error


def test_a_hanging_row_is_killed_and_reported_with_what_it_knew():
    job = RowJob(impl="hangs", device="cpu", workload=Workload((2, 4, 1), 8), timing=FAST, extra_dirs=[str(TOYS)], budget_s=0.5)
    start = time.monotonic()
    rec = measure_row_isolated(job)
    assert time.monotonic() - start < 60
    assert rec.error_kind == "budget"
    assert "exceeded the per-row time budget of 0.5 s" in rec.error
    assert rec.params == 3  # checkpointed by the worker before it was killed


def test_segfault_in_worker_is_contained():
    rec = measure_row_isolated(
        RowJob(impl="segfaults", device="cpu", workload=Workload((2, 4, 1), 8), timing=FAST, extra_dirs=[str(TOYS)])
    )
    assert rec.error_kind == "crash"
    assert "SIGSEGV" in rec.error


def test_worker_measures_a_row():
    rec = measure_row_isolated(RowJob(impl="mlp", device="cpu", workload=Workload((2, 4, 1), 8), timing=FAST))
    assert rec.error is None and rec.n_samples == 3 and rec.forward_peak_bytes > 0


def test_a_run_with_bad_rows_still_measures_the_rest_and_writes_the_file(tmp_path):
    out = tmp_path / "run.json"
    res = run_cli(
        "run",
        "--impl",
        "mlp,raises,returns-nan,oom,needs-missing,segfaults",
        "--device",
        "cpu",
        "--implementations",
        TOYS,
        "--out",
        out,
        *QUICK,
    )
    assert res.returncode == 0, res.stderr
    doc = results.load(out)
    by = {r.impl: r for r in doc.results}
    assert by["mlp"].error is None and by["mlp"].forward_ms > 0
    assert {k: by[k].error_kind for k in by if k != "mlp"} == {
        "raises": "crash",
        "returns-nan": "nonfinite",
        "oom": "oom",
        "segfaults": "crash",
    }
    # unavailable: skipped with its reason (stderr, the file and under the table), not measured
    assert [(s.impl, "not installed" in s.reason) for s in doc.skipped] == [("needs-missing", True)]
    assert "skipping needs-missing" in res.stderr and "- needs-missing: " in res.stdout
    assert doc.complete is True
    # one clear line per problem on stderr, and each failed row listed under the table
    for name in ("raises-cpu", "returns-nan-cpu", "oom-cpu", "segfaults-cpu"):
        assert f"- {name}: " in res.stdout


@pytest.mark.parametrize("command", ["run", "sweep", "fit"])
def test_unknown_implementation_exits_2_before_measuring(tmp_path, command):
    res = run_cli(command, "--impl", "mlp,nope", "--out", tmp_path / "x.json")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("kanbench: unknown implementation(s) nope; known: ")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("command", ["run", "sweep", "fit", "list"])
def test_missing_implementations_directory_exits_2(tmp_path, command):
    res = run_cli(command, "--implementations", tmp_path / "absent")
    assert res.returncode == 2
    assert "--implementations" in res.stderr and "no such directory" in res.stderr


def test_nothing_measured_exits_nonzero(tmp_path):
    res = run_cli(
        "run",
        "--impl",
        "raises",
        "--device",
        "cpu",
        "--implementations",
        TOYS,
        "--out",
        tmp_path / "x.json",
        "--in-process",
        *QUICK,
    )
    assert res.returncode == 1
    assert "nothing could be measured" in res.stderr
    assert results.load(tmp_path / "x.json").results[0].error_kind == "crash"


def test_cuda_requested_but_absent_cli(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    res = run_cli("run", "--impl", "mlp", "--device", "cuda", "--out", tmp_path / "x.json", "--in-process", *QUICK)
    assert res.returncode == 1
    assert "CUDA requested" in res.stderr


@pytest.mark.parametrize(
    "args,text",
    [
        (["--shape", "2,x,1"], "malformed shape"),
        (["--shape", "2"], "malformed shape"),
        (["--batch", "0"], "malformed batch"),
        (["--batch", "ten"], "malformed batch"),
        (["--dtype", "int8"], "unknown dtype"),
        (["--preset", "huge"], "unknown preset"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_malformed_arguments_exit_2_with_one_line(args, text, tmp_path):
    res = run_cli("run", "--impl", "mlp", "--out", tmp_path / "x.json", *args)
    assert res.returncode == 2
    assert text in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_existing_out_file_is_never_overwritten(tmp_path):
    out = tmp_path / "x.json"
    out.write_text("precious")
    res = run_cli("run", "--impl", "mlp", "--out", out, *QUICK)
    assert res.returncode == 2 and "never overwritten" in res.stderr
    assert out.read_text() == "precious"


def test_default_names_never_collide(tmp_path):
    a = results.reserve_path(None, tmp_path, "host", "seed")
    b = results.reserve_path(None, tmp_path, "host", "seed")
    assert a != b and a.exists() and b.exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    p = tmp_path / "r.json"
    results.write_atomic(p, {"a": 1, "nan": float("nan")})
    assert json.loads(p.read_text()) == {"a": 1, "nan": None}
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by others, as any file the user writes


def _start_run(out, *extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable,
        "-m",
        "kanbench",
        "run",
        "--impl",
        "mlp,very-slow",
        "--device",
        "cpu",
        "--implementations",
        str(TOYS),
        "--out",
        str(out),
        "--min-time",
        "0",
        "--warmup",
        "0",
        *extra,
    ]
    # SIGINT back to its default in the child: a test run started in the background of a
    # non-interactive shell ignores SIGINT, and an ignored signal is inherited (Ctrl-C would do nothing)
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_ctrl_c_keeps_the_rows_already_measured(tmp_path):
    out = tmp_path / "run.json"
    proc = _start_run(out, "--mode", "sequential", "--min-samples", "50")
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if len(json.loads(out.read_text())["results"]) >= 1:
                break
        except (ValueError, KeyError, OSError):
            pass
        time.sleep(0.2)
    time.sleep(1.0)  # now inside the very-slow row
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    doc = results.load(out)
    assert [r.impl for r in doc.results] == ["mlp"]
    assert doc.complete is False and doc.interrupted is True
    assert "mlp-cpu" in stdout


def test_ctrl_c_in_an_interleaved_run_keeps_the_rounds_measured(tmp_path):
    out = tmp_path / "run.json"
    # very-slow's chunks take 2 s a step: the rows are still taking turns when Ctrl-C comes
    proc = _start_run(out, "--min-samples", "24", "--rounds", "30", "--processes", "1")
    # start-up, the sanity gate (about six forwards: 12 s for very-slow) and warm-up take ~22 s on a
    # quiet 2-core VM and over twice that on a loaded host: wait for the run to say its rows are
    # taking turns, then let a few rounds pass (the 30 rounds would take ~120 s)
    lines: list = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.time() + 150
    while time.time() < deadline and not any("take turns" in line for line in lines):
        time.sleep(0.2)
    assert any("take turns" in line for line in lines), "".join(lines)
    time.sleep(10)
    # twice, as `timeout -s INT` signals (the process, then its group): the second must not lose the rows
    os.kill(proc.pid, signal.SIGINT)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert proc.returncode == 130, stderr
    doc = results.load(out)
    assert doc.complete is False and doc.interrupted is True, stderr
    by = {r.impl: r for r in doc.results}
    assert by["mlp"].n_samples > 0 and "interrupted" in by["mlp"].note
    assert all(r.n_samples > 0 or r.failed for r in doc.results)  # a row with nothing measured is not kept


def test_a_compile_failure_is_labelled_as_such():
    from kanbench.runner import classify_failure, empty_record

    failure = type("BackendCompilerFailed", (RuntimeError,), {"__module__": "torch._dynamo.exc"})
    job = RowJob(impl="mlp", device="cpu", workload=Workload((2, 4, 1), 8), compile=True)
    rec = classify_failure(empty_record(job), failure("inductor: no C++ compiler"), "timing", job)
    assert rec.error_kind == "compile" and rec.error == "torch.compile failed during timing: inductor: no C++ compiler"
    job.compile = False
    assert classify_failure(empty_record(job), failure("x"), "timing", job).error_kind == "crash"


def test_a_second_sigint_during_the_clean_up_keeps_the_rows(monkeypatch):
    """`timeout -s INT` signals the process and then its whole group: the second SIGINT lands while
    the workers are being closed. It must not turn the kept rows into a plain KeyboardInterrupt."""
    from kanbench import interleave

    def first_ctrl_c(rows, workdir, g):
        for row in rows:
            row.forward, row.backward = [1.0, 1.0], [2.0, 2.0]
            row.round_f, row.round_b = [1.0], [2.0]
        raise KeyboardInterrupt

    def close_with_a_second_sigint(rows):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here when SIGINT is not ignored

    monkeypatch.setattr(interleave, "_start_generation", first_ctrl_c)
    monkeypatch.setattr(interleave, "_close", close_with_a_second_sigint)
    jobs = [RowJob(impl="mlp", device="cpu", workload=Workload((2, 4, 1), 8))]
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(interleave.BatchInterrupted) as caught:
        interleave.measure_batch(jobs, interleave.InterleaveConfig(processes=1, rounds=1))
    assert [r.n_samples for r in caught.value.records] == [2]
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works again afterwards
