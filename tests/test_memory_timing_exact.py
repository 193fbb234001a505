"""The memory replay and the timing loop on made-up inputs, value by value.

Written against the survivors of a mutation run (benchmarks/results/mutation-report.md):
a profiler timeline built by hand (so every byte of the replay is known), storages counted
from tensors of known size, the resident-set figure from a faked ``getrusage``, and the
timing loop on a fake clock whose every step takes a known time.
"""

import types

import pytest
import torch
from torch import nn

from kanbench import memory, timing
from kanbench.workload import DataPool, Workload

# ----------------------------------------------------------------------------- profiler replay

_Allocation = type("_ExtraFields_Allocation", (), {})  # the profiler's class name is what the replay checks


def _alloc(t, ptr, size, device="cpu"):
    fields = _Allocation()
    fields.device, fields.ptr, fields.alloc_size = device, ptr, size
    return types.SimpleNamespace(name="[memory]", start_time_ns=t, end_time_ns=t, extra_fields=fields, children=[])


def _range(name, start, end, children=()):
    return types.SimpleNamespace(name=name, start_time_ns=start, end_time_ns=end, extra_fields=object(), children=list(children))


def _profile(events):
    tree = types.SimpleNamespace(experimental_event_tree=lambda: events)
    return types.SimpleNamespace(profiler=types.SimpleNamespace(kineto_results=tree))


def test_replay_matches_frees_to_allocations_by_address():
    events = [
        _range(
            memory.FORWARD_RANGE,
            10,
            40,
            children=[_alloc(10, 1, 100), _alloc(30, 2, 1), _alloc(30, 1, -100)],  # a 1-byte allocation is one
        ),
        _alloc(5, 9, -64),  # freed, but allocated before the profile began: ignored
        _alloc(50, 3, 10),
        _alloc(55, 3, 20),  # the same address again without a free: both count
        _alloc(60, 3, -40),  # a free larger than what was recorded frees only that
        _alloc(70, 4, 8, device="cuda:0"),  # not a CPU tensor
        _range(memory.BACKWARD_RANGE, 45, 80),
        _alloc(90, 8, 16),
        _alloc(91, 8, 0),  # a zero-byte event neither allocates nor frees the live block
        _alloc(92, 8, -16),
    ]
    deltas, ranges = memory._profiler_memory_timeline(_profile(events))
    assert ranges == {memory.FORWARD_RANGE: (10, 40), memory.BACKWARD_RANGE: (45, 80)}
    assert deltas == [(10, 100), (30, -100), (30, 1), (50, 10), (55, 20), (60, -30), (90, 16), (92, -16)]


def test_replay_frees_before_allocations_at_the_same_timestamp():
    # a block freed and a new one allocated in the same tick: the peak is 100, not 160;
    # the event order (allocation first, higher address first) must not decide it
    events = [_alloc(10, 5, 100), _alloc(20, 6, 60), _alloc(20, 4, 1), _alloc(20, 5, -100)]
    deltas, _ = memory._profiler_memory_timeline(_profile(events))
    assert deltas[:2] == [(10, 100), (20, -100)]
    assert memory._peak_in_range(deltas, 0, 100) == (0, 100)


def test_peak_in_range_counts_both_ends_and_what_came_before():
    deltas = [(5, 7), (10, 100), (20, -50), (30, 200), (31, 1000)]
    # live when the range [10, 30] starts: 7 (from t=5); inside: 107, 57, 257; t=31 is after it
    assert memory._peak_in_range(deltas, 10, 30) == (7, 257)
    assert memory._peak_in_range(deltas, 11, 29) == (107, 107)  # nothing inside: the peak is the start
    assert memory._peak_in_range(deltas, 40, 50) == (1257, 1257)  # everything before
    assert memory._peak_in_range([], 0, 10) == (0, 0)
    assert memory._peak_in_range([(0, -5), (1, 3)], 0, 1) == (0, 0)  # a drop below the start keeps the start


# ----------------------------------------------------------------------------- cpu_phase_peaks


def _model_and_pool():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    pool = DataPool(Workload((3, 2), 4), "cpu")
    model(pool.batch()[0]).sum().backward()  # gradients from an earlier step: zeroed to None first
    return model, pool


def test_cpu_phase_peaks_adds_the_replay_to_what_was_resident(monkeypatch):
    model, pool = _model_and_pool()
    deltas = [(1, 10), (2, 30), (3, -20), (5, 7), (6, 100), (7, -100)]
    ranges = {memory.FORWARD_RANGE: (2, 3), memory.BACKWARD_RANGE: (5, 7)}
    monkeypatch.setattr(memory, "_profiler_memory_timeline", lambda prof: (deltas, ranges))
    m = memory.cpu_phase_peaks(model, pool)
    # resident: the parameters (no gradients: zero_grad(set_to_none=True)), the pool, one batch
    params = (3 * 2 + 2) * 4
    batch = 4 * 3 * 4 + 4 * 2 * 4
    resident = params + pool.nbytes() + batch
    assert m == {
        "forward_peak_bytes": resident + 40,  # 10 before, +30 at its start
        "forward_peak_increase_bytes": 30,  # 40 - 10
        "backward_peak_bytes": resident + 127,  # 20 before, +7, +100
        "backward_peak_increase_bytes": 107,  # 127 - 20
        "memory_method": "cpu-profiler",
    }


def test_cpu_phase_peaks_without_both_ranges_is_unavailable(monkeypatch):
    model, pool = _model_and_pool()
    for ranges in ({memory.FORWARD_RANGE: (0, 1)}, {memory.BACKWARD_RANGE: (0, 1)}, {}):
        monkeypatch.setattr(memory, "_profiler_memory_timeline", lambda prof, r=ranges: ([], r))
        assert memory.cpu_phase_peaks(model, pool) == {
            "forward_peak_bytes": None,
            "forward_peak_increase_bytes": None,
            "backward_peak_bytes": None,
            "backward_peak_increase_bytes": None,
            "memory_method": "unavailable (RuntimeError: profiler returned no phase ranges)",
        }

    def broken(prof):
        raise AttributeError("no kineto_results\nsecond line")

    monkeypatch.setattr(memory, "_profiler_memory_timeline", broken)
    assert memory.cpu_phase_peaks(model, pool)["memory_method"] == "unavailable (AttributeError: no kineto_results"


# ----------------------------------------------------------------------------- storages and rss


def test_storage_bytes_counts_each_storage_once():
    a = torch.zeros(10, dtype=torch.float32)  # 40 bytes
    b = torch.zeros(3, dtype=torch.float64)  # 24 bytes
    view = a[2:5]  # a's storage: counted whole, once
    assert memory._storage_bytes([None, view, b]) == 40 + 24
    assert memory._storage_bytes([a, view, a, b]) == 64
    assert memory._storage_bytes([a, b], "cuda") == 0

    class Opaque:  # a tensor-like without a storage: counted from numel * element_size
        device = torch.device("cpu")

        def untyped_storage(self):
            raise RuntimeError("no storage")

        def numel(self):
            return 6

        def element_size(self):
            return 2

    assert memory._storage_bytes([Opaque(), Opaque(), a]) == 12 + 12 + 40


def test_model_state_bytes_counts_parameters_gradients_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    params = (3 * 2 + 2 + 2 + 2) * 4
    buffers = (2 + 2) * 4 + 8  # running mean and var (float32), num_batches_tracked (int64)
    assert memory.model_state_bytes(model) == params + buffers
    model(torch.randn(4, 3)).sum().backward()
    assert memory.model_state_bytes(model) == 2 * params + buffers
    assert memory.model_state_bytes(model, "cuda") == 0


def test_rss_peak_bytes_units_per_platform(monkeypatch):
    monkeypatch.setattr(memory.resource, "getrusage", lambda who: types.SimpleNamespace(ru_maxrss=3))
    monkeypatch.setattr(memory, "sys", types.SimpleNamespace(platform="linux"))
    assert memory.rss_peak_bytes() == 3 * 1024  # kilobytes on Linux
    monkeypatch.setattr(memory, "sys", types.SimpleNamespace(platform="darwin"))
    assert memory.rss_peak_bytes() == 3  # bytes on macOS

    def fails(who):
        raise OSError("no rusage")

    monkeypatch.setattr(memory.resource, "getrusage", fails)
    assert memory.rss_peak_bytes() is None


# ----------------------------------------------------------------------------- the timing loop


class _Clock:
    """time.perf_counter / monotonic / perf_counter_ns of a fake machine; steps advance it."""

    def __init__(self, start=10.0):
        self.now = start

    def perf_counter(self):
        return self.now

    def monotonic(self):
        return self.now

    def perf_counter_ns(self):
        return round(self.now * 1e9)


def test_cpu_clock_reads_both_phases_in_milliseconds(monkeypatch):
    clock = _Clock(start=1.0)
    monkeypatch.setattr(timing, "time", clock)
    c = timing.CpuClock()
    assert c.read() == (0.0, 0.0)  # nothing marked yet
    for i, t in enumerate((1.0, 1.0025, 1.004, 1.010)):
        clock.now = t
        c.mark(i)
    fwd, bwd = c.read()
    assert fwd == pytest.approx(2.5, abs=1e-9) and bwd == pytest.approx(6.0, abs=1e-9)


@pytest.fixture
def fake_steps(monkeypatch):
    """Every step takes 0.125 s except the first, 0.123456 s; records its arguments."""
    clock = _Clock()
    calls = []

    def iteration(model, pool, clk, check_shape=False):
        calls.append((model, pool, clk, check_shape))
        clock.now += 0.123456 if len(calls) == 1 else 0.125
        return 1.0, 2.0

    monkeypatch.setattr(timing, "time", clock)
    monkeypatch.setattr(timing, "iteration", iteration)
    return clock, calls


def test_warm_up_passes_its_model_pool_and_clock_and_times_the_first_step(fake_steps):
    clock, calls = fake_steps
    facts = {}
    n = timing.warm_up("model", "pool", "clock", timing.TimingConfig(warmup_min=2, warmup_time=0.0), facts=facts)
    assert n == 2 and facts == {"first_step_s": 0.1235}  # rounded to 0.1 ms
    assert calls == [("model", "pool", "clock", True), ("model", "pool", "clock", False)]


def test_warm_up_stops_at_a_deadline_reached_exactly(fake_steps):
    clock, calls = fake_steps
    deadline = clock.now + 0.123456  # reached exactly by the first step
    config = timing.TimingConfig(warmup_min=5, warmup_time=0.0)
    assert timing.warm_up(None, None, None, config, deadline=deadline) == 1


def test_measure_records_warm_up_first_step_and_samples(fake_steps):
    clock, calls = fake_steps
    config = timing.TimingConfig(min_time=0.5, min_samples=3, max_samples=100, warmup_min=2, warmup_time=0.0)
    s = timing.measure("model", "pool", "cpu", config)
    assert (s.warmup_iterations, s.first_step_s) == (2, 0.1235)
    assert s.forward_ms == [1.0] * 4 and s.backward_ms == [2.0] * 4 and s.measured_seconds == 0.5
    assert s.cut_short is None
    assert all(call[:2] == ("model", "pool") for call in calls)


def test_measure_over_budget_raises_with_the_samples_taken(fake_steps):
    clock, calls = fake_steps
    config = timing.TimingConfig(min_time=10.0, min_samples=5, max_samples=100, warmup_min=2, warmup_time=0.0)
    # two warm-up steps, then the deadline passes after two measured steps
    deadline = clock.now + 0.123456 + 0.125 + 0.25
    with pytest.raises(timing.BudgetExceeded) as info:
        timing.measure(None, None, "cpu", config, deadline=deadline)
    assert str(info.value) == "exceeded the per-row time budget after 2 warm-up and 2 of 5 measured iterations"
    assert info.value.forward_ms == [1.0, 1.0] and info.value.backward_ms == [2.0, 2.0]


def test_measure_stops_warming_up_at_the_deadline(fake_steps):
    clock, calls = fake_steps
    config = timing.TimingConfig(min_time=10.0, min_samples=5, max_samples=100, warmup_min=10, warmup_time=10.0)
    deadline = clock.now + 0.123456 + 0.125 + 0.125  # reached exactly by the third warm-up step
    with pytest.raises(timing.BudgetExceeded) as info:
        timing.measure(None, None, "cpu", config, deadline=deadline)
    assert str(info.value) == "exceeded the per-row time budget after 3 warm-up and 0 of 5 measured iterations"
    assert len(calls) == 3


def test_budget_exceeded_and_timing_config_records():
    e = timing.BudgetExceeded("over", [1.0], [2.0])
    assert (str(e), e.forward_ms, e.backward_ms) == ("over", [1.0], [2.0])
    assert timing.TimingConfig(min_time=0.5, min_samples=3, max_samples=7, warmup_time=0.1, warmup_min=1).to_dict() == {
        "min_time": 0.5,
        "min_samples": 3,
        "max_samples": 7,
        "warmup_time": 0.1,
        "warmup_min": 1,
    }


def test_iteration_checks_the_shape_only_when_asked_and_names_both():
    pool = DataPool(Workload((3, 2), 4), "cpu")
    wrong = nn.Linear(3, 5)  # the workload expects 2 outputs
    with pytest.raises(timing.BadOutputShape) as info:
        timing.iteration(wrong, pool, timing.CpuClock(), check_shape=True)
    assert str(info.value) == "model output has shape (4, 5), the workload expects (4, 2)"
    with pytest.warns(UserWarning), pytest.raises(RuntimeError):  # unchecked, the loss fails (5 vs 2)
        timing.iteration(wrong, pool, timing.CpuClock())

    class Nan(nn.Module):
        def forward(self, x):
            return (x[:, :2] * float("nan")).requires_grad_()

    with pytest.raises(timing.NonFiniteOutput) as info:
        timing.iteration(Nan(), pool, timing.CpuClock())
    assert str(info.value) == "the loss is not finite (NaN or Inf in the model's output)"
