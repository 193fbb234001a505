"""kanbench.measure (one row in this process) and kanbench.runner (a run of rows), checked exactly:
every refusal of open_row with its message, the failure classification, the record measure_row
fills (with timing and memory faked where their numbers are not the point), and execute's
writes, progress and Ctrl-C handling with a fake measure."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch
from torch import nn

from kanbench import measure, runner
from kanbench import memory as memory_mod
from kanbench import timing as timing_mod
from kanbench.discovery import Entry, Registry
from kanbench.records import ResultsDocument, RowResult
from kanbench.spec import Implementation
from kanbench.timing import BadOutputShape, BudgetExceeded, NonFiniteOutput, Samples, TimingConfig
from kanbench.workload import Workload

WL = Workload(widths=(2, 3, 1), batch=4, pool=8)


def _linear(widths, device=None, dtype=None, **options):
    torch.manual_seed(0)
    return nn.Linear(widths[0], widths[-1], device=device, dtype=dtype)


def _registry(*specs, entries=()):
    return Registry([Entry(s.name, "test", s) for s in specs] + list(entries), [])


# ----------------------------------------------------------------------------- RowJob and the record


def test_row_job_round_trip_and_defaults():
    job = measure.RowJob("a", "cpu", WL)
    assert (job.threads, job.extra_dirs, job.budget_s, job.memory, job.seed, job.builtin) == (None, (), 120.0, True, 0, True)
    assert (job.options, job.compile, job.widths, job.match, job.sanity, job.time_broken) == ({}, False, None, None, True, False)
    assert measure.DEFAULT_BUDGET_S == 120.0
    d = job.to_dict()
    assert d == {
        "impl": "a",
        "device": "cpu",
        "workload": WL.to_dict(),
        "timing": TimingConfig().to_dict(),
        "threads": None,
        "extra_dirs": [],
        "budget_s": 120.0,
        "memory": True,
        "seed": 0,
        "builtin": True,
        "site_dirs": [],
        "options": {},
        "compile": False,
        "widths": None,
        "match": None,
        "sanity": True,
        "time_broken": False,
    }
    assert measure.RowJob.from_dict(json.loads(json.dumps(d))) == job
    full = measure.RowJob(
        "b",
        "cuda:1",
        WL,
        TimingConfig(min_time=0.0, min_samples=3),
        threads=2,
        extra_dirs=("x",),
        budget_s=None,
        memory=False,
        seed=5,
        builtin=False,
        options={"grid": 3},
        compile=True,
        widths=(2, 7, 1),
        match={"metric": "params"},
        sanity=False,
        time_broken=True,
    )
    back = measure.RowJob.from_dict(json.loads(json.dumps(full.to_dict())))
    assert back == full and back.widths == (2, 7, 1) and back.extra_dirs == ("x",)
    assert full.build_widths == (2, 7, 1) and job.build_widths == (2, 3, 1)
    minimal = measure.RowJob.from_dict({"impl": "m", "device": "cpu", "workload": WL.to_dict()})
    assert minimal == measure.RowJob("m", "cpu", WL)
    assert measure.RowJob.from_dict(
        {**d, "compile": 1, "sanity": 0, "time_broken": 1, "options": None, "widths": []}
    ) == measure.RowJob("a", "cpu", WL, compile=True, sanity=False, time_broken=True)


def test_empty_record_copies_the_job():
    job = measure.RowJob("a", "cpu", WL, threads=3, options={"k": 1}, compile=True, widths=(2, 5, 1), match={"m": 1})
    r = measure.empty_record(job)
    assert (r.impl, r.device, r.workload, r.threads, r.options, r.compile, r.widths, r.match) == (
        "a",
        "cpu",
        WL.to_dict(),
        3,
        {"k": 1},
        True,
        [2, 5, 1],
        {"m": 1},
    )
    assert r.options is not job.options and r.match is not job.match
    r2 = measure.empty_record(measure.RowJob("a", "cpu", WL))
    assert (r2.widths, r2.match, r2.compile, r2.forward_ms) == (None, None, False, None)


def test_samples_faults_and_memory_fields():
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    m[1].weight.requires_grad_(False)
    m.register_buffer("b", torch.zeros(100))
    assert measure.count_parameters(m) == (13, 10)
    assert measure._round_samples([1.23456789, 1234567.8]) == [1.23457, 1234570.0]
    r = RowResult("a", "cpu")
    measure.fill_samples(r, [1.0, 2.0, 4.0, 10.0], [3.0, 3.0, 5.0, 7.0])
    assert r.samples == {"forward_ms": [1.0, 2.0, 4.0, 10.0], "backward_ms": [3.0, 3.0, 5.0, 7.0]} and r.n_samples == 4
    assert (r.forward_ms, r.backward_ms) == (3.0, 4.0)
    from kanbench.stats import summarize

    assert (r.forward_iqr_ms, r.forward_mad_ms) == (
        summarize([1.0, 2.0, 4.0, 10.0])["iqr"],
        summarize([1.0, 2.0, 4.0, 10.0])["mad"],
    )
    assert (r.backward_iqr_ms, r.backward_mad_ms) == (
        summarize([3.0, 3.0, 5.0, 7.0])["iqr"],
        summarize([3.0, 3.0, 5.0, 7.0])["mad"],
    )
    measure.fill_samples(r, [], [])
    assert (r.n_samples, r.forward_ms, r.backward_ms, r.forward_iqr_ms, r.backward_mad_ms) == (0, None, None, None, None)
    assert measure.add_faults(3, 4) == 7
    assert measure.add_faults(None, 4) is None and measure.add_faults(3, None) is None
    assert measure.add_faults(0, 0) == 0
    assert measure.faults_per_step(10, 3) == 3.3 and measure.faults_per_step(0, 3) == 0.0
    assert measure.faults_per_step(None, 3) is None and measure.faults_per_step(10, 0) is None
    measure.apply_memory(r, {"forward_peak_bytes": 5, "memory_method": "m"})
    assert (r.forward_peak_bytes, r.memory_method) == (5, "m")


def test_oom_and_failure_classification(monkeypatch):
    assert measure._is_oom(MemoryError())
    assert measure._is_oom(torch.cuda.OutOfMemoryError("x"))
    for text in ("CUDA Out Of Memory", "mmap: can't allocate memory", "Cannot allocate memory"):
        assert measure._is_oom(RuntimeError(text))
    assert not measure._is_oom(RuntimeError("memory"))
    job = measure.RowJob("a", "cpu", WL, budget_s=2.5)

    def kind(exc, stage="timing", job=job):
        r = measure.classify_failure(RowResult("a", "cpu"), exc, stage, job)
        return r.error_kind, r.error

    exc = BudgetExceeded("ran past 2.5 s", [1.0, 3.0], [2.0])
    r = measure.classify_failure(RowResult("a", "cpu"), exc, "timing", job)
    assert (r.error_kind, r.error) == ("budget", "ran past 2.5 s (budget 2.5 s)")
    assert (r.n_samples, r.forward_ms, r.backward_ms) == (2, 2.0, 2.0)
    assert kind(NonFiniteOutput("NaN out")) == ("nonfinite", "NaN out")
    assert kind(BadOutputShape("shape (3,)")) == ("bad-output", "shape (3,)")
    assert kind(MemoryError(), "build") == ("oom", "out of memory on cpu during build: MemoryError")
    assert kind(RuntimeError("out of memory\nmore"), "memory") == ("oom", "out of memory on cpu during memory: out of memory")
    dynamo = type("Unsupported", (Exception,), {"__module__": "torch._dynamo.exc"})
    inductor = type("LoweringException", (Exception,), {"__module__": "torch._inductor.exc"})
    compiled = measure.RowJob("a", "cpu", WL, compile=True)
    assert kind(dynamo("graph break\nx"), "compile", compiled) == ("compile", "torch.compile failed during compile: graph break")
    assert kind(inductor("lowering"), "timing", compiled) == ("compile", "torch.compile failed during timing: lowering")
    assert kind(dynamo("graph break"), "timing")[0] == "crash"  # not compiled: a crash
    assert kind(dynamo("out of memory"), "timing", compiled)[0] == "compile"  # compile is checked first
    try:
        raise ValueError("bad value")
    except ValueError as e:
        caught = e
    line = sys._getframe().f_lineno - 3
    assert kind(caught, "data") == ("crash", f"ValueError during data: bad value (at test_mutation_kills_measure.py:{line})")
    assert measure._first_line(ValueError("  \n a \n b")) == "a "
    assert measure._first_line(KeyError()) == "KeyError"
    assert measure._implementation_frame(ValueError("never raised")) == ""


def test_implementation_frame_skips_kanbench_frames(monkeypatch):
    frames = [
        measure.traceback.FrameSummary("/src/tests/test_x.py", 3, "test"),
        measure.traceback.FrameSummary("/env/lib/impl/layer.py", 41, "forward"),
        measure.traceback.FrameSummary("/src/kanbench/timing.py", 7, "measure"),
    ]
    monkeypatch.setattr(measure.traceback, "extract_tb", lambda tb: frames)
    assert measure._implementation_frame(ValueError()) == " (at layer.py:41)"  # the innermost frame outside kanbench
    frames[1] = measure.traceback.FrameSummary("C:/src/kanbench/sanity.py", 1, "check")
    assert measure._implementation_frame(ValueError()) == " (at test_x.py:3)"
    del frames[0:2]
    assert measure._implementation_frame(ValueError()) == ""


def test_cuda_absent_reason(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert measure.cuda_absent_reason() == f"CUDA requested but this torch ({torch.__version__}) is a CPU-only build"
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    assert measure.cuda_absent_reason() == "CUDA requested but no CUDA device is available (torch.cuda.is_available() is False)"


def test_release_empties_the_cuda_cache_only_for_cuda_rows(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    measure.release(None)
    measure.release(types.SimpleNamespace(device=torch.device("cpu")))
    assert calls == []
    measure.release(types.SimpleNamespace(device=torch.device("cuda")))
    assert calls == [1]
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: 1 / 0)
    measure.release(types.SimpleNamespace(device=torch.device("cuda")))  # errors are swallowed


# ----------------------------------------------------------------------------- open_row


def _open(job, registry, checkpoint=None):
    record = measure.empty_record(job)
    try:
        row = measure.open_row(job, record, registry, checkpoint)
    except measure.RowFailed as exc:
        assert exc.record is record and str(exc) == record.error
        return record, None
    return record, row


def test_open_row_refusals(monkeypatch):
    ok = Implementation("ok", _linear, devices=("cpu",), options=("k",))
    job = measure.RowJob("ok", "cpu", WL)

    def refused(job, *specs, entries=()):
        record, row = _open(job, _registry(*specs, entries=entries))
        assert row is None
        return record.error_kind, record.error

    assert refused(measure.RowJob("nope", "cpu", WL), ok) == ("unknown", "unknown implementation 'nope'; known: ok")
    assert refused(job, entries=[Entry("ok", "t", None, False, "import failed")]) == ("unavailable", "import failed")
    assert refused(job, entries=[Entry("ok", "t", None, False, None)]) == ("unavailable", "failed to load")
    assert refused(job, entries=[Entry("ok", "t", ok, False, "not installed")]) == ("unavailable", "not installed")
    needs = Implementation("ok", _linear, requires=("no_such_module_xyz",))
    assert refused(job, needs) == ("unavailable", "optional package 'no_such_module_xyz' is not installed")
    assert refused(measure.RowJob("ok", "mps", WL), ok) == ("unsupported", "device 'mps' is not supported (use cpu or cuda)")
    assert refused(measure.RowJob("ok", "cuda", WL), ok) == ("unsupported", "ok does not support cuda (supports cpu)")
    gpu = Implementation("ok", _linear, devices=("cpu", "cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert refused(measure.RowJob("ok", "cuda", WL), gpu) == ("cuda-unavailable", measure.cuda_absent_reason())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert refused(measure.RowJob("ok", "cuda:2", WL), gpu) == (
        "cuda-unavailable",
        "cuda:2 does not exist: 2 CUDA device(s) visible",
    )
    assert refused(measure.RowJob("ok", "cpu", WL, options={"k": 1, "z": 2, "w": 3}), ok) == (
        "unsupported",
        "ok does not take z, w",
    )

    def not_a_module(widths, device=None, dtype=None):
        return [1]

    assert refused(job, Implementation("ok", not_a_module)) == ("crash", "build() returned list, not a torch.nn.Module")

    def raises(widths, device=None, dtype=None):
        raise MemoryError()

    assert refused(job, Implementation("ok", raises)) == ("oom", "out of memory on cpu during build: MemoryError")


def test_open_row_builds_and_records(monkeypatch):
    seen = {}

    def build(widths, device=None, dtype=None, **options):
        seen.update(widths=widths, device=device, dtype=dtype, options=options, seed=torch.initial_seed())
        m = _linear(widths, device, dtype)
        m.eval()
        return m

    spec = Implementation(
        "ok", build, devices=("cpu",), options=("k",), family="splines", flops=lambda w, **o: 10 * w[0] + o.get("k", 0)
    )
    before = torch.get_num_threads()
    checkpoints = []
    job = measure.RowJob("ok", "cpu", WL, options={"k": 3}, widths=(2, 9, 1), seed=11, threads=1)
    try:
        record, row = _open(job, _registry(spec), checkpoint=lambda r: checkpoints.append((r.params, r.sanity)))
    finally:
        torch.set_num_threads(before)
    assert seen == {"widths": (2, 9, 1), "device": torch.device("cpu"), "dtype": torch.float32, "options": {"k": 3}, "seed": 11}
    assert row is not None and row.record is record and row.job is job and row.device == torch.device("cpu")
    assert row.model.training  # put in train mode
    assert record.error is None and record.threads == 1 and record.family == "splines" and record.flops_per_sample == 23.0
    assert (record.params, record.trainable_params) == (3, 3)
    from kanbench import allocator

    assert record.allocator == allocator.setting()
    assert record.sanity["status"] == "ok"
    assert checkpoints == [(3, None), (3, record.sanity)]
    x, _ = row.pool.batch()
    assert tuple(x.shape) == (4, 2)
    # no family, no FLOPs model, no sanity gate, no checkpoint
    plain = Implementation("ok", _linear)
    record, row = _open(measure.RowJob("ok", "cpu", WL, sanity=False), _registry(plain))
    assert record.family is None and record.flops_per_sample is None and record.sanity is None and row is not None


def test_open_row_compiles_when_asked(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda m: compiled.append(m) or "COMPILED")
    record, row = _open(measure.RowJob("ok", "cpu", WL, compile=True), _registry(Implementation("ok", _linear)))
    assert row.model == "COMPILED" and len(compiled) == 1 and isinstance(compiled[0], nn.Linear)

    def boom(m):
        raise RuntimeError("inductor missing")

    monkeypatch.setattr(torch, "compile", boom)
    record, row = _open(measure.RowJob("ok", "cpu", WL, compile=True), _registry(Implementation("ok", _linear)))
    assert (record.error_kind, record.error) == (
        "crash",
        f"RuntimeError during compile: inductor missing{record.error.split('inductor missing')[1]}",
    )
    assert "during compile" in record.error


class _Const(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.w * torch.ones(x.shape[0], 1)


def test_run_sanity_stops_a_broken_row_unless_time_broken():
    spec = Implementation("c", lambda w, device=None, dtype=None: _Const())
    record, row = _open(measure.RowJob("c", "cpu", WL), _registry(spec))
    assert row is None and record.error_kind == "sanity"
    assert record.error == "output constant across inputs (a LayerNorm over out=1?) (time it anyway: --time-broken)"
    assert record.sanity["status"] == "fail"
    record, row = _open(measure.RowJob("c", "cpu", WL, time_broken=True), _registry(spec))
    assert row is not None and record.error is None and record.sanity["status"] == "fail"

    class Shape(nn.Module):  # a loud failure: timing reports it with its own kind
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.w * x

    record, row = _open(
        measure.RowJob("s", "cpu", WL), _registry(Implementation("s", lambda w, device=None, dtype=None: Shape()))
    )
    assert row is not None and record.error is None and record.sanity["loud"] is True


def test_run_sanity_keeps_the_random_state():
    model = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    pool = types.SimpleNamespace(batch=lambda: (torch.randn(4, 2), torch.randn(4, 1)))
    torch.manual_seed(3)
    record = RowResult("a", "cpu")
    measure.run_sanity(record, model, pool, measure.RowJob("a", "cpu", WL))
    after = torch.rand(3)
    torch.manual_seed(3)
    torch.randn(4, 2), torch.randn(4, 1)
    assert torch.equal(after, torch.rand(3))


# ----------------------------------------------------------------------------- measure_row


@pytest.fixture
def fake_timing(monkeypatch):
    """timing.measure and memory.phase_peaks replaced: measure_row's bookkeeping, exactly."""
    state = {
        "samples": Samples([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], 7, 0.5, 1.23456, None, 10),
        "raise": None,
        "peaks": {"forward_peak_bytes": 99},
    }
    calls = []

    def fake_measure(model, pool, device, config, deadline=None):
        calls.append(("timing", config, deadline))
        if state["raise"] is not None:
            raise state["raise"]
        return state["samples"]

    def fake_peaks(model, pool, device):
        calls.append(("memory",))
        if state.get("memory_raise"):
            raise state["memory_raise"]
        return state["peaks"]

    monkeypatch.setattr(timing_mod, "measure", fake_measure)
    monkeypatch.setattr(memory_mod, "phase_peaks", fake_peaks)
    rss = iter([1000, 5000, 6000, 7000])
    monkeypatch.setattr(memory_mod, "rss_peak_bytes", lambda: next(rss))
    clock = iter([100.0, 102.12345, 103.0, 104.0])
    monkeypatch.setattr(measure.time, "monotonic", lambda: next(clock))
    state["calls"] = calls
    return state


def test_measure_row_fills_the_record(fake_timing):
    reg = _registry(Implementation("ok", _linear))
    checkpoints = []
    job = measure.RowJob("ok", "cpu", WL, budget_s=10.0)
    r = measure.measure_row(job, reg, checkpoint=lambda rec: checkpoints.append(rec.forward_ms))
    assert r.error is None
    assert fake_timing["calls"] == [("timing", job.timing, 110.0), ("memory",)]
    assert (r.forward_ms, r.backward_ms, r.n_samples, r.warmup_iterations, r.first_step_s) == (2.0, 5.0, 3, 7, 0.5)
    assert r.measured_s == 1.2346 and r.minor_faults_per_step == 3.3 and r.note is None
    assert r.forward_peak_bytes == 99
    assert (r.rss_peak_bytes, r.rss_increase_bytes) == (5000, 4000)
    assert r.wall_s == 2.123  # milliseconds
    assert checkpoints == [None, None, 2.0]  # built, sanity done, timed


def test_measure_row_without_memory_budget_or_faults(fake_timing):
    fake_timing["samples"] = Samples([1.0], [2.0], 1, 0.1, 0.5, "max_samples reached", None)
    r = measure.measure_row(
        measure.RowJob("ok", "cpu", WL, budget_s=None, memory=False), _registry(Implementation("ok", _linear))
    )
    assert fake_timing["calls"] == [("timing", TimingConfig(), None)]
    assert r.note == "stopped before min_time (max_samples reached)" and r.minor_faults_per_step is None
    assert r.forward_peak_bytes is None and r.rss_peak_bytes == 5000
    measure.measure_row(measure.RowJob("ok", "cpu", WL, budget_s=0), _registry(Implementation("ok", _linear)))
    assert fake_timing["calls"][-2][2] is None  # a zero budget is no budget


def test_measure_row_failures(fake_timing, monkeypatch):
    reg = _registry(Implementation("ok", _linear))
    fake_timing["raise"] = NonFiniteOutput("NaN in the output")
    r = measure.measure_row(measure.RowJob("ok", "cpu", WL), reg)
    assert (r.error_kind, r.error) == ("nonfinite", "NaN in the output")
    assert fake_timing["calls"][-1][0] == "timing"  # memory is not measured
    assert (r.rss_peak_bytes, r.rss_increase_bytes, r.wall_s) == (5000, 4000, 2.123)
    fake_timing["raise"] = None
    fake_timing["memory_raise"] = MemoryError()
    clock = iter([0.0, 1.0])
    monkeypatch.setattr(measure.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(memory_mod, "rss_peak_bytes", lambda: 1)
    r = measure.measure_row(measure.RowJob("ok", "cpu", WL), reg)
    assert (r.error_kind, r.error) == ("oom", "out of memory on cpu during memory: MemoryError")
    assert r.forward_ms == 2.0  # the timing is kept


def test_measure_row_unknown_and_cuda_rows(monkeypatch):
    rss = iter([None, 10])
    monkeypatch.setattr(memory_mod, "rss_peak_bytes", lambda: next(rss))
    r = measure.measure_row(measure.RowJob("nope", "cpu", WL), _registry())
    assert r.error_kind == "unknown" and r.rss_peak_bytes == 10 and r.rss_increase_bytes is None
    rss2 = iter([5, None])
    monkeypatch.setattr(memory_mod, "rss_peak_bytes", lambda: next(rss2))
    r = measure.measure_row(measure.RowJob("nope", "cpu", WL), _registry())
    assert r.rss_peak_bytes is None and r.rss_increase_bytes is None
    monkeypatch.setattr(memory_mod, "rss_peak_bytes", lambda: 7)
    r = measure.measure_row(measure.RowJob("nope", "cuda", WL), _registry())
    assert r.rss_peak_bytes is None  # CUDA rows report device memory, not the RSS


def test_measure_row_keeps_an_rss_the_memory_step_set(fake_timing):
    fake_timing["peaks"] = {"rss_peak_bytes": 1}
    r = measure.measure_row(measure.RowJob("ok", "cpu", WL), _registry(Implementation("ok", _linear)))
    assert r.rss_peak_bytes == 1 and r.rss_increase_bytes is None


def test_measure_row_really_measures_a_small_model():
    r = measure.measure_row(
        measure.RowJob("ok", "cpu", WL, TimingConfig(min_time=0.0, min_samples=3, max_samples=3, warmup_time=0.0, warmup_min=1)),
        _registry(Implementation("ok", _linear)),
    )
    assert r.error is None and r.n_samples == 3 and r.forward_ms > 0 and r.rss_peak_bytes > 0 and r.wall_s >= 0


# ----------------------------------------------------------------------------- runner


def test_run_plan_jobs():
    match = types.SimpleNamespace(widths=[2, 6, 1], to_dict=lambda: {"metric": "params"})
    plan = runner.RunPlan(
        ["a", "b"],
        ["cpu", "cuda"],
        WL,
        TimingConfig(min_time=0.5, min_samples=4),
        options={"grid_size": 3},
        threads=2,
        extra_dirs=["d"],
        budget_s=5.0,
        memory=False,
        matches={"b": match},
        time_broken=True,
        compile=True,
    )
    jobs = plan.jobs()
    assert [(j.impl, j.device) for j in jobs] == [("a", "cpu"), ("a", "cuda"), ("b", "cpu"), ("b", "cuda")]
    for j in jobs:
        assert (j.workload, j.timing, j.threads, j.extra_dirs, j.budget_s, j.memory, j.time_broken, j.compile) == (
            WL,
            plan.timing,
            2,
            ("d",),
            5.0,
            False,
            True,
            True,
        )
    assert all(j.timing == TimingConfig(min_time=0.5, min_samples=4) for j in jobs)
    assert all(j.options == {"grid_size": 3} and j.options is not plan.options for j in jobs)
    assert (jobs[0].widths, jobs[0].match) == (None, None)
    assert (jobs[2].widths, jobs[2].match) == ((2, 6, 1), {"metric": "params"})
    d = runner.RunPlan(["a"], ["cpu"], WL)
    assert (d.isolate, d.memory, d.budget_s, d.threads, d.compile, d.time_broken, d.options) == (
        True,
        True,
        120.0,
        None,
        False,
        False,
        {},
    )


def test_execute_writes_after_every_row(tmp_path, monkeypatch):
    writes = []
    real = runner.results_mod.write_atomic
    monkeypatch.setattr(
        runner.results_mod, "write_atomic", lambda p, doc: writes.append((p, len(doc.results), doc.complete)) or real(p, doc)
    )
    plan = runner.RunPlan(["a", "b"], ["cpu"], WL)
    seen, progress = [], []
    doc = runner.execute(
        plan,
        ResultsDocument(),
        tmp_path / "r.json",
        measure=lambda job: RowResult(job.impl, job.device, forward_ms=1.0),
        progress=lambda i, n, rec: progress.append((i, n, rec.impl)),
        on_start=lambda i, n, job: seen.append((i, n, job.impl)),
    )
    assert seen == [(1, 2, "a"), (2, 2, "b")] and progress == [(1, 2, "a"), (2, 2, "b")]
    assert writes == [
        (tmp_path / "r.json", 0, False),
        (tmp_path / "r.json", 1, False),
        (tmp_path / "r.json", 2, False),
        (tmp_path / "r.json", 2, True),
    ]
    assert doc.complete and [r.impl for r in doc.results] == ["a", "b"]
    assert json.loads((tmp_path / "r.json").read_text())["complete"] is True
    writes.clear()
    doc = runner.execute(plan, ResultsDocument(), None, measure=lambda job: RowResult(job.impl, job.device))
    assert writes == [] and doc.complete


def test_execute_keeps_the_rows_on_ctrl_c(tmp_path):
    def measure_fn(job):
        if job.impl == "b":
            raise KeyboardInterrupt
        return RowResult(job.impl, job.device)

    path = tmp_path / "r.json"
    with pytest.raises(runner.Interrupted) as e:
        runner.execute(runner.RunPlan(["a", "b", "c"], ["cpu"], WL), ResultsDocument(), path, measure=measure_fn)
    assert e.value.path == path and str(e.value) == "interrupted"
    assert [r.impl for r in e.value.document.results] == ["a"] and e.value.document.interrupted
    saved = json.loads(path.read_text())
    assert saved["interrupted"] is True and saved["complete"] is False and len(saved["results"]) == 1
    with pytest.raises(runner.Interrupted) as e:
        runner.execute(runner.RunPlan(["b"], ["cpu"], WL), ResultsDocument(), None, measure=measure_fn)
    assert e.value.path is None and e.value.document.interrupted and e.value.__suppress_context__


def test_execute_picks_the_measure(monkeypatch):
    import kanbench.worker as worker

    monkeypatch.setattr(worker, "measure_row_isolated", lambda job: RowResult("iso:" + job.impl, job.device))
    doc = runner.execute(runner.RunPlan(["a"], ["cpu"], WL), ResultsDocument(), None)
    assert [r.impl for r in doc.results] == ["iso:a"]
    got = []
    monkeypatch.setattr(
        runner, "measure_row", lambda job, registry: got.append(registry) or RowResult("in:" + job.impl, job.device)
    )
    doc = runner.execute(runner.RunPlan(["a"], ["cpu"], WL, isolate=False), ResultsDocument(), None, registry="REG")
    assert [r.impl for r in doc.results] == ["in:a"] and got == ["REG"]


def test_command_line(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/x/__main__.py", "run", "--impl", "a b"])
    assert runner.command_line() == "kanbench run --impl 'a b'"
    monkeypatch.setattr(sys, "argv", ["/x/cli.py"])
    assert runner.command_line() == "kanbench"
    monkeypatch.setattr(sys, "argv", ["/usr/bin/kb", "x"])
    assert runner.command_line() == "kb x"


def test_failures_name_their_stage(monkeypatch):
    import kanbench.workload as workload_mod

    ok = _registry(Implementation("ok", _linear))

    class BadRegistry:
        def get(self, name):
            raise RuntimeError("registry broke")

    r = measure.measure_row(measure.RowJob("ok", "cpu", WL), BadRegistry())
    assert r.error.startswith("RuntimeError during setup: registry broke")
    monkeypatch.setattr(timing_mod, "measure", lambda *a, **k: (_ for _ in ()).throw(ValueError("clock")))
    r = measure.measure_row(measure.RowJob("ok", "cpu", WL), ok)
    assert r.error.startswith("ValueError during timing: clock")

    class BadPool:
        def __init__(self, *a):
            raise ValueError("no data")

    monkeypatch.setattr(workload_mod, "DataPool", BadPool)
    record, row = _open(measure.RowJob("ok", "cpu", WL), ok)
    assert record.error.startswith("ValueError during data: no data")
    monkeypatch.undo()
    from kanbench import sanity

    monkeypatch.setattr(sanity, "check", lambda *a: (_ for _ in ()).throw(ValueError("gate")))
    record, row = _open(measure.RowJob("ok", "cpu", WL), ok)
    assert record.error.startswith("ValueError during sanity: gate")


def test_run_sanity_passes_the_targets(monkeypatch):
    from kanbench import sanity

    seen = []
    monkeypatch.setattr(sanity, "check", lambda model, x, out, target: seen.append((x, out, target)) or sanity.SanityReport())
    x, y = torch.ones(4, 2), torch.zeros(4, 1)
    measure.run_sanity(
        RowResult("a", "cpu"), nn.Linear(2, 1), types.SimpleNamespace(batch=lambda: (x, y)), measure.RowJob("a", "cpu", WL)
    )
    assert seen == [(x, 1, y)]


def test_measure_row_releases_its_row(monkeypatch, fake_timing):
    released = []
    monkeypatch.setattr(measure, "release", lambda row: released.append(row))
    measure.measure_row(measure.RowJob("ok", "cpu", WL), _registry(Implementation("ok", _linear)))
    assert len(released) == 1 and isinstance(released[0], measure.Row)


def test_open_row_discovers_with_the_jobs_settings(monkeypatch):
    from kanbench import discovery

    got = []
    monkeypatch.setattr(
        discovery,
        "discover",
        lambda dirs, builtin=True, check=True, site_dirs=(): got.append((dirs, builtin, check, site_dirs)) or _registry(),
    )
    _open(measure.RowJob("ok", "cpu", WL, builtin=False, extra_dirs=("d",), site_dirs=("s",)), None)
    assert got == [(("d",), False, False, ("s",))]


def test_open_row_device_checks(monkeypatch):
    two = Implementation("ok", _linear, devices=("cpu", "mps"))
    record, _ = _open(measure.RowJob("ok", "cuda", WL), _registry(two))
    assert record.error == "ok does not support cuda (supports cpu, mps)"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    seen = []

    def build(widths, device=None, dtype=None):
        seen.append(device)
        raise RuntimeError("built")

    for dev in ("cuda", "cuda:1"):  # the default device, and one that exists: built (here: the build raises)
        record, _ = _open(measure.RowJob("ok", dev, WL), _registry(Implementation("ok", build)))
        assert record.error_kind == "crash" and "during build: built" in record.error
    assert seen == [torch.device("cuda"), torch.device("cuda:1")]
