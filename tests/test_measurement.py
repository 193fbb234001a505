"""Behaviour of timing, memory and parameter counting (no test asserts a speed)."""

import math
import sys

import pytest
import torch
from torch import nn

from kanbench import memory, results, timing
from kanbench.discovery import discover
from kanbench.runner import RowJob, count_parameters, measure_row
from kanbench.stats import summarize
from kanbench.timing import TimingConfig
from kanbench.workload import DataPool, Workload, WorkloadError, parse_batch, parse_dtype, parse_shape, resolve
from tests.conftest import TOYS

QUICK = TimingConfig(min_time=0, min_samples=3, warmup_time=0, warmup_min=1)


def toy_registry():
    return discover([TOYS], builtin=True, entry_points=False, check=False)


def test_timing_separates_forward_from_backward():
    job = RowJob(impl="sleepy", device="cpu", workload=Workload((2, 4, 1), 8), timing=QUICK, memory=False)
    rec = measure_row(job, toy_registry())
    assert rec.error is None
    assert rec.n_samples == 3
    assert rec.forward_ms >= 50.0
    assert rec.backward_ms < 10.0
    assert len(rec.samples["forward_ms"]) == len(rec.samples["backward_ms"]) == 3


def test_samples_meet_min_samples_and_min_time():
    cfg = TimingConfig(min_time=0.2, min_samples=5, warmup_time=0, warmup_min=1)
    job = RowJob(impl="mlp", device="cpu", workload=Workload((2, 8, 1), 4), timing=cfg, memory=False)
    rec = measure_row(job, toy_registry())
    assert rec.n_samples >= 5
    assert rec.measured_s >= 0.2
    s = summarize(rec.samples["forward_ms"])
    assert rec.forward_ms == pytest.approx(s["median"], rel=1e-3)
    assert rec.forward_iqr_ms >= 0


def test_every_iteration_builds_a_fresh_graph_and_zeroes_gradients():
    calls = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            calls.append(self.lin.weight.grad is None)
            return self.lin(x)

    model = Spy()
    pool = DataPool(Workload((2, 4, 1), 8), "cpu")
    timing.measure(model, pool, "cpu", QUICK)
    assert len(calls) >= 4
    assert all(calls), "gradients must be dropped before every forward"


def test_fresh_batch_each_iteration():
    pool = DataPool(Workload((2, 4, 1), 8), "cpu")
    a, _ = pool.batch()
    b, _ = pool.batch()
    assert not torch.equal(a, b)
    pool2 = DataPool(Workload((2, 4, 1), 8), "cpu")
    assert torch.equal(pool2.batch()[0], a), "the pool and its batches are seeded"


def test_targets_are_the_seed_function():
    pool = DataPool(Workload((2, 4, 3), 8), "cpu")
    x, y = pool.x.double(), pool.y.double()
    expect = torch.exp(torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2)
    assert torch.allclose(y[:, 0], expect, rtol=1e-6)
    assert torch.equal(y[:, 0], y[:, 2])
    assert float(pool.x.min()) >= -1 and float(pool.x.max()) <= 1
    one = DataPool(Workload((1, 4, 1), 8), "cpu")
    assert torch.allclose(one.y.double()[:, 0], torch.exp(torch.sin(math.pi * one.x.double()[:, 0])), rtol=1e-6)


def test_parameter_counts_of_known_modules():
    assert count_parameters(nn.Linear(3, 4)) == (16, 16)
    rec = measure_row(
        RowJob(impl="frozen", device="cpu", workload=Workload((2, 4, 1), 8), timing=QUICK, memory=False), toy_registry()
    )
    assert (rec.params, rec.trainable_params) == (2 * 3 + 3 + 3 * 1 + 1, 2 * 3 + 3)
    rec = measure_row(
        RowJob(impl="mlp", device="cpu", workload=Workload((2, 150, 1), 32), timing=QUICK, memory=False), toy_registry()
    )
    assert rec.params == rec.trainable_params == 2 * 1500 + 1500 + 1500 + 1 == 6001


def test_cpu_memory_peaks_follow_the_activations():
    # Linear(64 -> 4096) on a batch of 128: the forward keeps the 128x4096 float32 output (2 MiB)
    model = nn.Sequential(nn.Linear(64, 4096), nn.ReLU(), nn.Linear(4096, 1))
    pool = DataPool(Workload((64, 4096, 1), 128), "cpu")
    params = memory.model_state_bytes(model)  # no gradients yet
    m = memory.cpu_phase_peaks(model, pool)
    assert m["memory_method"] == "cpu-profiler"
    act = 128 * 4096 * 4
    assert 2 * act <= m["forward_peak_increase_bytes"] <= 3 * act
    batch = 128 * 64 * 4 + 128 * 4
    assert m["forward_peak_bytes"] == params + pool.nbytes() + batch + m["forward_peak_increase_bytes"]
    state = memory.model_state_bytes(model)
    # backward allocates at least the parameter gradients
    assert m["backward_peak_increase_bytes"] >= state


def test_row_records_memory_and_rss():
    rec = measure_row(RowJob(impl="mlp", device="cpu", workload=Workload((2, 150, 1), 32), timing=QUICK), toy_registry())
    assert rec.forward_peak_bytes > 0 and rec.backward_peak_bytes > 0
    assert rec.rss_peak_bytes > 0


@pytest.mark.parametrize(
    "text,ok",
    [("2,150,1", (2, 150, 1)), ("2x3", (2, 3)), ("2,,1", None), ("a,b", None), ("0,3,1", None), ("5", None)],
)
def test_parse_shape(text, ok):
    if ok:
        assert parse_shape(text) == ok
    else:
        with pytest.raises(WorkloadError):
            parse_shape(text)


def test_parse_batch_and_dtype():
    assert parse_batch("32") == 32
    for bad in ("0", "-3", "x", "1.5"):
        with pytest.raises(WorkloadError):
            parse_batch(bad)
    assert parse_dtype("bf16") == "bfloat16"
    with pytest.raises(WorkloadError):
        parse_dtype("int8")


def test_presets_and_overrides():
    assert resolve().widths == (2, 150, 1) and resolve().batch == 32 and resolve().preset == "seed"
    big = resolve("large")
    assert big.widths == (1000, 1000, 1) and big.batch == 100
    custom = resolve("seed", shape=(3, 5, 1))
    assert custom.preset is None and custom.batch == 32
    with pytest.raises(WorkloadError):
        resolve("nope")


def test_interleaved_rounds_rotate_so_no_row_always_goes_first():
    from kanbench.interleave import InterleaveConfig, _order, _rounds_of

    rows = ["a", "b", "c"]
    orders = [_order(rows, r) for r in range(6)]
    assert orders[0] == ["a", "b", "c"] and orders[1] == ["a", "c", "b"]
    assert {o[0] for o in orders} == {"a", "b", "c"}  # each row leads some round
    assert all(sorted(o) == rows for o in orders)
    cfg = InterleaveConfig(rounds=7, processes=3)
    assert [_rounds_of(g, cfg) for g in range(3)] == [3, 2, 2]
    with pytest.raises(ValueError):
        InterleaveConfig(rounds=2, processes=3)


def test_interleaved_run_keeps_rounds_and_processes(tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "r.json"
    res = run_cli(
        "run",
        "--impl",
        "mlp,splines-better_kan",
        "--device",
        "cpu",
        "--preset",
        "quick",
        "--out",
        out,
        "--min-time",
        "0",
        "--min-samples",
        "8",
        "--warmup",
        "0",
        "--rounds",
        "4",
        "--processes",
        "2",
    )
    assert res.returncode == 0, res.stderr
    doc = results.load(out)
    assert doc.config["isolation"] == "interleaved"
    for rec in doc.results:
        assert rec.error is None and rec.workers == 2
        assert len(rec.rounds["forward_ms"]) == 4 and len(rec.extra["processes"]["forward_ms"]) == 2
        assert rec.n_samples >= 8 and rec.params and rec.forward_peak_bytes
        # the worker kept freed memory (glibc) and counted its page faults while measuring
        if sys.platform.startswith("linux"):
            assert rec.allocator.startswith("glibc, freed memory kept"), rec.allocator
        assert rec.minor_faults_per_step is not None and rec.minor_faults_per_step >= 0


def test_rows_beyond_max_live_get_a_companion_mlp_for_paired_ratios(monkeypatch):
    """With more rows than --max-live, a batch without the MLP measures one alongside (not a row);
    its rounds pair the ratios of that batch's rows. (measure_batch faked: no worker processes.)"""
    from kanbench import interleave
    from kanbench.interleave import InterleaveConfig
    from kanbench.records import RowResult
    from kanbench.runner import RowJob

    wl = Workload((2, 4, 1), 8)
    batches = []

    def fake_batch(jobs, config, on_generation=None, on_ready=None):
        batches.append([j.impl for j in jobs])
        speed = {"mlp": 1.0, "a": 2.0, "b": 3.0}
        drift = 1.0 + len(batches)  # each batch ran in a different phase of the machine
        return [
            RowResult(
                impl=j.impl, device="cpu", workload=wl.to_dict(), forward_ms=speed[j.impl] * drift, backward_ms=drift,
                rounds={"forward_ms": [speed[j.impl] * drift] * 3, "backward_ms": [drift] * 3},
            )
            for j in jobs
        ]  # fmt: skip

    monkeypatch.setattr(interleave, "measure_batch", fake_batch)
    jobs = [RowJob(impl=i, device="cpu", workload=wl) for i in ("mlp", "a", "b")]
    records = interleave.measure_jobs(jobs, InterleaveConfig(rounds=3, processes=1, max_live=2))
    assert batches == [["mlp", "a"], ["b", "mlp"]]  # the second batch measured a companion MLP
    by = {r.impl: r for r in records}
    assert [r.impl for r in records] == ["mlp", "a", "b"]  # the companion is not a row
    assert "baseline_rounds" not in by["a"].extra
    assert by["b"].extra["baseline_rounds"] == {"forward_ms": [3.0] * 3, "backward_ms": [3.0] * 3}
    # paired with the companion measured in its own batch: (3*3 + 3) / (1*3 + 3), not against batch 1's MLP
    assert by["b"].ratio_to(by["mlp"]) == 2.0
    assert by["a"].ratio_to(by["mlp"]) == 1.5


def test_interleaved_sweep_measures_every_point(tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "s.json"
    res = run_cli(
        "sweep",
        "--impl",
        "mlp",
        "--preset",
        "quick",
        "--batch",
        "4,8",
        "--out",
        out,
        "--no-plots",
        "--min-time",
        "0",
        "--min-samples",
        "2",
        "--rounds",
        "2",
        "--processes",
        "1",
    )
    assert res.returncode == 0, res.stderr
    doc = results.load(out)
    assert len(doc.results) == 3 and all(r.error is None and r.rounds and r.sweep for r in doc.results)


def test_summarize_against_known_statistics():
    """Values worked out by hand (numpy's default linear-interpolation quantiles)."""
    from kanbench.stats import geometric_mean, quantile

    s = summarize([7.0, 1.0, 3.0, 100.0, 2.0])  # sorted: 1 2 3 7 100
    assert s["median"] == 3.0  # the mean would be 22.6
    assert (s["q1"], s["q3"], s["iqr"]) == (2.0, 7.0, 5.0)
    assert s["mad"] == 2.0  # |x - 3| sorted: 0 1 2 4 97
    assert s["min"] == 1.0 and s["n"] == 5
    even = summarize([4.0, 1.0, 3.0, 2.0])
    assert even["median"] == 2.5 and even["q1"] == 1.75 and even["q3"] == 3.25
    assert quantile([10.0, 20.0], 0.3) == 13.0
    assert math.isclose(geometric_mean([1.0, 4.0, None, float("nan"), -1.0]), 2.0)
    assert math.isnan(summarize([])["median"])


def test_the_loss_is_built_outside_both_timed_phases(monkeypatch):
    """forward = mark(0)..mark(1) holds the model's forward only; the loss sits between
    mark(1) and mark(2); the backward = mark(2)..mark(3) holds loss.backward() only."""
    events = []

    class Clock:
        def begin(self):
            events.append("begin")

        def mark(self, i):
            events.append(f"mark{i}")

        def read(self):
            return 1.0, 1.0

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            events.append("forward")
            return self.lin(x)

    real_loss = timing.loss_fn

    def loss(out, y):
        events.append("loss")
        return real_loss(out, y)

    monkeypatch.setattr(timing, "loss_fn", loss)
    timing.iteration(Model(), DataPool(Workload((2, 1), 4), "cpu"), Clock())
    assert events == ["begin", "mark0", "forward", "mark1", "loss", "mark2", "mark3"]


def test_summarize_edge_cases_from_the_mutation_report():
    """Survivors of `make mutate` in kanbench/stats.py: the empty summary's keys, one value,
    the top quantile, and non-positive values in the geometric mean."""
    from kanbench.stats import geometric_mean, quantile

    empty = summarize([])
    assert set(empty) == {"median", "q1", "q3", "iqr", "mad", "min", "n"} and empty["n"] == 0
    assert all(math.isnan(v) for k, v in empty.items() if k != "n")
    one = summarize([5.0])
    assert (one["median"], one["q1"], one["q3"], one["iqr"], one["mad"], one["min"], one["n"]) == (
        5.0,
        5.0,
        5.0,
        0.0,
        0.0,
        5.0,
        1,
    )
    assert quantile([1.0, 2.0, 4.0], 1.0) == 4.0 and quantile([1.0, 2.0, 4.0], 0.0) == 1.0
    assert math.isclose(geometric_mean([0.0, 4.0, 1.0]), 2.0)  # zero and negative times are not times


# ----------------------------------------------------------------- warm-up and sample loops, exactly
# A fake clock: every iteration takes exactly 0.125 s (binary-exact), so counts are exact.


class _FakeTime:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def monotonic(self):
        return self.now


@pytest.fixture
def fake_loop(monkeypatch):
    from kanbench import timing

    ft = _FakeTime()
    calls = []

    def iteration(model, pool, clock, check_shape=False):
        calls.append(check_shape)
        ft.now += 0.125
        return 1.0, 2.0

    monkeypatch.setattr(timing, "time", ft)
    monkeypatch.setattr(timing, "iteration", iteration)
    return ft, calls


def _collect(**kw):
    from kanbench import timing

    samples = timing.Samples()
    measured, cut = timing.collect(None, None, None, samples, **kw)
    return len(samples.forward_ms), measured, cut


def test_collect_stops_exactly_at_min_time_and_min_samples(fake_loop):
    import gc

    assert _collect(min_time=0.5, min_samples=2, max_samples=100) == (4, 0.5, None)
    assert _collect(min_time=0.0, min_samples=3, max_samples=100) == (3, 0.375, None)
    assert gc.isenabled()  # switched back on after the loop


def test_collect_reports_why_it_stopped_early(fake_loop):
    ft, _ = fake_loop
    assert _collect(min_time=10.0, min_samples=1, max_samples=3) == (3, 0.375, "max_samples")
    # max_samples reached exactly when min_time is: not cut short
    assert _collect(min_time=0.5, min_samples=1, max_samples=4) == (4, 0.5, None)
    ft.now = 0.0
    assert _collect(min_time=10.0, min_samples=1, max_samples=100, deadline=0.25) == (2, 0.25, "time budget")


def test_warm_up_counts_and_checks_the_first_output(fake_loop):
    from kanbench import timing

    ft, calls = fake_loop
    facts = {}
    n = timing.warm_up(None, None, None, timing.TimingConfig(warmup_min=3, warmup_time=0.0), facts=facts)
    assert n == 3 and calls == [True, False, False] and facts == {"first_step_s": 0.125}
    calls.clear()
    # the warm-up clock starts after the first step: 0.25 s more is two more steps
    assert timing.warm_up(None, None, None, timing.TimingConfig(warmup_min=1, warmup_time=0.25)) == 3
    assert len(calls) == 3
    calls.clear()
    assert timing.warm_up(None, None, None, timing.TimingConfig(warmup_min=5, warmup_time=0.0), deadline=ft.now) == 1
    assert len(calls) == 1


def test_timing_config_validation_boundaries():
    from kanbench.timing import TimingConfig

    TimingConfig(min_time=0, min_samples=1, max_samples=1, warmup_min=0, warmup_time=0)  # all at their bounds
    for kw, message in [
        (dict(min_time=-0.1), "min_time must be a non-negative number of seconds, got -0.1"),
        (dict(min_time=float("inf")), "min_time must be a non-negative number of seconds, got inf"),
        (dict(min_samples=0), "min_samples must be at least 1, got 0"),
        (dict(min_samples=5, max_samples=4), "max_samples must be at least min_samples"),
        (dict(warmup_min=-1), "warm-up settings must be non-negative"),
        (dict(warmup_time=-1.0), "warm-up settings must be non-negative"),
    ]:
        with pytest.raises(ValueError) as info:
            TimingConfig(**kw)
        assert str(info.value) == message


def test_the_sanity_gate_runs_in_the_first_process_generation_only(monkeypatch):
    """Later generations measure the same code: they skip the gate (a compiled model's float64
    copy took 6 s per generation) and keep the first generation's report."""
    from kanbench import interleave
    from kanbench.runner import empty_record

    started = []

    class FakeWorker:
        def __init__(self, job, directory, tag):
            started.append((tag, job.sanity))
            self.sanity = {"status": "warn"} if job.sanity else None

        def read(self, timeout):
            return {"record": {"sanity": self.sanity, "warmup_iterations": 3}}

    monkeypatch.setattr(interleave, "ServeWorker", FakeWorker)
    job = RowJob(impl="mlp", device="cpu", workload=Workload((2, 4, 1), 8), timing=TimingConfig())
    row = interleave._Row(job, empty_record(job))
    for g in range(3):
        interleave._start_generation([row], "/nonexistent", g)
    assert started == [("g0-r0", True), ("g1-r0", False), ("g2-r0", False)]
    assert row.record.sanity == {"status": "warn"} and row.record.warmup_iterations == 3
    assert job.sanity  # the row's own job is unchanged


def test_collect_counts_the_page_faults_of_its_steps(fake_loop, monkeypatch):
    from kanbench import allocator, runner, timing

    counts = iter([100, 130, 130, 175])
    monkeypatch.setattr(allocator, "minor_faults", lambda: next(counts))
    samples = timing.Samples()
    timing.collect(None, None, None, samples, min_time=0.0, min_samples=3, max_samples=100)
    assert samples.minor_faults == 30
    timing.collect(None, None, None, samples, min_time=0.0, min_samples=3, max_samples=100)
    assert samples.minor_faults == 75  # a second chunk adds to the first
    assert runner.faults_per_step(samples.minor_faults, len(samples.forward_ms)) == 12.5
    # unreadable (no resource module): not counted, not zero
    monkeypatch.setattr(allocator, "minor_faults", lambda: None)
    unread = timing.Samples()
    timing.collect(None, None, None, unread, min_time=0.0, min_samples=1, max_samples=100)
    assert unread.minor_faults is None
    # readable before the steps but not after (or the other way round): not counted either
    for pair in ([100, None], [None, 100]):
        counts = iter(pair)
        monkeypatch.setattr(allocator, "minor_faults", lambda: next(counts))
        half = timing.Samples()
        timing.collect(None, None, None, half, min_time=0.0, min_samples=1, max_samples=100)
        assert half.minor_faults is None
    assert runner.faults_per_step(None, 4) is None and runner.faults_per_step(8, 0) is None
