"""Tests written against surviving mutants (make mutate) of the harness's modules: exact values
worked out by hand, boundaries (exactly at a threshold or tolerance), and the paths no other
fast test runs (interleaved and A/B scheduling on fake workers, install with a fake pip/git)."""

import math
import subprocess

import pytest
import torch

from kanbench import ab, allocator, cross_hardware, flops, install, interleave, leaderboard, matching, sanity, sources, sweep
from kanbench.baseline import BASELINE
from kanbench.records import ResultsDocument, RowResult
from kanbench.runner import RowJob
from kanbench.timing import TimingConfig
from kanbench.workload import Workload

W = Workload((2, 3, 1), 4)


# ----------------------------------------------------------------------------- flops


def test_flops_by_hand():
    # MLP [3, 4, 2], relu: 2*3*4 + 1*4 (hidden activation) + 2*4*2 (no activation after the last layer)
    assert flops.mlp([3, 4, 2]) == 24 + 4 + 16
    assert flops.mlp([3, 4, 2], "silu") == 24 + 20 + 16
    assert flops.mlp([3, 4, 5, 2], "tanh") == 24 + 6 * 4 + 40 + 6 * 5 + 20
    assert flops.mlp([5]) == 0
    # one B-spline layer 2 -> 3, G=5, K=3: bracket = 9*3*(5+4.5) + 10 - 7.5 + 1 = 260
    assert flops.kan_bspline([2, 3]) == 2 * 3 * 260 + 5 * 2 + 2 * 2 * 3
    assert flops.kan_bspline([2, 3], per="input") == 2 * 260 + 5 * 2 + 2 * 2 * (5 + 3 + 1) * 3 + 3
    assert flops.kan_bspline([2, 3], grid_size=3, spline_order=2, shortcut="relu") == 2 * 3 * (9 * 2 * 6 + 6 - 5 + 1) + 2 + 12
    assert flops.kan_bspline([2, 3, 1]) == (2 * 3 * 260 + 10 + 12) + (3 * 260 + 15 + 6)
    with pytest.raises(ValueError, match="per must be 'edge' or 'input', got 'x'"):
        flops.kan_bspline([2, 3], per="x")
    assert flops.kan_rbf([2, 3]) == 2 * 8 * 5 + 10 + 2 * 2 * 9 * 3 + 3
    assert flops.kan_rbf([2, 3, 1], n_centers=4, kernel_flops=2, shortcut="relu") == (
        (2 * 4 * 2 + 2 + 2 * 2 * 5 * 3 + 3) + (3 * 4 * 2 + 3 + 2 * 3 * 5 * 1 + 1)
    )
    assert flops.gflops_per_second(1e6, 100, 2.0) == pytest.approx(50.0, rel=1e-15)


# ----------------------------------------------------------------------------- sanity


def test_sanity_helpers_exactly():
    y = torch.tensor([[1.0, -4.0], [3.0, 0.0]])
    # mean per column (2, -2); largest |y - mean| = 2; largest |y| = 4
    assert sanity._relative_spread(y) == pytest.approx(2 / (4 + 1e-12), rel=1e-12)
    assert sanity._relative_spread(torch.zeros(3, 1)) == 0.0
    assert sanity._short_names(["a", "b", "c", "d"]) == "a, b, c, d"
    assert sanity._short_names(["a", "b", "c", "d", "e", "f"]) == "a, b, c, d and 2 more"
    assert sanity._short_names(["a", "b", "c"], limit=2) == "a, b and 1 more"
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    model[1].weight.requires_grad_(False)
    model[0].weight.grad = torch.zeros(2, 2)
    model[0].bias.grad = torch.tensor([0.0, 1e-30])
    assert sanity._dead_parameters(model) == ["0.weight", "1.bias"]  # 1.weight is frozen; 1.bias has no grad


def test_sanity_report_fields_and_round_trip():
    r = sanity.SanityReport()
    assert (r.status, r.loud, r.failed, r.reason) == ("ok", False, False, "")
    r.warnings += ["w1", "w2"]
    assert r._finish().status == "warn" and r.reason == "w1; w2" and not r.failed
    r.failures.append("f")
    assert r._finish().status == "fail" and r.failed and r.reason == "f"
    d = r.to_dict()
    assert d == {"status": "fail", "loud": False, "failures": ["f"], "warnings": ["w1", "w2"], "notes": []}
    assert sanity.SanityReport.from_dict(d) == r
    assert sanity.SanityReport.from_dict({"status": "warn"}) == sanity.SanityReport(status="warn")
    assert sanity.GRADIENT_TOLERANCE == 0.01 and sanity.CONSTANT_TOLERANCE == 1e-6 and sanity.SCALE_TOLERANCE == 1e-3


class _Scaled(torch.nn.Module):
    """y = c * x @ w with a backward that is ``factor`` times the true one."""

    def __init__(self, factor):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[1.0], [-2.0]]))
        self.factor = factor

    def forward(self, x):
        factor = self.factor

        class Wrong(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                return a.clone()

            @staticmethod
            def backward(ctx, g):
                return g * factor

        return Wrong.apply(x) @ self.w.to(x.dtype)


def test_gradient_error_is_the_relative_error_exactly():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])
    # a linear model: central differences are exact, so the error is |factor - 1| / max(factor, 1)
    assert sanity.gradient_error(_Scaled(1.0), x) == pytest.approx(0.0, abs=1e-9)
    assert sanity.gradient_error(_Scaled(1.5), x) == pytest.approx(0.5 / 1.5, rel=1e-6)
    assert sanity.gradient_error(_Scaled(0.5), x) == pytest.approx(0.5, rel=1e-6)
    # exactly the tolerance still passes the gate: 1.01 is off by 0.01/1.01 < 1%, 1.0102 by 1.0101%
    assert sanity.check(_Scaled(1.01), x, 1).status == "ok"
    r = sanity.check(_Scaled(1.0102), x, 1)
    assert r.failures == ["backward disagrees with the forward: directional derivative off by 1% (finite differences, float64)"]


class _Float32Only(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)

    def forward(self, x):
        if x.dtype != torch.float32:
            raise TypeError("float32 only")
        return self.lin(x)


def test_gradient_check_skipped_with_a_note_when_the_model_cannot_run_in_float64():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])
    assert sanity.gradient_error(_Float32Only(), x) is None
    r = sanity.check(_Float32Only(), x, 1)
    assert (r.status, r.notes) == ("ok", ["float64 gradient check skipped: the model does not run in float64"])


def test_check_messages_and_the_gradients_it_leaves():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])
    model = torch.nn.Linear(2, 1)
    assert sanity.check(model, x, 1).status == "ok"
    assert all(p.grad is None for p in model.parameters())
    r = sanity.check(model, x, 2)
    assert r.failures == ["output shape (3, 1), expected (3, 2)"] and r.loud

    class Raises(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom\nsecond line")

    r = sanity.check(Raises(), x, 1)
    assert (r.failures, r.loud, r.status) == (["forward raised RuntimeError: boom"], True, "fail")

    class Silent(torch.nn.Module):
        def forward(self, x):
            raise KeyError()

    assert sanity.check(Silent(), x, 1).failures == ["forward raised KeyError: "]

    class NotATensor(torch.nn.Module):
        def forward(self, x):
            return [1]

    assert sanity.check(NotATensor(), x, 1).failures == ["output shape list, expected (3, 1)"]
    # one sample: no constant-output and no doubling check
    one = torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(one.weight)
    assert sanity.check(one, x[:1], 1).failures == []


def test_dead_parameter_warning_and_all_dead_failure():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])

    class Unused(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)
            self.spare = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            return self.lin(x)

    r = sanity.check(Unused(), x, 1)
    assert (r.status, r.warnings) == ("warn", ["zero or no gradient for spare"])

    class Detached(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.lin(x).detach() + x.sum(1, keepdim=True) * 0 + x[:, :1]

    r = sanity.check(Detached(), x, 1)
    assert "no trainable parameter gets a gradient" in r.failures


def test_the_doubling_check_at_its_threshold():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4], [0.2, 0.2]])

    class Normalized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.lin(x / x.norm(dim=1, keepdim=True).clamp_min(1e-9))

    r = sanity.check(Normalized(), x, 1)
    assert r.warnings == ["output unchanged when the inputs are doubled (a normalization over the inputs?)"]
    assert sanity.check(torch.nn.Linear(2, 1), x, 1).warnings == []


def test_constant_output_fails():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])

    class Const(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.b = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.b.expand(x.shape[0], 1) + 0 * x[:, :1]

    r = sanity.check(Const(), x, 1)
    assert r.failures[0] == "output constant across inputs (a LayerNorm over out=1?)"


# ----------------------------------------------------------------------------- matching


def test_match_request_parse_exactly():
    P = matching.MatchRequest.parse
    assert P("params") == matching.MatchRequest("params", None)
    assert P(" FLOPS ") == matching.MatchRequest("flops", None)
    assert P("flops=2e3") == matching.MatchRequest("flops", 2000.0)
    for text, msg in [
        ("size", "--match takes params, params=N, flops or flops=N, not 'size'"),
        ("params=x", "--match params=N needs a number, not 'x'"),
        ("params=0", "--match target must be positive, got 0"),
        ("params=-3", "--match target must be positive, got -3"),
    ]:
        with pytest.raises(matching.MatchError) as e:
            P(text)
        assert str(e.value) == msg
    assert P("params=1e-9").target == 1e-9


def test_match_error_and_tolerance_boundary():
    m = matching.Match("a", "params", 100.0, (2, 5, 1), 102.0)
    assert m.error == pytest.approx(0.02) and m.within_tolerance  # exactly 2%: within
    assert not matching.Match("a", "params", 100.0, (2, 5, 1), 102.01).within_tolerance
    assert matching.Match("a", "params", 100.0, (2, 5, 1), 97.0).error == pytest.approx(0.03)
    assert m.to_dict() == {
        "impl": "a",
        "metric": "params",
        "target": 100.0,
        "widths": [2, 5, 1],
        "value": 102.0,
        "options": {},
        "error": 0.02,
    }
    assert matching.Match("a", "p", 3.0, (1,), 4.0).to_dict()["error"] == 0.33333


def test_scaled_widths_rounding():
    assert matching.scaled_widths((4, 100, 50, 1), 20) == (4, 20, 10, 1)
    assert matching.scaled_widths((4, 10, 5, 1), 3) == (4, 3, 2, 1)  # round(1.5) = 2
    assert matching.scaled_widths((4, 10, 1, 1), 3) == (4, 3, 1, 1)  # round(0.3) = 0 -> at least 1
    assert matching.scaled_widths(("2", 7.0), 5) == (2, 7)


def test_search_on_a_known_count():
    count = lambda w: 10.0 * w[1]  # noqa: E731
    assert matching.search((2, 7, 1), 100, count) == ((2, 10, 1), 100.0)
    assert matching.search((2, 7, 1), 104, count) == ((2, 10, 1), 100.0)  # 100 is nearer than 110
    assert matching.search((2, 7, 1), 105, count) == ((2, 10, 1), 100.0)  # a tie: the narrower
    assert matching.search((2, 7, 1), 106, count) == ((2, 11, 1), 110.0)
    assert matching.search((2, 7, 1), 5, count) == ((2, 2, 1), 20.0)  # never below MIN_HIDDEN
    assert matching.search((2, 7, 1), 30, count) == ((2, 3, 1), 30.0)
    assert matching.search((3, 1), 5, lambda w: 42.0) == ((3, 1), 42.0)
    calls = []
    matching.search((2, 7, 1), 1000, lambda w: calls.append(w[1]) or 10.0 * w[1])
    assert len(calls) == len(set(calls))  # cached
    assert matching.search((2, 7, 1), 10 * matching.MAX_HIDDEN, count)[0] == (2, matching.MAX_HIDDEN, 1)
    with pytest.raises(matching.MatchError, match=f"no width up to {matching.MAX_HIDDEN} reaches 2e\\+06"):
        matching.search((2, 7, 1), 2e6, count)


class _Spec:
    def __init__(self, name="toy", flops_fn=None, fail_at=None):
        self.name = name
        self.flops = flops_fn
        self.fail_at = fail_at

    def build(self, widths, device=None, dtype=None, **options):
        if self.fail_at is not None and widths[1] >= self.fail_at:
            raise RuntimeError("too wide")
        scale = options.get("scale", 1)
        return torch.nn.Linear(widths[0], widths[1] * scale, dtype=dtype, device=device)


class _Registry:
    def __init__(self, specs):
        self.specs = specs

    def get(self, name):
        return type("Impl", (), {"spec": self.specs.get(name)})()


def test_counter_match_and_match_all():
    spec = _Spec(flops_fn=lambda w, **o: 7 * w[1] * o.get("k", 1))
    assert matching.trainable_parameters(spec, (2, 5, 1)) == 2 * 5 + 5
    assert matching.trainable_parameters(spec, (2, 5, 1), {"scale": 2}) == 2 * 10 + 10
    assert matching.counter(spec, "params")((2, 4, 1)) == 12.0
    assert matching.counter(spec, "flops", {"k": 3})((2, 4, 1)) == 84.0
    with pytest.raises(matching.MatchError, match="^toy has no FLOPs model$"):
        matching.counter(_Spec(), "flops")
    m = matching.match(spec, (2, 7, 1), 70, "flops")
    assert (m.impl, m.metric, m.target, m.widths, m.value) == ("toy", "flops", 70.0, (2, 10, 1), 70.0)
    reg = _Registry({matching.DEFAULT_REFERENCE: _Spec(), "toy": spec, "plain": _Spec("plain"), "wide": _Spec("wide", fail_at=8)})
    assert matching.default_target(reg, (2, 7, 1), "params") == 21.0
    matches, unmatched = matching.match_all(reg, ["toy", "plain", "wide"], (2, 7, 1), matching.MatchRequest("flops", 70))
    assert set(matches) == {"toy"} and matches["toy"].widths == (2, 10, 1)
    assert unmatched == {"plain": "plain has no FLOPs model", "wide": "wide has no FLOPs model"}
    matches, unmatched = matching.match_all(reg, ["plain", "wide"], (2, 7, 1), matching.MatchRequest("params"))
    assert matches["plain"].target == 21.0 and matches["plain"].widths == (2, 7, 1)
    assert unmatched == {"wide": "matching failed (RuntimeError: too wide)"}
    with pytest.raises(matching.MatchError, match="the reference implementation splines-better_kan could not be loaded"):
        matching.default_target(_Registry({}), (2, 7, 1), "params")


# ----------------------------------------------------------------------------- leaderboard


def _row(impl, fwd=None, bwd=None, **kw):
    kw.setdefault("workload", {"widths": [2, 3, 1], "batch": 4, "dtype": "float32"})
    return RowResult(impl=impl, device="cpu", forward_ms=fwd, backward_ms=bwd, **kw)


def test_leaderboard_cells_exactly():
    assert leaderboard._fb(_row("a", 1.0, 2.5)) == 3.5
    assert leaderboard._fb(_row("a", 1.0)) == math.inf and leaderboard._fb(_row("a", None, 1.0)) == math.inf
    assert [leaderboard._ms(v) for v in (None, 0.12345, 1.0, 99.994, 100.0, 1234.5)] == [
        "-",
        "0.123",
        "1.00",
        "99.99",
        "100",
        "1234",
    ]
    assert leaderboard._flops(None) == "-" and leaderboard._flops(0) == "-"
    assert (
        leaderboard._flops(999_999) == "1000.0 k" and leaderboard._flops(1e6) == "1.00 M" and leaderboard._flops(1500) == "1.5 k"
    )
    r = _row("a", 2.0, 1.0, flops_per_sample=1e6)
    assert leaderboard._gflops(r) == "2.00"  # 1e6 * 4 / 2e-3 / 1e9
    assert (
        leaderboard._gflops(_row("a", 2.0, 1.0)) == "-" and leaderboard._gflops(_row("a", None, 1.0, flops_per_sample=1.0)) == "-"
    )
    assert leaderboard._gflops(_row("a", 2.0, 1.0, flops_per_sample=1e6, workload={})) == "0.00"
    assert leaderboard._sanity(_row("a")) == "-"
    assert leaderboard._sanity(_row("a", sanity={"status": "ok"})) == "ok"
    assert leaderboard._sanity(_row("a", sanity={"status": "warn", "warnings": ["w"]})) == "warn: w"
    assert leaderboard._sanity(_row("a", sanity={"status": "fail", "failures": ["f"]})) == "FAIL: f"
    assert leaderboard._rmse(_row("a")) == "-"
    assert leaderboard._rmse(_row("a", fit={"test_rmse": 0.012345})) == "0.0123"
    assert leaderboard._rmse(_row("a", fit={"error": "x", "error_kind": "diverged"})) == "(diverged)"
    assert leaderboard._rmse(_row("a", fit={"error": "x"})) == "(failed)"


def test_leaderboard_ratio_and_order():
    doc = ResultsDocument(machine={}, config={})
    mlp = _row(BASELINE, 1.0, 1.0)
    fast = _row("fast", 1.0, 2.0)
    broken = _row("broken", 0.5, 0.5).fail("sanity", "bad")
    untimed = _row("untimed").fail("crash", "boom")
    doc.results = [untimed, fast, broken, mlp]
    assert leaderboard.ratio_to_mlp(doc, fast) == 1.5
    assert leaderboard.ratio_to_mlp(doc, broken) == 0.5  # flagged but timed: still compared
    assert leaderboard.ratio_to_mlp(doc, untimed) is None
    assert leaderboard.ratio_to_mlp(ResultsDocument(machine={}, config={}), fast) is None
    lines = [l for l in leaderboard.table(doc, doc.rows()).splitlines() if l.startswith("| ")][1:]
    cells = [[c.strip() for c in l.strip("|").split("|")] for l in lines]
    assert [(c[0], c[1], c[7]) for c in cells] == [
        ("1", "broken", "0.50x"),
        ("2", BASELINE, "1.00x"),
        ("3", "fast", "1.50x"),
        ("-", "untimed", "-"),
    ]
    text = leaderboard.table(doc, doc.rows(), accuracy={"fast": "rank 1.0/2"})
    assert "rank 1.0/2" in text and text.endswith("- broken: bad\n- untimed: boom")


# ----------------------------------------------------------------------------- sweep


def test_sweep_parse_exactly():
    assert sweep.parse_axis("batch", None) == []
    assert sweep.parse_axis("batch", " 64, 8 ,,16") == [8, 16, 64]
    assert sweep.parse_axis("compile", "ON,off") == [True, False]
    assert sweep.parse_axis("compile", "1,false") == [True, False]
    assert sweep.parse_axis("dtype", "float64,bfloat16") == ["float64", "bfloat16"]
    for axis, text, msg in [
        ("batch", " , ", "--batch is empty"),
        ("width", "0", "--width needs positive integers, got '0'"),
        ("grid", "a", "--grid needs positive integers, got 'a'"),
        ("compile", "maybe", "--compile takes off,on; got 'maybe'"),
        ("batch", "8,8", "--batch repeats a value: '8,8'"),
        ("compile", "on,true", "--compile repeats a value: 'on,true'"),
        ("speed", "1", "unknown axis 'speed'"),
    ]:
        with pytest.raises(sweep.SweepError) as e:
            sweep.parse_axis(axis, text)
        assert str(e.value) == msg
    assert sweep.parse_axis("batch", "1") == [1]
    assert sweep.parse_shard(None) == (0, 1) and sweep.parse_shard("") == (0, 1)
    assert sweep.parse_shard("0/1") == (0, 1) and sweep.parse_shard("2/3") == (2, 3)
    for bad, msg in [
        ("3/3", "--shard 3/3: need 0 <= i < n"),
        ("-1/3", "--shard -1/3: need 0 <= i < n"),
        ("0/0", "--shard 0/0: need 0 <= i < n"),
        ("1", "--shard takes i/n (e.g. 0/4), got '1'"),
    ]:
        with pytest.raises(sweep.SweepError) as e:
            sweep.parse_shard(bad)
        assert str(e.value) == msg


def test_sweep_plan_tags_and_keys():
    base = Workload((2, 5, 1), 32, preset="default")
    pts = sweep.plan(
        ["k"], ["cpu"], base, {"grid": [5, 10], "width": [4], "compile": [False, True], "dtype": ["float64"]}, lambda n: True
    )
    tags = [[(t["axis"], t["value"]) for t in p.tags] for p in pts]
    assert tags == [
        [("base", None), ("grid", 5), ("compile", "off")],
        [("width", 4)],
        [("grid", 10)],
        [("compile", "on")],
        [("dtype", "float64")],
    ]
    assert pts[2].options == {"grid_size": 10} and pts[0].options == {}
    assert pts[1].workload.widths == (4, 4, 1) and pts[1].workload.preset is None
    assert pts[3].compile is True and pts[4].workload.dtype == "float64"
    assert pts[0].key == ("k", "cpu", (2, 5, 1), 32, "float32", (), False)
    assert sweep.plan(["k"], ["cpu"], base, {"grid": [7]}, lambda n: False)[0].tags == [{"axis": "base", "value": None}]
    assert sweep.plan(["k"], ["cpu"], base, {"grid": [7]}, lambda n: True, base_grid=7)[0].tags == [
        {"axis": "base", "value": None},
        {"axis": "grid", "value": 7},
    ]


def test_sweep_skips_after_oom_and_unsupported_points():
    base = Workload((2, 5, 1), 8)
    pts = sweep.plan(["k"], ["cpu"], base, {"batch": [8, 16, 32, 64]}, lambda n: False)
    assert [[t["value"] for t in p.tags] for p in pts] == [[None, 8], [16], [32], [64]]
    measured, written, shown = [], [], []

    def measure(job):
        measured.append(job.workload.batch)
        rec = RowResult(impl=job.impl, device=job.device, workload=job.workload.to_dict(), forward_ms=1.0, backward_ms=2.0)
        return rec.fail("oom", "out of memory") if job.workload.batch == 16 else rec

    doc = ResultsDocument(machine={}, config={})
    sweep.run(
        pts,
        doc,
        lambda d: written.append(len(d.results)),
        measure,
        TimingConfig(),
        budget_s=9.0,
        progress=lambda i, n, eta, p, r: shown.append((i, n)),
        batch_size=2,
    )
    assert measured == [8, 16]
    assert [r.error_kind for r in doc.results] == [None, "oom", "skipped", "skipped"]
    assert doc.results[2].error == "skipped: batch=16 already ran out of memory"
    assert written == [2, 4, 4] and doc.complete and shown == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert doc.results[1].sweep == [{"axis": "batch", "value": 16}]
    assert sweep._oom_skip(pts[3], {("k", "cpu", "batch"): 64}) is None  # not larger than the limit
    assert sweep._oom_skip(pts[3], {("k", "cpu", "batch"): 63}) == "skipped: batch=63 already ran out of memory"
    assert sweep.dtype_supported("float32", "cpu") is None and sweep.dtype_supported("bfloat16", "cpu") is None


def test_sweep_axis_rows_and_crossings_by_hand():
    def rec(impl, batch, f, b, flops_per_sample=None, **kw):
        return RowResult(
            impl=impl,
            device="cpu",
            workload={"widths": [2, 1], "batch": batch, "dtype": "float32"},
            forward_ms=f,
            backward_ms=b,
            sweep=[{"axis": "batch", "value": batch}],
            flops_per_sample=flops_per_sample,
            **kw,
        )

    doc = ResultsDocument(machine={}, config={})
    doc.results = [
        rec(BASELINE, 8, 1.0, 1.0),
        rec(BASELINE, 64, 2.0, 2.0),
        rec("k", 8, 1.0, 0.6, 1e6),
        rec("k", 64, 3.0, 3.0),
        rec("broken", 8, 1.0, 1.0, error="x"),
    ]
    rows = sweep.axis_rows([doc], "batch")
    assert [(r.impl, r.value, r.ratio) for r in rows] == [
        ("broken", 8, None),
        ("k", 8, 0.8),
        ("k", 64, 1.5),
        (BASELINE, 8, 1.0),
        (BASELINE, 64, 1.0),
    ]
    assert rows[1].gflops == pytest.approx(1e6 * 8 / 1e-3 / 1e9) and rows[2].gflops is None
    assert sweep.axis_rows([doc], "width") == []
    # log-interpolated: ratio 0.8 at 8, 1.5 at 64 -> t = ln 0.8 / (ln 0.8 - ln 1.5)
    t = math.log(0.8) / (math.log(0.8) - math.log(1.5))
    assert sweep.crossings(rows) == {("k", "cpu"): pytest.approx(math.exp(math.log(8) + t * math.log(8)), rel=1e-12)}
    P = lambda impl, v, r: sweep.AxisPoint(impl, "cpu", v, None, ratio=r)  # noqa: E731
    assert sweep.crossings([P("k", 1, 2.0), P("k", 4, 0.5), P("k", 16, 2.0)]) == {("k", "cpu"): pytest.approx(2.0)}
    assert sweep.crossings([P("k", 1, 0.5), P("k", 2, 0.9)]) == {}
    # a ratio of exactly 1 between the two sides is the crossing; touching 1 without crossing is none
    assert sweep.crossings([P("k", 8, 0.8), P("k", 16, 1.0), P("k", 32, 1.2)]) == {("k", "cpu"): 16}
    assert sweep.crossings([P("k", 8, 1.2), P("k", 16, 1.0), P("k", 24, 1.0), P("k", 32, 0.5)]) == {("k", "cpu"): 16}
    assert sweep.crossings([P("k", 8, 0.8), P("k", 16, 1.0), P("k", 32, 0.9)]) == {}
    assert sweep.crossings([P("k", 8, 1.0), P("k", 16, 1.5)]) == {}
    assert sweep.crossings([P("k", 1, 0.5), P("k", 2, None), P(BASELINE, 1, 0.5), P(BASELINE, 2, 2.0)]) == {}
    from kanbench import axes

    assert axes._sort_value(3) == (0, 3) and axes._sort_value("on") == (1, "on") and axes._sort_value(None) == (1, "None")


# ----------------------------------------------------------------------------- allocator


def test_allocator_choice_and_labels():
    assert allocator._mib(2**20) == "1 MiB" and allocator._mib(2**30 - 1) == "1024 MiB" and allocator._mib(2**30) == "1 GiB"
    assert allocator._mib(3 * 2**30) == "3 GiB"
    U = allocator.user_choice
    assert U({}) is None
    assert U({"KANBENCH_MALLOC": " System "}) == "system default (KANBENCH_MALLOC=system)"
    assert U({"MALLOC_TRIM_THRESHOLD_": "5", "MALLOC_MMAP_THRESHOLD_": "7"}) == (
        "as set in the environment (MALLOC_MMAP_THRESHOLD_=7, MALLOC_TRIM_THRESHOLD_=5)"
    )
    assert U({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}) == (
        "as set in the environment (GLIBC_TUNABLES=glibc.malloc.trim_threshold=1)"
    )
    assert U({"GLIBC_TUNABLES": "glibc.pthread.x=1"}) is None
    assert (
        U({"LD_PRELOAD": "/usr/lib/libjemalloc.so:/x/libfoo.so /y/libtcmalloc.so"}) == "preloaded libjemalloc.so libtcmalloc.so"
    )
    assert U({"LD_PRELOAD": "/x/libfoo.so"}) is None


def test_keep_freed_memory_paths(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "user_choice", lambda env=None: None)
    monkeypatch.setattr(allocator, "_glibc_mallopt", lambda: None)
    assert allocator.keep_freed_memory() == "system default (not glibc)" == allocator.setting()
    monkeypatch.setattr(allocator, "_glibc_mallopt", lambda: lambda p, v: calls.append((p, v)) or 0)
    assert allocator.keep_freed_memory() == "system default (mallopt refused the mmap threshold)"
    assert calls == [(allocator.M_MMAP_THRESHOLD, allocator.KEEP_BYTES), (allocator.M_MMAP_THRESHOLD, allocator.GLIBC_CAP_BYTES)]
    calls.clear()
    monkeypatch.setattr(
        allocator,
        "_glibc_mallopt",
        lambda: lambda p, v: calls.append((p, v)) or int(v == allocator.GLIBC_CAP_BYTES or p == allocator.M_TRIM_THRESHOLD),
    )
    text = allocator.keep_freed_memory()
    assert calls == [
        (allocator.M_MMAP_THRESHOLD, allocator.KEEP_BYTES),
        (allocator.M_MMAP_THRESHOLD, allocator.GLIBC_CAP_BYTES),
        (allocator.M_TRIM_THRESHOLD, allocator.KEEP_BYTES),
    ]
    assert text == (
        f"glibc, freed memory kept (mmap threshold {allocator._mib(allocator.GLIBC_CAP_BYTES)}, "
        f"trim threshold {allocator._mib(allocator.KEEP_BYTES)})"
    )
    monkeypatch.setattr(allocator, "user_choice", lambda env=None: "mine")
    assert allocator.keep_freed_memory() == "mine" == allocator.setting()
    monkeypatch.setattr(allocator, "_setting", None)
    assert allocator.setting() == "mine"
    monkeypatch.setattr(allocator, "user_choice", lambda env=None: None)
    assert allocator.setting() == "system default"
    assert isinstance(allocator.minor_faults(), int)


# ----------------------------------------------------------------------------- install and sources


class _Proc:
    def __init__(self, returncode=0, stdout="", stderr=""):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def test_install_helpers_with_a_fake_pip_and_vcs(monkeypatch, tmp_path):
    assert (
        install._last_line("a\n  b  \n\n") == "b"
        and install._last_line("") == "no output"
        and install._last_line(None) == "no output"
    )
    runs = []

    def fake_run(cmd, **kw):
        runs.append(cmd)
        if cmd[0] == "git":
            return _Proc(0 if "ok" in cmd else 1, stdout=" out \n", stderr="fatal: first\nfatal: last\n")
        constraints = cmd[cmd.index("-c") + 1]
        runs.append(open(constraints).read())
        return _Proc(0 if "good" in cmd else 1, stderr="ERROR: x\nERROR: no such package\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(install.shutil, "which", lambda name: "/usr/bin/git")
    assert install._git("ok", cwd=tmp_path) == "out"
    with pytest.raises(install.InstallError, match="^fatal: last$"):
        install._git("bad")
    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    with pytest.raises(install.InstallError, match=r"^git is not installed \(needed to fetch the public implementations\)$"):
        install._git("ok")
    runs.clear()
    install.pip_install([])
    assert runs == []
    install.pip_install(["good"], no_deps=True)
    assert runs[0][-2:] == ["--no-deps", "good"] and runs[0][1:8] == [
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-q",
        "-c",
        runs[0][7],
    ]
    assert runs[1] == f"torch=={torch.__version__}\n"
    runs.clear()
    install.pip_install(["good", "two"])
    assert "--no-deps" not in runs[0] and runs[0][-2:] == ["good", "two"]
    with pytest.raises(install.InstallError) as e:
        install.pip_install(["bad", "pkg"])
    assert str(e.value) == "pip install bad pkg failed: ERROR: no such package"
    with pytest.raises(install.InstallError, match="^unknown source 'nope'; known: .*, all$"):
        install.install("nope")


def test_install_pypi_and_checkout_dispatch(monkeypatch, tmp_path):
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path))
    pypi = next(s for s in sources.SOURCES.values() if s.kind == "pypi")
    got = []
    monkeypatch.setattr(install, "pip_install", lambda reqs, no_deps=False: got.append((list(reqs), no_deps)))
    monkeypatch.setattr(sources, "installed", lambda name: None)
    with pytest.raises(install.InstallError) as e:
        install.install(pypi.name)
    assert str(e.value) == f"{pypi.pypi} installed but its distribution is not visible to this Python"
    assert got == [([pypi.pypi], pypi.no_deps), (list(pypi.deps), False)]
    got.clear()
    marker = sources.Installed(pypi.name, "pypi", "1", "PyPI")
    monkeypatch.setattr(sources, "installed", lambda name: marker)
    assert install.install(pypi.name, from_="/x.whl") is marker and got[0] == (["/x.whl"], pypi.no_deps)
    checkout = next(s for s in sources.SOURCES.values() if s.kind == "checkout")
    monkeypatch.setattr(install, "checkout", lambda source, from_=None: ("checkout", source.name, from_))
    assert install.install(checkout.name, "/src") == ("checkout", checkout.name, "/src")


def test_sources_paths_and_records(monkeypatch, tmp_path):
    monkeypatch.delenv("KANBENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.home() == tmp_path / "xdg" / "kanbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert sources.home() == sources.Path.home() / ".cache" / "kanbench"
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path / "h"))
    assert sources.home() == tmp_path / "h"
    assert sources.checkout_dir("x") == tmp_path / "h" / "sources" / "x"
    s = sources.Source("n", "o/r", "MIT", rev="0123456789abcdef", date="2024-01-02")
    assert s.url == "https://github.com/o/r.git" and s.pinned == "o/r@0123456 (2024-01-02)"
    assert sources.Source("n", "o/r", "MIT", kind="pypi", pypi="n==1").pinned == "n==1"
    name = next(k for k, v in sources.SOURCES.items() if v.kind == "checkout")
    assert sources.installed(name) is None
    assert sources.checkout_missing(name) == f"not installed (run: kanbench install {name})"
    rec = sources.Installed(name, "checkout", "abc", "here", path=str(tmp_path / "gone"), licence="MIT")
    sources.write_record(rec)
    assert sources.installed(name) is None  # its checkout is not there
    sources.checkout_dir(name).mkdir(parents=True)
    moved = sources.installed(name)
    assert moved.path == str(sources.checkout_dir(name)) and moved.revision == "abc" and sources.checkout_missing(name) is None
    sources.write_record(sources.Installed(name, "pypi", "abc", "here", path=str(tmp_path / "gone")))
    assert sources.installed(name) is None  # only a checkout is looked for beside the record
    sources._record_path(name).write_text("{not json")
    assert sources.installed(name) is None
    pypi = next(s for s in sources.SOURCES.values() if s.kind == "pypi")
    monkeypatch.setattr(
        sources.importlib.metadata if hasattr(sources, "importlib") else __import__("importlib.metadata").metadata,
        "version",
        lambda dist: "9.9" if dist == pypi.pypi.split("==")[0] else (_ for _ in ()).throw(KeyError),
    )
    got = sources.installed(pypi.name)
    assert (got.name, got.kind, got.revision, got.origin, got.licence) == (pypi.name, "pypi", "9.9", "PyPI", pypi.licence)


# ----------------------------------------------------------------------------- interleave (fake workers)


class _FakeWorker:
    """A ServeWorker stand-in: replies from a script, logging every call."""

    log: list = []
    chunks: dict = {}  # impl -> list of replies (popped); default: a fixed chunk
    hello: dict = {}  # impl -> hello reply or an exception

    def __init__(self, job, directory, tag):
        self.job, self.tag = job, tag
        _FakeWorker.log.append(("start", job.impl, tag, job.sanity))

    def read(self, timeout):
        _FakeWorker.log.append(("read", self.job.impl, timeout))
        h = _FakeWorker.hello.get(self.job.impl, {"ready": True, "record": {"trainable_params": 7, "sanity": {"status": "ok"}}})
        if isinstance(h, Exception):
            raise h
        return h

    def request(self, message, timeout):
        _FakeWorker.log.append((message["cmd"], self.job.impl, self.tag))
        if message["cmd"] == "memory":
            return {"memory": {"backward_peak_increase_bytes": 123}}
        script = _FakeWorker.chunks.get(self.job.impl)
        if script:
            reply = script.pop(0)
            if isinstance(reply, BaseException):
                raise reply
            return reply
        return {"forward_ms": [1.0, 2.0, 3.0], "backward_ms": [4.0, 6.0, 8.0], "minor_faults": 3}

    def ask_to_quit(self):
        _FakeWorker.log.append(("quit", self.job.impl, self.tag))

    def close(self):
        _FakeWorker.log.append(("close", self.job.impl, self.tag))


@pytest.fixture
def fake_workers(monkeypatch):
    _FakeWorker.log, _FakeWorker.chunks, _FakeWorker.hello = [], {}, {}
    monkeypatch.setattr(interleave, "ServeWorker", _FakeWorker)
    monkeypatch.setattr(ab, "ServeWorker", _FakeWorker)
    return _FakeWorker


def _job(impl, **kw):
    kw.setdefault("budget_s", None)
    return RowJob(impl=impl, device="cpu", workload=W, **kw)


def test_interleave_config_and_schedule():
    C = interleave.InterleaveConfig
    assert [interleave._rounds_of(g, C(rounds=7, processes=3)) for g in range(3)] == [3, 2, 2]
    assert [interleave._rounds_of(g, C(rounds=6, processes=3)) for g in range(3)] == [2, 2, 2]
    assert [interleave._order(["A", "B", "C"], r) for r in range(4)] == [
        ["A", "B", "C"],
        ["A", "C", "B"],
        ["C", "A", "B"],
        ["C", "B", "A"],
    ]
    assert interleave._order([], 3) == []
    for kw, msg in [
        ({"rounds": 0}, "rounds, processes and max_live must be at least 1"),
        ({"processes": 0}, "rounds, processes and max_live must be at least 1"),
        ({"max_live": 0}, "rounds, processes and max_live must be at least 1"),
        ({"rounds": 2, "processes": 3}, "--processes 3 is more than --rounds 2: every process needs a round"),
        ({"chunk_time": -0.1}, "--chunk-time must not be negative"),
        ({"chunk_time": float("nan")}, "--chunk-time must not be negative"),
    ]:
        with pytest.raises(ValueError) as e:
            C(**kw)
        assert str(e.value) == msg
    C(rounds=1, processes=1, max_live=1, chunk_time=0)
    assert C().to_dict() == {
        "rounds": 12,
        "chunk_time": 0.1,
        "chunk_min_samples": 3,
        "processes": 3,
        "max_live": 8,
        "memory": True,
    }
    assert interleave._timeout(_job("a")) is None and interleave._timeout(_job("a", budget_s=8.0)) == 8.0 + 15.0 + 2.0


def test_measure_batch_on_fake_workers(fake_workers):
    fake_workers.chunks["b"] = [
        {"forward_ms": [10.0], "backward_ms": [20.0], "minor_faults": 1},
        {"forward_ms": [30.0], "backward_ms": [40.0], "minor_faults": None},
        {"forward_ms": [50.0], "backward_ms": [60.0]},
    ]
    config = interleave.InterleaveConfig(rounds=3, processes=2, chunk_time=0.25, chunk_min_samples=4)
    gens, ready = [], []
    a, b = interleave.measure_batch(
        [_job("a"), _job("b")],
        config,
        on_generation=lambda g, n: gens.append((g, n)),
        on_ready=lambda g, n: ready.append((g, n, len(gens))),
    )
    assert gens == [(1, 2), (2, 2)]
    assert ready == [(1, 2, 0), (2, 2, 1)]  # each generation is ready before it is done
    starts = [e for e in fake_workers.log if e[0] == "start"]
    assert starts == [
        ("start", "a", "g0-r0", True),
        ("start", "b", "g0-r1", True),
        ("start", "a", "g1-r0", False),
        ("start", "b", "g1-r1", False),
    ]
    chunks = [(e[1], e[2]) for e in fake_workers.log if e[0] == "chunk"]
    # generation 0: rounds 0, 1 (A B; rotated to B A and reversed: A B); generation 1: round 0 (A B)
    assert chunks == [("a", "g0-r0"), ("b", "g0-r1"), ("a", "g0-r0"), ("b", "g0-r1"), ("a", "g1-r0"), ("b", "g1-r1")]
    assert [e for e in fake_workers.log if e[0] == "memory"] == [("memory", "a", "g1-r0"), ("memory", "b", "g1-r1")]
    assert a.forward_ms == 2.0 and a.backward_ms == 6.0 and a.n_samples == 9 and a.workers == 2
    assert a.rounds == {"forward_ms": [2.0, 2.0, 2.0], "backward_ms": [6.0, 6.0, 6.0]}
    assert a.extra["processes"] == {"forward_ms": [2.0, 2.0], "backward_ms": [6.0, 6.0]}
    assert a.minor_faults_per_step == 1.0 and a.trainable_params == 7 and a.backward_peak_increase_bytes == 123
    assert b.rounds == {"forward_ms": [10.0, 30.0, 50.0], "backward_ms": [20.0, 40.0, 60.0]}
    assert b.extra["processes"] == {"forward_ms": [20.0, 50.0], "backward_ms": [30.0, 60.0]}
    assert b.minor_faults_per_step is None and b.forward_ms == 30.0 and b.wall_s >= 0


def test_measure_batch_failures_on_fake_workers(fake_workers):
    fake_workers.hello["dead"] = TimeoutError("no reply")
    fake_workers.chunks["flaky"] = [{"error": "nan in the output", "error_kind": "nonfinite"}]
    fake_workers.chunks["gone"] = [RuntimeError("pipe closed")]
    fake_workers.chunks["plain"] = [{"error": "x"}]
    config = interleave.InterleaveConfig(rounds=2, processes=1, memory=False)
    jobs = [_job("dead", budget_s=4.0), _job("flaky"), _job("gone", budget_s=4.0), _job("plain"), _job("ok", memory=False)]
    dead, flaky, gone, plain, ok = interleave.measure_batch(jobs, config)
    assert (dead.error_kind, dead.error) == ("budget", "worker failed during start-up and warm-up: no reply (budget 4 s)")
    assert (flaky.error_kind, flaky.error) == ("nonfinite", "nan in the output")
    assert (gone.error_kind, gone.error) == ("crash", "worker failed during a chunk: pipe closed")
    assert (plain.error_kind, plain.error) == ("crash", "x")
    assert ok.n_samples == 6 and not ok.failed
    assert [e[1] for e in fake_workers.log if e[0] == "chunk"] == ["flaky", "gone", "plain", "ok", "ok"]
    assert not [e for e in fake_workers.log if e[0] == "memory"]
    assert [e[1] for e in fake_workers.log if e[0] == "read"] == ["dead", "flaky", "gone", "plain", "ok"]
    assert [e for e in fake_workers.log if e[0] == "read"][0][2] == 4.0 + 15.0 + 1.0


def test_memory_pass_failure_and_companions(fake_workers):
    class Broken(_FakeWorker):
        def request(self, message, timeout):
            if message["cmd"] == "memory":
                raise OSError("gone")
            return super().request(message, timeout)

    interleave.ServeWorker = Broken
    (rec,) = interleave.measure_batch([_job("a")], interleave.InterleaveConfig(rounds=1, processes=1))
    assert rec.memory_method == "unavailable (gone)"
    interleave.ServeWorker = _FakeWorker
    jobs = [_job("a"), _job("b"), _job(BASELINE), _job("c", options={"grid_size": 3})]
    assert interleave._companions(jobs[:2], jobs) == [jobs[2]]
    assert interleave._companions(jobs[1:3], jobs) == []
    assert interleave._companions(jobs[3:], jobs) == []
    written = []
    out = interleave.measure_jobs(jobs, interleave.InterleaveConfig(rounds=2, processes=1, max_live=2), on_batch=written.append)
    assert [r.impl for r in out] == ["a", "b", BASELINE, "c"] and [len(w) for w in written] == [2, 2]
    assert out[0].extra["baseline_rounds"] == {"forward_ms": [2.0, 2.0], "backward_ms": [6.0, 6.0]}
    assert "baseline_rounds" not in out[2].extra and "baseline_rounds" not in out[3].extra
    assert interleave._job_key(jobs[3]) == interleave._record_key(out[3])


def test_execute_writes_the_document(fake_workers, tmp_path):
    doc = ResultsDocument(machine={}, config={})
    seen = []
    interleave.execute(
        [_job("a"), _job("b")],
        interleave.InterleaveConfig(rounds=1, processes=1),
        doc,
        tmp_path / "r.json",
        progress=lambda i, n, rec: seen.append((i, n, rec.impl)),
    )
    assert doc.complete and seen == [(1, 2, "a"), (2, 2, "b")]
    assert ResultsDocument.from_dict(__import__("json").loads((tmp_path / "r.json").read_text())).complete


def test_ctrl_c_keeps_what_was_measured(fake_workers):
    fake_workers.chunks["b"] = [{"forward_ms": [1.0], "backward_ms": [1.0]}, KeyboardInterrupt()]
    with pytest.raises(interleave.BatchInterrupted) as e:
        interleave.measure_batch([_job("a"), _job("b"), _job("c")], interleave.InterleaveConfig(rounds=2, processes=1))
    kept = e.value.records
    # round 0: a b c; round 1: reversed rotation (a c b) -- interrupted at b; every row measured something
    assert [r.impl for r in kept] == ["a", "b", "c"]
    assert all(r.note == "interrupted: samples of the rounds measured before Ctrl-C" for r in kept)
    assert [r.n_samples for r in kept] == [6, 1, 6]


# ----------------------------------------------------------------------------- ab (fake workers)


def test_a_b_plan_checks():
    P = lambda **kw: ab.ABPlan(impls=["a"], devices=["cpu"], workload=W, **kw)  # noqa: E731
    for kw, msg in [
        ({"rounds": 1}, "--rounds must be at least 2"),
        ({"chunk_time": 0}, "--chunk-time must be positive"),
        ({"workers": 0}, "--workers must be between 1 and --rounds"),
        ({"rounds": 3, "workers": 4}, "--workers must be between 1 and --rounds"),
    ]:
        with pytest.raises(ValueError) as e:
            P(**kw)
        assert str(e.value) == msg
    P(rounds=2, workers=2)
    P(rounds=5).check_test(0.05, "paired")  # needs floor(log2 20) + 1 = 5
    with pytest.raises(ValueError) as e:
        P(rounds=4).check_test(0.05, "paired")
    assert str(e.value) == (
        "--rounds 4 is too few for the paired test at alpha 0.05: its smallest p-value is 2^-rounds; "
        "use --rounds 5 or more (or --test mw)"
    )
    P(rounds=2, workers=1).check_test(0.05, "mw")
    P(rounds=2, workers=1).check_test(1.0, "paired")
    with pytest.raises(ValueError, match="use --rounds 3 or more"):
        P(rounds=2, workers=1).check_test(0.25, "paired")  # floor(log2 4) + 1 = 3
    P(rounds=2, workers=1).check_test(0.5, "paired")


def test_a_b_measure_pair_on_fake_workers(fake_workers, tmp_path):
    side_a = ab.Side("base", tmp_path / "a", ["/x"])
    side_b = ab.Side("new", tmp_path / "b")
    assert side_a.dirs(["/c"]) == [str(tmp_path / "a"), "/x", "/c"]
    plan = ab.ABPlan(impls=["k"], devices=["cpu"], workload=W, rounds=4, workers=2, chunk_time=0.3, memory=True)
    job = ab._job(plan, side_a, "k", "cpu")
    assert (job.budget_s, job.memory, job.builtin, job.extra_dirs) == (None, True, False, (str(tmp_path / "a"), "/x"))
    base, new = ab.measure_pair(plan, side_a, side_b, "k", "cpu", str(tmp_path))
    chunks = [e[2] for e in fake_workers.log if e[0] == "chunk"]
    assert chunks == [
        "base0-k-cpu",
        "new0-k-cpu",
        "new1-k-cpu",
        "base1-k-cpu",
        "base0-k-cpu",
        "new0-k-cpu",
        "new1-k-cpu",
        "base1-k-cpu",
    ]
    for rec in (base, new):
        assert rec.rounds == {"forward_ms": [2.0] * 4, "backward_ms": [6.0] * 4} and rec.workers == 2
        assert rec.n_samples == 12 and rec.minor_faults_per_step == 1.0 and rec.backward_peak_increase_bytes == 123
    assert len([e for e in fake_workers.log if e[0] == "close"]) == 4
    fake_workers.log.clear()
    fake_workers.hello["k"] = {"ready": False, "record": {"error": "cannot build", "error_kind": "crash"}}
    base, new = ab.measure_pair(plan, side_a, side_b, "k", "cpu", str(tmp_path))
    assert base.error == "cannot build" and not [e for e in fake_workers.log if e[0] == "chunk"]
    fake_workers.hello.clear()
    fake_workers.chunks["k"] = [RuntimeError("pipe"), {"error": "nan"}]
    base, new = ab.measure_pair(plan, side_a, side_b, "k", "cpu", str(tmp_path))
    assert (base.error, new.error) == ("worker failed in round 1: pipe", "nan")
    fake_workers.hello["k"] = OSError("no start")
    base, _ = ab.measure_pair(plan, side_a, side_b, "k", "cpu", str(tmp_path))
    assert base.error == "worker did not start: no start"


def test_a_b_run_documents(fake_workers, tmp_path):
    plan = ab.ABPlan(impls=["k", "j"], devices=["cpu"], workload=W, rounds=2, workers=1)
    seen = []
    base, new = ab.run(
        plan,
        ab.Side("b", tmp_path),
        ab.Side("n", tmp_path),
        {"torch": {"threads": 3}},
        progress=lambda i, n, b, w: seen.append((i, n, b.impl, w.impl)),
    )
    assert seen == [(1, 2, "k", "k"), (2, 2, "j", "j")]
    assert base.complete and new.complete and (base.name, new.name) == ("b", "n")
    assert base.config["ab"] == {"base": "b", "new": "n", "rounds": 2, "chunk_time": 0.2, "workers": 1}
    assert base.config["side"] == "base" and new.config["side"] == "new" and base.config["threads"] == 3
    assert base.config["isolation"] == "ab-interleaved"
    assert [r.impl for r in new.results] == ["k", "j"]


def test_a_b_sides_from_a_directory_a_ref_and_errors(monkeypatch, tmp_path):
    repo = tmp_path / "repo"
    (repo / "implementations").mkdir(parents=True)
    (repo / "implementations" / "x.py").write_text("X = 1\n")
    env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, env={**__import__("os").environ, **env})
    monkeypatch.setattr(ab, "source_root", lambda: repo)
    extra = tmp_path / "extra"
    extra.mkdir()
    side = ab.resolve_side(None, [str(extra)])
    assert (side.name, side.implementations, side.extra_dirs) == (
        "working tree",
        repo / "implementations",
        [str(extra.resolve())],
    )
    side = ab.resolve_side(str(repo))
    assert (side.name, side.implementations, side._tmp) == (str(repo), (repo / "implementations").resolve(), None)
    with pytest.raises(ab.ABError) as e:
        ab.resolve_side(str(extra), role="--base")
    assert str(e.value) == f"--base {extra}: no implementations/ directory in it"
    with pytest.raises(ab.ABError) as e:
        ab.resolve_side("no-such-ref", role="--new")
    assert str(e.value) == f"--new 'no-such-ref' is neither a directory nor a git ref of {repo}"
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    side = ab.resolve_side("HEAD", [str(extra)])
    assert side.name == f"HEAD ({commit[:8]})" and (side.implementations / "x.py").read_text() == "X = 1\n"
    assert side.extra_dirs == [str(extra.resolve())]
    assert side.implementations == ab.Path(side._tmp) / "implementations"
    tmp = side._tmp
    side.cleanup()
    assert side._tmp is None and not ab.Path(tmp).exists()
    side.cleanup()
    (repo / "implementations" / "x.py").unlink()
    (repo / "other").mkdir()
    (repo / "other" / "y").write_text("y")
    for cmd in (["add", "-A"], ["commit", "-qm", "two"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, env={**__import__("os").environ, **env})
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    with pytest.raises(ab.NothingToCompare) as e:  # a ref without implementations/: exit 3, not a bad argument
        ab.resolve_side("HEAD", role="--base")
    assert str(e.value) == f"--base HEAD ({head[:8]}) has no implementations/ directory: nothing to compare"
    out = ab._git(repo, "rev-parse", "HEAD")
    assert out.stdout.strip() != commit and isinstance(out.stdout, str)
    assert isinstance(ab._git(repo, "rev-parse", "HEAD", binary=True).stdout, bytes)


def test_sweep_progress_line_exactly():
    import io

    out = io.StringIO()
    show = sweep.progress_bar(out)
    p = sweep.Point("k", "cpu", W, tags=[{"axis": "base", "value": None}, {"axis": "batch", "value": 8}])
    show(1, 4, 125.0, p, RowResult(impl="k", device="cpu", forward_ms=1.23456, backward_ms=20.0))
    show(
        4,
        4,
        0.0,
        sweep.Point("k", "cpu", W, tags=[{"axis": "base", "value": None}]),
        RowResult(impl="k", device="cpu").fail("oom", "out of memory"),
    )
    assert out.getvalue().splitlines() == [
        "[#####...............] 1/4 ETA 2m05s  k-cpu (batch=8): fwd 1.23 ms bwd 20 ms",
        "[####################] 4/4 ETA 0m00s  k-cpu (base): oom: out of memory",
    ]


def test_allocator_and_install_helpers_unpatched():
    import sys as _sys

    mallopt = allocator._glibc_mallopt()
    if _sys.platform.startswith("linux") and mallopt is not None:
        assert mallopt.argtypes == (__import__("ctypes").c_int, __import__("ctypes").c_int)
        assert mallopt.restype is __import__("ctypes").c_int
    assert install._torch_constraint() == f"torch=={torch.__version__}\n"


def test_sweep_run_builds_each_job_and_reports_progress(monkeypatch):
    base = Workload((2, 5, 1), 8)
    pts = sweep.plan(["k"], ["cpu"], base, {"dtype": ["float64", "bfloat16"], "batch": [16]}, lambda n: False)
    jobs, writes, shown = [], [], []

    def measure(job):
        jobs.append(job)
        return RowResult(impl=job.impl, device=job.device, workload=job.workload.to_dict(), forward_ms=1.0, backward_ms=2.0)

    monkeypatch.setattr(
        sweep, "dtype_supported", lambda dtype, device: f"no {dtype} on {device}" if dtype == "bfloat16" else None
    )
    clock = iter([100.0, 103.0, 104.0, 110.0, 112.0])
    monkeypatch.setattr(sweep.time, "monotonic", lambda: next(clock))
    timing = TimingConfig(min_time=0.5)
    doc = ResultsDocument(machine={}, config={})
    sweep.run(
        pts,
        doc,
        lambda d: writes.append(len(d.results)),
        measure,
        timing,
        threads=3,
        extra_dirs=["/x"],
        budget_s=7.0,
        progress=lambda i, n, eta, p, r: shown.append((i, n, eta, p.tags[-1]["axis"], r.impl)),
    )
    assert [(j.impl, j.device, j.workload.batch, j.workload.dtype, j.timing, j.threads, j.extra_dirs, j.budget_s, j.options, j.compile)
            for j in jobs] == [("k", "cpu", 8, "float32", timing, 3, ("/x",), 7.0, {}, False),
                               ("k", "cpu", 16, "float32", timing, 3, ("/x",), 7.0, {}, False),
                               ("k", "cpu", 8, "float64", timing, 3, ("/x",), 7.0, {}, False)]  # fmt: skip
    assert writes == [1, 2, 3, 4, 4]  # one batch at a time (batch_size 1), then complete
    bad = doc.results[3]
    assert (bad.error_kind, bad.error, bad.impl, bad.workload["dtype"]) == ("unsupported", "no bfloat16 on cpu", "k", "bfloat16")
    # eta = elapsed / done * (left): 3/1*3, 4/2*2, 10/3*1, 12/4*0
    assert shown == [(1, 4, 9.0, "base", "k"), (2, 4, 4.0, "batch", "k"), (3, 4, 10 / 3, "dtype", "k"), (4, 4, 0.0, "dtype", "k")]


def test_sweep_oom_limit_is_the_smallest_in_a_batch():
    base = Workload((2, 5, 1), 8)
    pts = sweep.plan(["k"], ["cpu"], base, {"batch": [16, 32, 64]}, lambda n: False)

    def measure(job):
        rec = RowResult(impl=job.impl, device=job.device, workload=job.workload.to_dict(), forward_ms=1.0, backward_ms=1.0)
        return rec.fail("oom", "out of memory") if job.workload.batch >= 16 else rec

    doc = ResultsDocument(machine={}, config={})
    sweep.run(pts, doc, lambda d: None, measure, TimingConfig(), batch_size=3)
    assert [r.error_kind for r in doc.results] == [None, "oom", "oom", "skipped"]
    assert doc.results[3].error == "skipped: batch=16 already ran out of memory"


def test_sweep_dtype_support_off_the_cpu(monkeypatch):
    assert sweep.dtype_supported("float64", "cuda") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sweep.dtype_supported("bfloat16", "cuda:0") == "CUDA is not available"
    assert sweep.dtype_supported("bfloat16", "cpu") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    asked = []
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: asked.append(including_emulation) or including_emulation
    )
    assert sweep.dtype_supported("bfloat16", "cuda") == "this GPU has no native bfloat16 support (only emulation)" and asked == [
        False
    ]

    def old(*args, **kw):
        if kw:
            raise TypeError("no including_emulation")
        return True

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", old)
    assert sweep.dtype_supported("bfloat16", "cuda") is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **kw: False)
    assert sweep.dtype_supported("bfloat16", "cuda") == "this GPU has no native bfloat16 support (only emulation)"
    real = torch.ones
    monkeypatch.setattr(
        torch,
        "ones",
        lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("no")) if kw.get("dtype") is torch.bfloat16 else real(*a, **kw),
    )
    assert sweep.dtype_supported("bfloat16", "cpu") == "bfloat16 does not run on this CPU (RuntimeError)"


def test_sweep_axis_rows_keys_and_defaults():
    def rec(impl, tags, f, b, compile=False, workload=None, **kw):
        return RowResult(
            impl=impl,
            device="cpu",
            workload=workload or {"widths": [2, 1], "batch": 8, "dtype": "float32"},
            forward_ms=f,
            backward_ms=b,
            sweep=tags,
            compile=compile,
            **kw,
        )

    doc = ResultsDocument(machine={}, config={})
    doc.results = [
        rec(BASELINE, [{"axis": "base", "value": None}, {"axis": "compile", "value": "off"}], 1.0, 1.0),
        rec(BASELINE, [{"axis": "compile", "value": "on"}], 2.0, 2.0, compile=True),
        rec("k", [{"axis": "base", "value": None}, {"axis": "compile", "value": "off"}], 3.0, 3.0),
        rec(
            "k",
            [{"axis": "compile", "value": "on"}],
            2.0,
            2.0,
            compile=True,
            flops_per_sample=1e6,
            workload={"widths": [2, 1], "dtype": "float32"},
        ),
    ]
    rows = [r for r in sweep.axis_rows([doc], "compile") if r.impl == "k"]
    assert [(r.value, r.ratio) for r in rows] == [("off", 3.0), ("on", None)]  # "on" lacks a batch: no MLP of its workload
    assert rows[0].record is doc.results[2] and rows[1].gflops == pytest.approx(1e6 * 1 / 2e-3 / 1e9)
    doc.results = [rec("k", [{"axis": "batch", "value": v}], 1.0, 1.0) for v in (64, 8, 16)]
    assert [r.value for r in sweep.axis_rows([doc], "batch")] == [8, 16, 64]
    assert sweep.parse_axis("compile", "0,1") == [False, True]


def test_sweep_plan_every_axis_keeps_impl_device_and_compile():
    base = Workload((2, 5, 1), 32, preset="p")
    pts = sweep.plan(["k"], ["cuda"], base, {"batch": [8], "width": [4], "dtype": ["float64"]}, lambda n: False)
    assert [(p.impl, p.device, p.compile, p.workload.preset) for p in pts] == [("k", "cuda", False, "p")] + [
        ("k", "cuda", False, None)
    ] * 3


def test_interleave_messages_timeouts_and_workdir(fake_workers, monkeypatch):
    calls = []

    class Recorder(_FakeWorker):
        def __init__(self, job, directory, tag):
            calls.append(("init", directory is not None and __import__("os").path.isdir(directory), tag))
            super().__init__(job, directory, tag)

        def read(self, timeout):
            calls.append(("read", timeout))
            if self.tag.startswith("g0"):
                return {"record": {"trainable_params": 1, "sanity": {"status": "warn"}}}
            return {"record": {"n_samples": 0}} if self.tag.startswith("g1") else {"ready": True}

        def request(self, message, timeout):
            calls.append((message, timeout))
            return super().request(message, timeout)

    monkeypatch.setattr(interleave, "ServeWorker", Recorder)
    config = interleave.InterleaveConfig(rounds=3, processes=3, chunk_time=0.3, chunk_min_samples=7)
    (rec,) = interleave.measure_batch([_job("a")], config)
    assert calls[0] == ("init", True, "g0-r0") and calls[1] == ("read", 1e9)
    assert calls[2] == ({"cmd": "chunk", "min_time": 0.3, "min_samples": 7}, 1e9)
    assert ({"cmd": "memory"}, 1e9) in calls
    # the first generation's sanity report is kept; later hellos may lack it, or lack a record
    assert rec.sanity == {"status": "warn"} and rec.trainable_params == 1
    calls.clear()
    (rec,) = interleave.measure_batch([_job("a", budget_s=4.0)], interleave.InterleaveConfig(rounds=1, processes=1))
    assert [c[1] for c in calls if c[0] != "init"] == [20.0, 20.0, 20.0]
    assert rec.wall_s == round(rec.wall_s, 3) and 0 <= rec.wall_s < 5


def test_interleave_wall_time_and_close(fake_workers, monkeypatch):
    row = interleave._Row(_job("a"), RowResult(impl="a", device="cpu"), started=100.0)
    row.forward, row.backward, row.faults = [1.0, 3.0], [2.0, 4.0], 5
    row.round_f, row.round_b, row.proc_f, row.proc_b = [2.0], [3.0], [2.0], [3.0]
    with monkeypatch.context() as mp:
        mp.setattr(interleave.time, "monotonic", lambda: 150.123456)
        interleave._finish(row, 4)
    rec = row.record
    assert rec.wall_s == 50.123 and rec.workers == 4 and rec.minor_faults_per_step == 2.5 and rec.forward_ms == 2.0
    assert rec.rounds == {"forward_ms": [2.0], "backward_ms": [3.0]} and rec.extra["processes"] == {
        "forward_ms": [2.0],
        "backward_ms": [3.0],
    }
    empty = interleave._Row(_job("a"), RowResult(impl="a", device="cpu"), started=100.0)
    interleave._finish(empty, 4)
    assert empty.record.workers is None and empty.record.rounds is None
    interleave.measure_batch([_job("a")], interleave.InterleaveConfig(rounds=1, processes=1))
    assert [e[0] for e in fake_workers.log if e[0] in ("quit", "close")] == ["quit", "close"]
    rows = [
        interleave._Row(_job("a"), RowResult(impl="a", device="cpu")),
        interleave._Row(_job("b"), RowResult(impl="b", device="cpu")),
    ]
    rows[1].worker = _FakeWorker(_job("b"), "/tmp", "t")
    fake_workers.log.clear()
    interleave._close(rows)
    assert fake_workers.log == [("quit", "b", "t"), ("close", "b", "t")] and rows[1].worker is None


def test_interleave_memory_skipped_only_for_rows_that_do_not_want_it(fake_workers):
    fake_workers.chunks["bad"] = [{"error": "x"}]
    recs = interleave.measure_batch(
        [_job("bad"), _job("nomem", memory=False), _job("ok")], interleave.InterleaveConfig(rounds=1, processes=1)
    )
    assert [e[1] for e in fake_workers.log if e[0] == "memory"] == ["ok"] and recs[2].backward_peak_increase_bytes == 123


def test_interleave_stops_generations_when_every_row_failed(fake_workers):
    fake_workers.hello["a"] = RuntimeError("dead")
    gens = []
    (rec,) = interleave.measure_batch(
        [_job("a")], interleave.InterleaveConfig(rounds=2, processes=2), on_generation=lambda g, n: gens.append(g)
    )
    assert rec.error == "worker failed during start-up and warm-up: dead" and gens == [1]
    assert [e[0] for e in fake_workers.log].count("start") == 1


def test_execute_and_measure_jobs_on_ctrl_c(fake_workers, tmp_path, monkeypatch):
    from kanbench.runner import Interrupted

    fake_workers.chunks["c"] = [KeyboardInterrupt()]
    doc = ResultsDocument(machine={}, config={})
    sig = []
    monkeypatch.setattr(interleave, "ignore_sigint", lambda: sig.append("ignore") or "handler")
    monkeypatch.setattr(interleave, "restore_sigint", lambda previous: sig.append(("restore", previous)))
    gens = []
    with pytest.raises(Interrupted) as e:
        interleave.execute(
            [_job("a"), _job("b"), _job("c")],
            interleave.InterleaveConfig(rounds=1, processes=1, max_live=2),
            doc,
            tmp_path / "r.json",
            on_generation=lambda g, n: gens.append((g, n)),
        )
    assert e.value.document is doc and e.value.path == tmp_path / "r.json"
    assert doc.interrupted is True and not doc.complete and gens == [(1, 1)]
    # measure_batch, then execute: SIGINT ignored during each clean-up, and given back
    assert sig == ["ignore", ("restore", "handler"), "ignore", ("restore", "handler")]
    assert [r.impl for r in doc.results] == ["a", "b"]  # "c" was interrupted before it measured anything
    import json as _json

    assert _json.loads((tmp_path / "r.json").read_text())["interrupted"] is True
    fake_workers.chunks["c"] = [{"forward_ms": [1.0], "backward_ms": [1.0]}, KeyboardInterrupt()]
    written = []
    with pytest.raises(interleave.BatchInterrupted) as e:
        interleave.measure_jobs(
            [_job("a"), _job("b"), _job("c")],
            interleave.InterleaveConfig(rounds=2, processes=1, max_live=2),
            on_batch=written.append,
        )
    assert [r.impl for r in e.value.records] == ["a", "b", "c"] and [len(w) for w in written] == [2, 1]
    assert str(interleave.BatchInterrupted([])) == "interrupted"


def test_companions_only_when_rows_are_split_and_keys_match(fake_workers):
    mlp_c = _job(BASELINE, compile=True)
    jobs = [_job("a", compile=True), _job("b"), mlp_c]
    assert interleave._job_key(jobs[0]) != interleave._job_key(jobs[1])
    assert interleave._companions(jobs[:2], jobs) == [mlp_c]
    assert interleave._companions([jobs[1]], jobs) == []  # the MLP was compiled, this row is not
    w2 = Workload((3, 1), 4)
    pair = [
        _job("a"),
        RowJob(impl="d", device="cpu", workload=w2),
        _job(BASELINE),
        RowJob(impl=BASELINE, device="cpu", workload=w2),
    ]
    assert interleave._companions(pair[:2], pair) == pair[2:]
    two = [_job("a"), _job("b"), _job(BASELINE)]
    assert interleave._companions(two[:2], two + [_job("c")]) == [two[2]]
    assert interleave._companions([_job("a"), _job("a2")], [_job("a"), _job("a2"), _job(BASELINE)]) == [two[2]]
    # everything fits in one batch: no companion
    out = interleave.measure_jobs(two, interleave.InterleaveConfig(rounds=1, processes=1, max_live=3))
    assert [r.impl for r in out] == ["a", "b", BASELINE] and all("baseline_rounds" not in r.extra for r in out)
    # exactly max_live + 1 jobs: the companion is measured with the first batch
    out = interleave.measure_jobs(two + [_job("c")], interleave.InterleaveConfig(rounds=1, processes=1, max_live=3))
    assert "baseline_rounds" not in out[0].extra  # the MLP is in its own batch
    out = interleave.measure_jobs(
        [_job("a"), _job("b"), _job("c"), _job(BASELINE)], interleave.InterleaveConfig(rounds=1, processes=1, max_live=3)
    )
    assert out[0].extra["baseline_rounds"] == {"forward_ms": [2.0], "backward_ms": [6.0]} and [r.impl for r in out] == [
        "a",
        "b",
        "c",
        BASELINE,
    ]
    failed = RowResult(impl=BASELINE, device="cpu", workload=W.to_dict(), rounds={"forward_ms": [1.0]}).fail("crash", "x")
    rows = interleave._attach_companions([RowResult(impl="a", device="cpu", workload=W.to_dict()), failed], [_job(BASELINE)])
    assert [r.impl for r in rows] == ["a"] and "baseline_rounds" not in rows[0].extra
    empty = RowResult(impl=BASELINE, device="cpu", workload=W.to_dict())
    rows = interleave._attach_companions([RowResult(impl="a", device="cpu", workload=W.to_dict()), empty], [_job(BASELINE)])
    assert "baseline_rounds" not in rows[0].extra


def test_sigint_helpers():
    import signal

    previous = interleave.ignore_sigint()
    try:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        interleave.restore_sigint(previous)
    assert signal.getsignal(signal.SIGINT) is previous
    interleave.restore_sigint(None)
    assert signal.getsignal(signal.SIGINT) is previous


def test_leaderboard_render_titles_families_accuracy_and_skipped():
    from kanbench.records import Skipped

    doc = ResultsDocument(machine={"cpu": {"model": "X"}, "torch": {"threads": 2}}, config={"match": "params"})
    doc.results = [
        _row(BASELINE, 1.0, 1.0, match={"target": 12345.6}, backward_peak_increase_bytes=2048, family="MLP"),
        _row("k", 2.0, 2.0, family="fam"),
    ]
    doc.skipped = [Skipped("gone", "not installed"), Skipped("old", "too old")]
    text = leaderboard.render(doc, families={"k": "B-spline"}, accuracy={"k": "rank 1.0/2"})
    assert text.splitlines()[0].endswith("-- matched params, target 12,346")
    assert text.endswith("Not installed here:\n- gone: not installed\n- old: too old")
    cells = [[c.strip() for c in l.strip("|").split("|")] for l in text.splitlines() if l.startswith("| ")][1:]
    assert [c[2] for c in cells] == ["MLP", "B-spline"] and [c[13] for c in cells] == ["-", "rank 1.0/2"]
    assert cells[0][8] == "2.00 KB" and cells[1][8] == "-"
    doc.results[0].match = None
    assert leaderboard.render(doc).splitlines()[0].endswith("-- matched params")
    doc.config = {}
    doc.skipped = []
    assert "matched" not in leaderboard.render(doc) and "Not installed" not in leaderboard.render(doc)
    two = ResultsDocument(machine={}, config={})
    two.results = [
        _row("k", 1.0, 1.0),
        RowResult(impl="k", device="cpu", workload={"widths": [3, 1], "batch": 4}, forward_ms=1.0, backward_ms=1.0),
    ]
    assert leaderboard.render(two).count("### ") == 2 and "\n\n### " in leaderboard.render(two)


def test_leaderboard_orders_by_ratio_then_time():
    doc = ResultsDocument(machine={}, config={})
    doc.results = [_row("slow", 3.0, 3.0), _row("fast", 1.0, 1.5)]  # no MLP: by f+b
    lines = [l for l in leaderboard.table(doc, doc.rows()).splitlines() if l.startswith("| ")][1:]
    assert [l.split("|")[2].strip() for l in lines] == ["fast", "slow"]
    doc.results.append(_row(BASELINE, 10.0, 10.0))
    doc.results.append(
        _row("other", 0.1, 0.1, workload={"widths": [9, 1], "batch": 4})
    )  # no MLP of its workload: after the ratios
    lines = [l for l in leaderboard.table(doc, doc.rows()).splitlines() if l.startswith("| ")][1:]
    assert [l.split("|")[2].strip() for l in lines] == ["fast", "slow", BASELINE, "other"]


def test_history_of_cpu_and_gpu_rows_of_one_host():
    from tests.test_compare import doc, record, typed

    runs = [typed(doc([record("mlp", 1.0, 2.0), record("mlp", 0.5, 0.5, device="cuda")], gpus=["NVIDIA H200"],
                      ts=f"2026-11-2{i}T10:00:00+00:00", commit=f"{i}" * 40)) for i in (5, 6)]  # fmt: skip
    text = cross_hardware.history_table(runs)
    assert text.count("### ") == 1 and text.startswith("### ") and " on " in text.splitlines()[0]
    title = text.splitlines()[0]
    assert title.endswith(" on " + ", ".join(dict.fromkeys(cross_hardware.frame(runs)["machine"])))
    header = [l for l in text.splitlines() if l.startswith("| implementation")][0]
    assert "5555555 2026-11-25T10:00 gpu" in header and "5555555 2026-11-25T10:00 fwd" in header
    assert "6666666 2026-11-26T10:00 gpu" in header and header.index("5555555") < header.index("6666666")
    cpu_only = [typed(doc([record("mlp", 1.0, 2.0)], ts=f"2026-11-2{i}T10:00:00+00:00", commit="")) for i in (5, 6)]
    header = [l for l in cross_hardware.history_table(cpu_only).splitlines() if l.startswith("| implementation")][0]
    assert "no-git 2026-11-25T10:00" in header and " gpu" not in header
    two = [typed(doc([record("mlp", 1.0, 2.0)], ts="2026-11-25T10:00:00+00:00")),
           typed(doc([record("mlp", 1.0, 2.0)], ts="2026-11-26T10:00:00+00:00"))]  # fmt: skip
    two[1].results[0].workload = {"widths": [3, 1], "batch": 4, "dtype": "float32"}
    assert cross_hardware.history_table(two).count("\n\n### ") == 1
    gpu_only = [typed(doc([record("mlp", 0.5, 0.5, device="cuda")], gpus=["NVIDIA H200"], ts=f"2026-11-2{i}T10:00:00+00:00"))
                for i in (5, 6)]  # fmt: skip
    assert " gpu" not in cross_hardware.history_table(gpu_only)


def test_install_pypi_looks_up_its_own_record(monkeypatch):
    pypi = next(s for s in sources.SOURCES.values() if s.kind == "pypi")
    monkeypatch.setattr(install, "pip_install", lambda reqs, no_deps=False: None)
    asked = []
    monkeypatch.setattr(sources, "installed", lambda name: asked.append(name) or sources.Installed(name, "pypi", "1", "PyPI"))
    assert install.install_pypi(pypi).name == pypi.name and asked == [pypi.name]


def test_matching_passes_options_and_metric_through():
    seen = []

    class Spec:
        name = "s"
        flops = staticmethod(lambda widths, **o: seen.append(("flops", o)) or 10.0 * widths[1])

        def build(self, widths, device=None, dtype=None, **options):
            seen.append(("build", str(device), dtype, options))
            return torch.nn.Linear(widths[0], widths[1] * options.get("k", 1))

    assert matching.trainable_parameters(Spec(), (2, 3, 1), {"k": 2}) == 2 * 6 + 6
    assert seen[-1] == ("build", "cpu", torch.float32, {"k": 2})
    assert matching.counter(Spec(), "params", {"k": 3})((2, 3, 1)) == 2 * 9 + 9
    m = matching.match(Spec(), (2, 7, 1), 27, "params", {"k": 3})
    assert m.value == 27.0 and m.widths == (2, 3, 1)
    reg = _Registry({matching.DEFAULT_REFERENCE: _Spec(flops_fn=lambda w, **o: 5.0 * w[1]), "s": Spec()})
    assert matching.default_target(reg, (2, 7, 1), "flops") == 35.0
    matches, _ = matching.match_all(reg, ["s"], (2, 7, 1), matching.MatchRequest("flops"), {"k": 9})
    assert matches["s"].target == 35.0 and ("flops", {"k": 9}) in seen
    matches, _ = matching.match_all(reg, ["s"], (2, 7, 1), matching.MatchRequest("params", 27.0), {"k": 3})
    assert matches["s"].widths == (2, 3, 1)
    assert matching.search((4, 1), 5, lambda w: float(sum(w))) == ((4, 1), 5.0)
    # the smallest width reaching the target exactly
    assert matching.search((2, 7, 1), 40, lambda w: 10.0 * w[1]) == ((2, 4, 1), 40.0)
    # a plateau at the target: the narrowest width on it
    plateau = lambda w: 50.0 if 5 <= w[1] <= 8 else 10.0 * w[1]  # noqa: E731
    assert matching.search((2, 7, 1), 50, plateau) == ((2, 5, 1), 50.0)


class _ABWorker(_FakeWorker):
    """Records every argument the A/B loop passes."""

    calls: list = []

    def __init__(self, job, directory, tag):
        _ABWorker.calls.append(("init", tag, job.impl, job.device, job.timing, job.threads, job.memory, job.builtin,
                                job.extra_dirs, job.budget_s, __import__("os").path.isdir(directory or "")))  # fmt: skip
        super().__init__(job, directory, tag)

    def read(self, timeout):
        _ABWorker.calls.append(("read", self.tag, timeout))
        return super().read(timeout)

    def request(self, message, timeout):
        _ABWorker.calls.append(("request", self.tag, message, timeout))
        return super().request(message, timeout)


def test_a_b_passes_every_argument(fake_workers, monkeypatch, tmp_path):
    _ABWorker.calls = []
    monkeypatch.setattr(ab, "ServeWorker", _ABWorker)
    timing = TimingConfig(min_time=0.1)
    plan = ab.ABPlan(impls=["k"], devices=["cpu"], workload=W, rounds=2, workers=2, chunk_time=0.3, chunk_min_samples=4,
                     warmup=timing, threads=5, common_dirs=["/c"], memory=True, timeout_s=7.0)  # fmt: skip
    base, new = ab.Side("b", tmp_path / "b"), ab.Side("n", tmp_path / "n", ["/e"])
    brec, nrec = ab.measure_pair(plan, base, new, "k", "cpu", str(tmp_path))
    inits = [c for c in _ABWorker.calls if c[0] == "init"]
    assert inits == [
        ("init", "base0-k-cpu", "k", "cpu", timing, 5, True, False, (str(tmp_path / "b"), "/c"), None, True),
        ("init", "base1-k-cpu", "k", "cpu", timing, 5, True, False, (str(tmp_path / "b"), "/c"), None, True),
        ("init", "new0-k-cpu", "k", "cpu", timing, 5, True, False, (str(tmp_path / "n"), "/e", "/c"), None, True),
        ("init", "new1-k-cpu", "k", "cpu", timing, 5, True, False, (str(tmp_path / "n"), "/e", "/c"), None, True),
    ]
    assert [c for c in _ABWorker.calls if c[0] == "read"] == [
        ("read", t, 7.0) for t in ("base0-k-cpu", "base1-k-cpu", "new0-k-cpu", "new1-k-cpu")
    ]
    requests = [c[1:] for c in _ABWorker.calls if c[0] == "request"]
    chunk = {"cmd": "chunk", "min_time": 0.3, "min_samples": 4}
    assert requests == [("base0-k-cpu", chunk, 7.0), ("new0-k-cpu", chunk, 7.0), ("new1-k-cpu", chunk, 7.0), ("base1-k-cpu", chunk, 7.0),
                        ("base0-k-cpu", {"cmd": "memory"}, 7.0), ("new0-k-cpu", {"cmd": "memory"}, 7.0)]  # fmt: skip
    assert (brec.device, nrec.device, brec.impl) == ("cpu", "cpu", "k")
    assert brec.wall_s == round(brec.wall_s, 3) and 0 <= brec.wall_s < 5


def test_a_b_failures_keep_the_other_side_going(fake_workers, monkeypatch, tmp_path):
    plan = ab.ABPlan(impls=["k"], devices=["cpu"], workload=W, rounds=3, workers=1, memory=True)

    class OneSide(_FakeWorker):
        def request(self, message, timeout):
            if self.tag.startswith("base") and message["cmd"] == "chunk":
                script = OneSide.script
                reply = script.pop(0)
                if isinstance(reply, BaseException):
                    raise reply
                return reply
            if message["cmd"] == "memory" and self.tag.startswith("new"):
                raise OSError("gone")
            return super().request(message, timeout)

    monkeypatch.setattr(ab, "ServeWorker", OneSide)
    OneSide.script = [RuntimeError("pipe")]
    base, new = ab.measure_pair(plan, ab.Side("b", tmp_path), ab.Side("n", tmp_path), "k", "cpu", str(tmp_path))
    assert (base.error_kind, base.error) == ("crash", "worker failed in round 1: pipe")
    assert new.n_samples == 9 and new.memory_method == "unavailable (gone)" and new.rounds["forward_ms"] == [2.0] * 3
    OneSide.script = [{"error": "nan"}]
    base, new = ab.measure_pair(plan, ab.Side("b", tmp_path), ab.Side("n", tmp_path), "k", "cpu", str(tmp_path))
    assert (base.error_kind, base.error) == ("crash", "nan") and new.n_samples == 9
    # a hello that is not ready (the build failed): that side starts no further worker, the other side is measured
    plan2 = ab.ABPlan(impls=["k"], devices=["cpu"], workload=W, rounds=2, workers=2)

    class NotReady(_FakeWorker):
        def read(self, timeout):
            _FakeWorker.log.append(("read", self.job.impl, timeout))
            if self.tag.startswith("base"):
                return {"ready": False, "record": {"error": "no build", "error_kind": "crash"}}
            return {"ready": True}

    monkeypatch.setattr(ab, "ServeWorker", NotReady)
    fake_workers.log.clear()
    base, new = ab.measure_pair(plan2, ab.Side("b", tmp_path), ab.Side("n", tmp_path), "k", "cpu", str(tmp_path))
    assert [e[1:] for e in fake_workers.log if e[0] == "read"] == [("k", 300.0), ("k", 300.0), ("k", 300.0)]
    assert base.error == "no build" and new.n_samples == 6 and new.rounds == {"forward_ms": [2.0, 2.0], "backward_ms": [6.0, 6.0]}

    class Dead(_FakeWorker):
        def read(self, timeout):
            if self.tag == "base0-k-cpu":
                raise OSError("no start")
            return {"ready": True}

    monkeypatch.setattr(ab, "ServeWorker", Dead)
    fake_workers.log.clear()
    base, new = ab.measure_pair(plan2, ab.Side("b", tmp_path), ab.Side("n", tmp_path), "k", "cpu", str(tmp_path))
    assert (base.error_kind, base.error) == ("crash", "worker did not start: no start") and new.n_samples == 6
    assert [e[1] for e in fake_workers.log if e[0] == "chunk"] == ["k"] * 2


def test_a_b_run_config_and_documents(fake_workers, monkeypatch, tmp_path):
    seen = []
    real = ab.measure_pair
    monkeypatch.setattr(
        ab,
        "measure_pair",
        lambda plan, b, n, impl, device, workdir: (
            seen.append((impl, device, __import__("os").path.isdir(workdir))) or real(plan, b, n, impl, device, workdir)
        ),
    )
    plan = ab.ABPlan(
        impls=["k"],
        devices=["cpu", "cuda"],
        workload=W,
        rounds=2,
        workers=1,
        common_dirs=["/c"],
        warmup=TimingConfig(min_time=0.2),
    )
    base, new = ab.run(plan, ab.Side("b", tmp_path / "b"), ab.Side("n", tmp_path / "n"), {})
    assert seen == [("k", "cpu", True), ("k", "cuda", True)]
    assert base.machine == {} and base.config["threads"] is None
    assert base.config["workload"] == W.to_dict() and base.config["timing"] == TimingConfig(min_time=0.2).to_dict()
    assert base.config["devices"] == ["cpu", "cuda"]
    assert base.config["implementations_dirs"] == [str(tmp_path / "b"), "/c"] and new.config["implementations_dirs"] == [
        str(tmp_path / "n"),
        "/c",
    ]
    assert [r.device for r in base.results] == ["cpu", "cuda"] and all(
        isinstance(r, RowResult) for r in base.results + new.results
    )


def test_a_b_check_test_edges_and_cleanup(tmp_path):
    P = lambda **kw: ab.ABPlan(impls=["a"], devices=["cpu"], workload=W, workers=1, **kw)  # noqa: E731
    P(rounds=2).check_test(0.0, "paired")  # no alpha to reach: needs 2 rounds
    P(rounds=2).check_test(1.5, "paired")
    ab.Side("x", tmp_path, _tmp=str(tmp_path / "never-made")).cleanup()  # a missing directory is no error
    with pytest.raises(ab.ABError) as e:
        ab.resolve_side(str(tmp_path))
    assert str(e.value) == f"side {tmp_path}: no implementations/ directory in it"
    (tmp_path / "implementations").mkdir()
    assert ab.resolve_side(str(tmp_path), [str(tmp_path)]).extra_dirs == [str(tmp_path.resolve())]


def test_pip_install_arguments_and_clean_up(monkeypatch):
    seen = []

    def fake_run(cmd, **kw):
        constraints = cmd[cmd.index("-c") + 1]
        seen.append((constraints, kw))
        __import__("os").unlink(constraints)  # pip may not leave it; the clean-up must not mind
        return _Proc(0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    install.pip_install(["x"])
    assert seen[0][0].endswith(".txt") and seen[0][1] == {"capture_output": True, "text": True}


def test_checkout_steps_and_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path))
    source = sources.Source("toy", "o/toy", "MIT", rev="f" * 40, deps=("dep==1",))
    calls, pips, records = [], [], []

    def fake_git(*args, cwd=None):
        calls.append((args, cwd))
        if args[0] == "clone":
            if "bad" in args[3]:
                raise install.InstallError("repository not found")
            tmp_dir = __import__("os").path.dirname(args[4])
            assert cwd is None and __import__("os").path.basename(tmp_dir).startswith(".toy-")
            assert __import__("os").path.dirname(tmp_dir) == str(sources.checkout_dir("toy").parent)  # beside it: one filesystem
            __import__("os").makedirs(args[4])
            return ""
        if args[0] == "checkout" and FAIL[0] == "missing":
            raise install.InstallError("no such commit")
        return "f" * 40

    FAIL = [""]
    monkeypatch.setattr(install, "_git", fake_git)
    monkeypatch.setattr(install, "pip_install", lambda reqs, no_deps=False: pips.append(list(reqs)))
    monkeypatch.setattr(sources, "write_record", lambda rec: records.append(rec))
    rec = install.checkout(source)
    dest = sources.checkout_dir("toy")
    assert calls[0] == (("clone", "--quiet", "--no-checkout", "https://github.com/o/toy.git", calls[0][0][4]), None)
    assert calls[1][0] == ("checkout", "--quiet", "--detach", "f" * 40) and calls[2][0] == ("rev-parse", "HEAD")
    assert (rec.name, rec.kind, rec.revision, rec.origin, rec.path, rec.licence) == (
        "toy",
        "checkout",
        "f" * 40,
        source.url,
        str(dest),
        "MIT",
    )
    assert dest.is_dir() and pips == [["dep==1"]] and records == [rec]
    assert [p.name for p in dest.parent.iterdir()] == ["toy"]  # the temporary clone directory is gone
    rec = install.checkout(source)  # again: the old checkout is replaced
    assert dest.is_dir() and [p.name for p in dest.parent.iterdir()] == ["toy"]
    with pytest.raises(install.InstallError) as e:
        install.checkout(source, from_="/bad/mirror")
    assert str(e.value) == "cannot fetch /bad/mirror: repository not found"
    bad = sources.Source("toy", "o/bad", "MIT", rev="f" * 40)
    with pytest.raises(install.InstallError) as e:
        install.checkout(bad)
    assert str(e.value) == ("cannot fetch https://github.com/o/bad.git: repository not found; "
                            "offline? give a local clone or mirror with --from PATH")  # fmt: skip
    FAIL[0] = "missing"
    with pytest.raises(install.InstallError) as e:
        install.checkout(source, from_="/mirror")
    assert str(e.value) == "/mirror does not contain the pinned revision ffffffffffff"
    assert [p.name for p in dest.parent.iterdir()] == ["toy"]


def test_cross_hardware_frame_exactly():
    wl = {"widths": [2, 1], "batch": 4, "dtype": "float32"}
    doc = ResultsDocument(
        machine={"cpu": {"model": "Zen"}, "torch": {"threads": 2}, "gpus": [{"name": "NVIDIA H200"}]}, config={"threads": 2}
    )
    doc.results = [
        RowResult(impl=BASELINE, device="cpu", workload=wl, forward_ms=1.0, backward_ms=1.0),
        RowResult(impl="k", device="cpu", workload=wl, forward_ms=2.0, backward_ms=4.0, threads=8),
        RowResult(impl="bad", device="cuda:0", workload=wl, forward_ms=5.0, backward_ms=6.0).fail("budget", "over"),
    ]
    df = cross_hardware.frame([doc])
    rows = df.drop(columns=["workload_title"]).to_dict("records")
    assert rows[0] == {"file": 0, "path": "#0", "machine": "Zen (2t)", "host": "?", "timestamp": "", "commit": doc.short_commit,
                       "impl": BASELINE, "device": "cpu", "workload": "2x1-b4-float32", "forward_ms": 1.0, "backward_ms": 1.0,
                       "error": "", "ratio": 1.0}  # fmt: skip
    assert rows[1]["machine"] == "Zen (8t)" and rows[1]["ratio"] == 3.0
    assert rows[2]["machine"] == "H200" and rows[2]["device"] == "cuda" and rows[2]["error"] == "over"
    assert math.isnan(rows[2]["forward_ms"]) and math.isnan(rows[2]["backward_ms"]) and math.isnan(rows[2]["ratio"])
    assert str(df["ratio"].dtype) == "float64"
    doc.path = "/x/run.json"
    doc.machine.update(hostname="h", timestamp="2026")
    again = cross_hardware.frame([doc]).iloc[0]
    assert (again["path"], again["host"], again["timestamp"]) == ("/x/run.json", "h", "2026")
    with pytest.raises(cross_hardware.CrossHardwareError) as e:
        cross_hardware.frame([ResultsDocument(machine={}, config={})])
    assert str(e.value) == "no rows in these files"


class _WrongWhenTraining(torch.nn.Module):
    """A deterministic model whose backward is wrong in training mode only."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([[1.0], [-2.0]]))

    def forward(self, x):
        factor = 2.0 if self.training else 1.0

        class Wrong(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                return a.clone()

            @staticmethod
            def backward(ctx, g):
                return g * factor

        return Wrong.apply(x) @ self.w.to(x.dtype)


def test_a_deterministic_model_is_checked_in_its_own_mode():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])
    assert sanity.gradient_error(_WrongWhenTraining(), x) == pytest.approx(0.5, rel=1e-6)
    assert sanity.gradient_error(_WrongWhenTraining().eval(), x) == pytest.approx(0.0, abs=1e-9)


class _Replay(torch.nn.Module):
    """Returns ``y0`` for the inputs ``x0`` and ``y2`` for ``2 * x0``; one parameter with gradient 1."""

    def __init__(self, x0, y0, y2):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros((), dtype=y0.dtype))
        self.x0, self.y0, self.y2 = x0, y0, y2

    def forward(self, x):
        base = self.y2 if torch.equal(x.to(self.x0.dtype), 2 * self.x0) else self.y0
        return base.to(x.dtype) + (self.w - self.w.detach())


def test_gate_thresholds_exactly():
    x = torch.tensor([[0.1], [0.2], [0.3]], dtype=torch.float64)
    y0 = torch.tensor([[0.0], [0.0], [4.0]], dtype=torch.float64)
    t = sanity.SCALE_TOLERANCE * (float(y0.std()) + 1e-12)
    at = sanity.check(_Replay(x, y0, torch.tensor([[t], [t], [4.0]], dtype=torch.float64)), x, 1)
    assert at.warnings == ["output unchanged when the inputs are doubled (a normalization over the inputs?)"]  # exactly at it
    above = sanity.check(_Replay(x, y0, torch.tensor([[2 * t], [2 * t], [4.0]], dtype=torch.float64)), x, 1)
    assert above.warnings == []
    # a tiny change, far below the spread: still "unchanged"
    small = sanity.check(_Replay(x, y0, torch.tensor([[1e-7], [1e-7], [4.0]], dtype=torch.float64)), x, 1)
    assert small.warnings == ["output unchanged when the inputs are doubled (a normalization over the inputs?)"]
    # two samples are enough to call an output constant
    two = torch.tensor([[0.1], [0.2]], dtype=torch.float64)
    const = sanity.check(_Replay(two, torch.ones(2, 1, dtype=torch.float64), torch.ones(2, 1, dtype=torch.float64)), two, 1)
    assert const.failures[0] == "output constant across inputs (a LayerNorm over out=1?)"


def test_gradient_tolerance_is_inclusive(monkeypatch):
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])
    monkeypatch.setattr(sanity, "gradient_error", lambda model, x, seed=0: sanity.GRADIENT_TOLERANCE)
    assert sanity.check(torch.nn.Linear(2, 1), x, 1).status == "ok"


def test_the_loss_is_against_the_target():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        target = -model(x)  # y + target would vanish: every gradient zero
    assert sanity.check(model, x, 1, target).status == "ok"


# ----------------------------------------------------------------------------- sanity: boundaries and the gradient check's state


def test_relative_spread_exactly():
    # mean 0.5, largest deviation 0.5, scale 1 + 1e-12 (the floor is added, never subtracted)
    assert sanity._relative_spread(torch.tensor([[0.0], [1.0]])) == 0.5 / (1 + 1e-12)
    assert sanity._relative_spread(torch.tensor([[1.0, -4.0], [3.0, 0.0]])) == 2 / (4 + 1e-12)


def test_constant_output_threshold_is_exclusive(monkeypatch):
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0]]))
        model.bias.zero_()
    spread = sanity._relative_spread(model(x).detach().float())
    assert spread == 0.5 / (1 + 1e-12)
    monkeypatch.setattr(sanity, "CONSTANT_TOLERANCE", spread)  # exactly at the tolerance: not constant
    assert "output constant across inputs (a LayerNorm over out=1?)" not in sanity.check(model, x, 1).failures
    monkeypatch.setattr(sanity, "CONSTANT_TOLERANCE", math.nextafter(spread, 1.0))
    assert sanity.check(model, x, 1).failures[0] == "output constant across inputs (a LayerNorm over out=1?)"


class _ScaleFree(torch.nn.Module):
    """y = w * x1 / max|x| + eps * x1: doubling the inputs changes y by eps * x1 only."""

    def __init__(self, eps):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.eps = eps

    def forward(self, x):
        return self.w * x[:, :1] / x.abs().max() + self.eps * x[:, :1]


DOUBLED = "output unchanged when the inputs are doubled (a normalization over the inputs?)"


def test_the_doubling_check_for_one_and_two_samples():
    two = torch.tensor([[1.0, 0.5], [-0.5, 0.25]])
    # two samples: the change (1e-5 * |x1|) is far below 1e-3 of the spread: warned
    assert sanity.check(_ScaleFree(1e-5), two, 1).warnings == [DOUBLED]
    assert sanity.check(_ScaleFree(0.0), two, 1).warnings == [DOUBLED]
    # one sample has no spread: no doubling check (and no constant-output check)
    r = sanity.check(_ScaleFree(0.0), two[:1], 1)
    assert (r.warnings, r.failures) == ([], [])


def test_the_gradient_check_follows_the_target():
    # y = [1, -1] exactly; with target y - 1 the residual is 1 everywhere, so the weight's
    # gradient mean(2 * 1 * x) is 0 (the columns of x have mean 0): a dead weight. mean(y^2)
    # would give it a gradient.
    x = torch.tensor([[1.0, 2.0], [-1.0, -2.0]])
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, 0.25]]))
        model.bias.zero_()
    y = model(x).detach()
    assert y.flatten().tolist() == [1.0, -1.0]
    assert sanity.check(model, x, 1, y - 1).warnings == ["zero or no gradient for weight"]
    assert sanity.check(model, x, 1).warnings == ["zero or no gradient for bias"]  # mean(2 y) = 0


class _Flaky(torch.nn.Module):
    """y = scale * x, plus ``noise`` on every other forward in train mode (randomness that reseeding
    torch does not repeat); ``modes`` logs each forward's mode. Its backward is ``factor`` times off
    in eval mode, so the error tells which mode the check ran in."""

    def __init__(self, scale, noise, factor=1.0):
        super().__init__()
        self.scale, self.noise, self.factor = scale, noise, factor
        self.w = torch.nn.Parameter(torch.ones(1))
        self.calls = 0
        self.modes = []

    def forward(self, x):
        self.calls += 1
        _Flaky.modes.append(self.training)
        if self.training:
            return self.scale * x[:, :1] + self.noise * (self.calls % 2)
        return _Scaled(self.factor).to(x.dtype)(x)[:, :1] * 0 + self.scale * _wrong(x[:, :1], self.factor)


def _wrong(a, factor):
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.clone()

        @staticmethod
        def backward(ctx, g):
            return g * factor

    return Wrong.apply(a)


def _falls_back(model, x):
    _Flaky.modes = []
    err = sanity.gradient_error(model, x)
    return (False in _Flaky.modes), err


def test_the_determinism_check_is_relative_to_the_output():
    x = torch.tensor([[1.0, 0.0], [-0.5, 0.0], [0.25, 0.0]])
    # |y| up to 1000: a change of 1e-7 is 1e-10 of it, below 1e-9: the same function (train mode)
    fell, err = _falls_back(_Flaky(1000.0, 1e-7, factor=2.0), x)
    assert not fell and err is not None and err < 1e-3
    # a change of 1e-5 is 1e-8 of it: eval mode, where the backward is twice the truth
    fell, err = _falls_back(_Flaky(1000.0, 1e-5, factor=2.0), x)
    assert fell and err == pytest.approx(0.5, rel=1e-6)
    # |y| up to 1e-6: a change of 1e-14 is 1e-8 of it: eval mode (not "small in absolute terms")
    fell, err = _falls_back(_Flaky(1e-6, 1e-14, factor=2.0), x)
    assert fell and err == pytest.approx(0.5, rel=1e-6)
    # an output that is exactly 0 and repeats exactly is deterministic
    fell, err = _falls_back(_Flaky(0.0, 0.0, factor=2.0), x)
    assert not fell and err == 0.0  # no derivative anywhere: 0, not 0 / 0


def test_gradient_error_of_a_constant_model_is_zero():
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.b = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.b * torch.ones_like(x[:, :1])

    # (autograd finds no path from the inputs: a zero derivative, not "cannot run in float64")
    assert sanity.gradient_error(Constant(), torch.tensor([[0.1, 0.2], [0.3, 0.4]])) == 0.0

    class RowBias(torch.nn.Module):  # varies across the batch, but not with the inputs
        def __init__(self):
            super().__init__()
            self.b = torch.nn.Parameter(torch.tensor([[1.0], [2.0]]))

        def forward(self, x):
            return self.b + 0 * x.detach()[:, :1]

    r = sanity.check(RowBias(), torch.tensor([[0.1, 0.2], [0.3, 0.4]]), 1)
    assert (r.notes, r.failures) == ([], [])


class _TwoOutputs(torch.nn.Module):
    """y = x @ A with a backward that is exact for the first output and twice the truth for the second."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor([[1.0, 0.5], [-2.0, 3.0]]))

    def forward(self, x):
        y = x @ self.a.to(x.dtype)
        return torch.cat([y[:, :1], _wrong(y[:, 1:], 2.0)], dim=1)


def test_gradient_error_draws_its_directions_from_its_own_float64_generator():
    x = torch.tensor([[0.3, -0.2], [0.1, 0.5], [-0.7, 0.4]])
    gen = torch.Generator(device="cpu").manual_seed(0)
    v = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    w = torch.randn((3, 2), generator=gen, dtype=torch.float64)
    a = torch.tensor([[1.0, 0.5], [-2.0, 3.0]], dtype=torch.float64)
    d = v @ a  # the true directional derivative of each output
    numeric = float((d * w).sum())
    analytic = float((d[:, 0] * w[:, 0]).sum() + 2 * (d[:, 1] * w[:, 1]).sum())
    expected = abs(analytic - numeric) / max(abs(numeric), abs(analytic))
    torch.manual_seed(123)  # the global state is neither used nor changed
    before = torch.random.get_rng_state()
    assert sanity.gradient_error(_TwoOutputs(), x) == pytest.approx(expected, rel=1e-9)
    assert torch.equal(torch.random.get_rng_state(), before)


# ----------------------------------------------------------------------------- survivors of the previous report, one by one


def test_a_b_job_memory_reply_without_figures_and_wall_time(fake_workers, monkeypatch, tmp_path):
    side_a, side_b = ab.Side("base", tmp_path / "a"), ab.Side("new", tmp_path / "b")
    plan = ab.ABPlan(impls=["k"], devices=["cpu"], workload=W, rounds=2, workers=1, memory=False)
    assert ab._job(plan, side_a, "k", "cpu").memory is False
    plan = ab.ABPlan(impls=["k"], devices=["cpu"], workload=W, rounds=2, workers=1, memory=True)

    class NoFigures(_FakeWorker):
        def request(self, message, timeout):
            if message["cmd"] == "memory":
                return {}  # a worker that measured no memory figure
            return super().request(message, timeout)

    monkeypatch.setattr(ab, "ServeWorker", NoFigures)
    clock = iter([10.0, 11.23456, 11.23456])
    monkeypatch.setattr(ab.time, "monotonic", lambda: next(clock))
    base, new = ab.measure_pair(plan, side_a, side_b, "k", "cpu", str(tmp_path))
    assert base.memory_method is None and new.memory_method is None and base.error is None
    assert base.wall_s == 1.235 and new.wall_s == 1.235


def test_interleave_memory_reply_without_figures_and_keys(fake_workers, monkeypatch):
    class NoFigures(_FakeWorker):
        def request(self, message, timeout):
            if message["cmd"] == "memory":
                return {}
            return super().request(message, timeout)

    monkeypatch.setattr(interleave, "ServeWorker", NoFigures)
    (rec,) = interleave.measure_batch([_job("a")], interleave.InterleaveConfig(rounds=1, processes=1))
    assert rec.memory_method is None and rec.error is None and rec.n_samples == 3
    plain, compiled = _job("a"), _job("a", compile=True)
    r_plain = RowResult(impl="a", device="cpu", workload=W.to_dict())
    r_compiled = RowResult(impl="a", device="cpu", workload=W.to_dict(), compile=True)
    assert interleave._record_key(r_plain) == interleave._job_key(plain)
    assert interleave._record_key(r_compiled) == interleave._job_key(compiled)
    assert interleave._record_key(r_plain) != interleave._record_key(r_compiled)


def test_ctrl_c_drops_the_companion_and_keeps_its_rounds(fake_workers):
    fake_workers.chunks["b"] = [{"forward_ms": [1.0], "backward_ms": [1.0]}, KeyboardInterrupt()]
    jobs = [_job("a"), _job("b"), _job(BASELINE)]
    with pytest.raises(interleave.BatchInterrupted) as e:
        interleave.measure_jobs(jobs, interleave.InterleaveConfig(rounds=2, processes=1, max_live=2))
    kept = e.value.records
    assert [r.impl for r in kept] == ["a", "b"]  # the companion MLP is not a row
    assert all("baseline_rounds" in r.extra for r in kept)


def test_install_cleanup_never_hides_the_error(monkeypatch, tmp_path):
    # The fake git removes only the one empty directory the fake mkdtemp made (os.rmdir, never a
    # tree, never a path taken from the arguments): a mutant that changes git's arguments must
    # not be able to point a deletion anywhere else.
    import os

    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path))
    source = next(s for s in sources.SOURCES.values() if s.kind == "checkout")
    made = []

    def mkdtemp(prefix="", dir=None):
        path = tmp_path / f"scratch-{len(made)}"
        path.mkdir()
        made.append(path)
        return str(path)

    def git(*args, cwd=None):
        if made and made[-1].is_dir() and not any(made[-1].iterdir()):
            os.rmdir(made[-1])  # the temporary directory is gone (a cleaner ran)
        raise install.InstallError("unreachable")

    monkeypatch.setattr(install.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(install, "_git", git)
    with pytest.raises(install.InstallError, match="^cannot fetch /mirror: unreachable$"):
        install.checkout(source, from_="/mirror")
    assert len(made) == 1 and not made[0].exists()
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # a Python without torch: no pin
    assert install._torch_constraint() == ""


def test_sources_record_path_and_a_record_whose_checkout_moved(monkeypatch, tmp_path):
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path / "h"))
    assert sources._record_path("x") == tmp_path / "h" / "sources" / "x.json"
    name = next(k for k, v in sources.SOURCES.items() if v.kind == "checkout")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sources.write_record(sources.Installed(name, "checkout", "abc", "here", path=str(elsewhere)))
    assert sources.installed(name).path == str(elsewhere)  # its recorded checkout exists: kept


def test_allocator_finds_glibc_mallopt():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert allocator._glibc_mallopt() is not None


def test_leaderboard_family_cell_of_a_row_without_one():
    doc = ResultsDocument(machine={}, config={})
    doc.results = [_row("k", 1.0, 1.0)]
    line = [l for l in leaderboard.table(doc, doc.rows()).splitlines() if l.startswith("| 1 ")][0]
    assert line.split("|")[3].strip() == ""


def test_cross_hardware_disambiguation_and_rows_without_an_mlp():
    import pandas as pd

    def names(rows):
        df = pd.DataFrame(rows, columns=["file", "device", "machine", "host"])
        return cross_hardware._disambiguate(df, "machine")["column"].tolist()

    assert names([(0, "cpu", "M", "h1")]) == ["M"]
    assert names([(0, "cpu", "M", "h1"), (1, "cpu", "M", "h2")]) == ["M [h1]", "M [h2]"]
    assert names([(0, "cpu", "M", "h1"), (1, "cpu", "M", "h1")]) == ["M [h1]", "M [h1] #1"]
    assert names([(0, "cpu", "M", "h1"), (1, "cpu", "N", "h1")]) == ["M", "N"]
    wl = {"widths": [2, 1], "batch": 4, "dtype": "float32"}
    doc = ResultsDocument(machine={}, config={})
    doc.results = [RowResult(impl="k", device="cpu", workload=wl, forward_ms=2.0, backward_ms=4.0)]
    assert math.isnan(cross_hardware.frame([doc])["ratio"].iloc[0])


def test_machine_table_strict_with_one_workload():
    wl = {"widths": [2, 1], "batch": 4, "dtype": "float32"}
    doc = ResultsDocument(machine={"hostname": "h"}, config={})
    doc.results = [RowResult(impl=BASELINE, device="cpu", workload=wl, forward_ms=1.0, backward_ms=1.0)]
    text = cross_hardware.machine_table([doc], strict=True)
    assert text.count("### ") == 1 and text.endswith("the median of per-round ratios where both rows have rounds).")
    assert "\n\n" in text and "XX" not in text


def test_history_marks_only_gpu_columns():
    from tests.test_compare import doc, record, typed

    runs = [typed(doc([record("mlp", 1.0, 2.0), record("mlp", 0.5, 0.5, device="cuda")], gpus=["NVIDIA H200"],
                      ts=f"2026-11-2{i}T10:00:00+00:00", commit=f"{i}" * 40)) for i in (5, 6)]  # fmt: skip
    df = cross_hardware.frame(runs)
    assert set(df["device"]) == {"cpu", "cuda"}
    text = cross_hardware.history_table(runs)
    lines = [l for l in text.splitlines() if l.startswith("| implementation") or l.startswith("| mlp ")]
    header, mlp = ([c.strip() for c in l.split("|")[2:-1]] for l in lines)
    cells = dict(zip(header, mlp))
    assert cells["55555555 2026-11-25T10:00 gpu fwd ms"] == "0.499" and cells["55555555 2026-11-25T10:00 fwd ms"] == "1"


def test_sweep_jobs_carry_options_and_compile():
    seen = []

    def measure(job):
        seen.append((job.impl, job.options, job.compile))
        return RowResult(impl=job.impl, device=job.device, workload=job.workload.to_dict(), forward_ms=1.0, backward_ms=1.0)

    pts = [sweep.Point("k", "cpu", W, options={"grid_size": 3}, compile=True), sweep.Point("j", "cpu", W)]
    sweep.run(pts, ResultsDocument(machine={}, config={}), lambda d: None, measure, TimingConfig())
    assert seen == [("k", {"grid_size": 3}, True), ("j", {}, False)]
