"""The accuracy suite's budgets in FLOPs, its worker processes, and KANbeFair's definitions and ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kanbench import discovery, flops, matching
from kanbench.accuracy import kanbefair, parallel, suite, tasks
from kanbench.accuracy.records import AccuracyResult
from kanbench.accuracy.train import TrainConfig


@pytest.fixture(scope="module")
def registry():
    return discovery.discover(check=False)


# ----------------------------------------------------------------------------- FLOP counts by hand


def test_each_familys_flop_count_against_a_hand_count(registry):
    """Forward FLOPs per sample of a [2, 3, 1] network, counted by hand per family."""

    def count(name, **options):
        return registry.get(name).spec.flops((2, 3, 1), **options)

    # MLP, hidden_factor 1: 2*2*3 + F(act)*3 + 2*3*1; the activation counts (gelu 14, tanh 6)
    assert count("mlp", hidden_factor=1) == 12 + 3 + 6
    assert count("mlp", hidden_factor=1, activation="gelu") == 12 + 14 * 3 + 6
    assert count("mlp", hidden_factor=1, activation="tanh", hidden_layers=2) == 12 + 18 + (2 * 3 * 3 + 18) + 6
    # our B-spline layer evaluates the basis per input (G=5, k=3: bracket 260), contracts (G+k+1) per edge
    per_input = lambda a, b, g=5, k=3: a * (9 * k * (g + 1.5 * k) + 2 * g - 2.5 * k + 1) + 5 * a + 2 * a * (g + k + 1) * b + b  # noqa: E731
    assert count("splines-better_kan") == per_input(2, 3) + per_input(3, 1)
    assert count("splines-better_kan", grid_size=3, spline_order=2) == per_input(2, 3, 3, 2) + per_input(3, 1, 3, 2)
    # RBF (G=5 -> 8 centers): 5 FLOPs per kernel, silu, contraction with 8 + 1 columns, bias
    rbf = lambda a, b, n=8: a * n * 5 + 5 * a + 2 * a * (n + 1) * b + b  # noqa: E731
    assert count("rbf-better_kan") == rbf(2, 3) + rbf(3, 1)
    assert count("fastkan") == rbf(2, 3) + rbf(3, 1)
    # pykan evaluates the basis on every edge
    per_edge = lambda a, b: a * b * 260 + 5 * a + 2 * a * b  # noqa: E731
    assert count("pykan-speed") == per_edge(2, 3) + per_edge(3, 1)
    # ReLU-KAN (G=5, k=3): per input and basis 6 FLOPs, then 2 per edge and basis
    assert count("relukan") == 2 * 8 * (6 + 2 * 3) + 3 * 8 * (6 + 2 * 1)
    # SineKAN (8 frequencies): 5 FLOPs per edge and frequency
    assert count("sinekan") == 5 * 6 * 8 + 5 * 3 * 8
    assert flops.ACTIVATION_FLOPS["gelu"] == 14


@pytest.mark.parametrize("impl", ["mlp", "splines-better_kan", "rbf-better_kan"])
def test_flop_budgets_are_matched_within_three_percent(registry, impl):
    for task in tasks.select(None, "default"):
        target = matching.default_target(registry, task.widths, "flops")
        m = matching.match(registry.get(impl).spec, task.widths, target, "flops")
        assert m.error <= 0.03, (task.name, impl, m.widths, m.value, target)


# ----------------------------------------------------------------------------- worker processes


def test_worker_processes_give_the_records_of_one_process(registry):
    task = tasks.catalogue()["xy"]
    config = suite.SuiteConfig(seeds=(0, 1), trials=2, train=TrainConfig(steps=30, eval_every=10))
    units = suite.plan([task], ["mlp", "splines-better_kan"], config)
    torch.set_num_threads(1)
    alone = suite.run(units, registry, config)
    plan = parallel.WorkerPlan(("xy",), ("mlp", "splines-better_kan"), config, (0, 1), (), 1)
    seen = []
    pooled = parallel.run(units, plan, 2, lambda done, total, unit, records, s: seen.append((done, total)))
    key = lambda r: (r.impl, r.seed)  # noqa: E731
    assert [key(r) for r in pooled] == [key(r) for r in alone]  # plan order
    for a, b in zip(alone, pooled):
        assert a.test_nrmse == pytest.approx(b.test_nrmse, rel=1e-5) and a.options == b.options and a.lr == b.lr
    assert sorted(seen) == [(1, 2), (2, 2)]


def test_failed_records_cover_every_seed():
    task = tasks.catalogue()["xy"]
    config = suite.SuiteConfig(seeds=(0, 1, 2))
    records = suite.failed_records(suite.Unit(task, "mlp"), config, "crash", "its worker process died")
    assert [r.seed for r in records] == [0, 1, 2] and all(r.failed and r.error_kind == "crash" for r in records)


# ----------------------------------------------------------------------------- KANbeFair


def test_kanbefair_targets_are_its_definitions():
    import scipy.special as sp

    catalogue = tasks.catalogue()
    x = np.array([[0.3, 0.6], [0.9, 0.2]])

    raw = catalogue["kbf-ellipkinc"].make(0)
    assert raw.x.min() >= 0 and raw.x.max() < 1 and len(raw.split["train"]) == 1000 and len(raw.split["test"]) == 1000
    fn = tasks._kanbefair_target
    assert np.allclose(fn("ellipkinc")(x), sp.ellipkinc(x[:, 0], x[:, 1]))
    assert np.allclose(fn("jvp")(x), sp.jvp(x[:, 0], x[:, 1]))  # the derivative dJ_v/dz, not J_v
    assert not np.allclose(fn("jvp")(x), sp.jv(x[:, 0], x[:, 1]))
    assert np.allclose(fn("lpmv1")(x), sp.lpmv(1, x[:, 0], x[:, 1]))
    # Re Y_1^0 at polar angle x1 = sqrt(3 / (4 pi)) cos(x1), whatever the azimuth x0
    assert np.allclose(fn("sphharm01")(x), math.sqrt(3 / (4 * math.pi)) * np.cos(x[:, 1]))
    assert catalogue["kbf-jvp"].family == "kanbefair" and catalogue["kbf-jvp"].widths == (2, 5, 1)


def _write_published(path, rows):
    lines = []
    for dataset, model, params, error in rows:
        head = ["2024-06-06", dataset, model, "5", "False", "gelu", "128", "500", "0.001", "1314"]
        tail = ["0.1", str(error), str(params), "1000", "10", "0.02"]
        middle = ["10", "3", "silu", "-1.0_1.0"] if model == "KAN" else ["default"]
        lines.append(",".join(head + middle + tail))
    path.write_text("\n".join(lines) + "\n")


def test_published_ratios_take_the_best_of_each_family_per_band(tmp_path):
    path = tmp_path / "results.csv"
    _write_published(
        path,
        [
            ("Special_ellipkinc", "KAN", 150, 0.02),
            ("Special_ellipkinc", "KAN", 900, 0.01),
            ("Special_ellipkinc", "MLP", 201, 0.05),
            ("Special_ellipkinc", "MLP", 2751, 0.04),  # the next band
            ("Special_ellipkinc", "KAN", 1500, 0.03),
            ("Special_jv", "MLP", 201, 0.5),
        ],
    )
    rows = kanbefair.read_published(path)
    by = {(r.task, r.band): r for r in kanbefair.published_ratios(rows)}
    low = by[("kbf-ellipkinc", (100.0, 1000.0))]
    assert (low.kan, low.mlp, low.ratio, low.kan_rows, low.mlp_rows) == (0.01, 0.05, pytest.approx(0.2), 2, 1)
    assert by[("kbf-ellipkinc", (1000.0, 10000.0))].ratio == pytest.approx(0.75)
    assert by[("kbf-jvp", (100.0, 1000.0))].ratio is None  # no KAN row in the band
    path.write_text("a,b,c\n")
    with pytest.raises(kanbefair.FormatError, match=r"results.csv:1: 3 fields"):
        kanbefair.read_published(path)


def test_our_ratios_are_medians_over_seeds_with_an_interval():
    def rec(impl, seed, mae, params, family):
        return AccuracyResult(
            impl=impl, task="kbf-lpmv0", seed=seed, params=params, family=family, test_mae=mae, budget_scale=1.0
        )

    records = [rec("mlp", s, m, 140, "MLP") for s, m in enumerate([0.04, 0.05, 0.06])]
    records += [rec("splines-better_kan", s, m, 141, "B-spline") for s, m in enumerate([0.01, 0.02, 0.03])]
    records += [rec("rbf-better_kan", s, m, 141, "Gaussian RBF") for s, m in enumerate([0.02, 0.03, 0.04])]
    (r,) = kanbefair.our_ratios(records)
    assert r.kan_impl == "splines-better_kan" and r.band == (100.0, 1000.0)
    assert r.ratio == pytest.approx(0.02 / 0.05)
    assert r.interval[0] <= r.ratio <= r.interval[1] and r.interval[0] >= 0.01 / 0.06 - 1e-12


# ----------------------------------------------------------------------------- exact matching, deeper and coarser rows


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_mlp_at_every_depth_is_matched_within_three_percent(registry, depth):
    """Each hidden layer's width is set on its own (it used to be the first one repeated: 151 for a
    141-parameter budget at depth 2)."""
    for task in tasks.select(None, "default"):
        target = matching.default_target(registry, task.widths, "params")
        for activation in ("relu", "gelu"):
            options = {"hidden_layers": depth, "activation": activation}
            m = matching.match(registry.get("mlp").spec, task.widths, target, "params", options)
            assert m.error <= 0.03, (task.name, depth, m.widths, m.value, target)
            assert len(m.widths) == depth + 2
            model = registry.get("mlp").spec.build(m.widths, device=torch.device("cpu"), dtype=torch.float32, **m.options)
            assert sum(p.numel() for p in model.parameters()) == m.value


def test_a_basis_size_the_build_defaults_is_where_the_matcher_starts():
    def build(widths, device, dtype, degree=7):
        return None

    spec = type("Spec", (), {"build": staticmethod(build), "name": "x"})()
    assert matching._default_option(spec, "degree") == 7
    assert matching._default_option(spec, "grid_size") == matching.GRID_OPTIONS["grid_size"]
    assert matching._expand_depth((2, 5, 1), {"hidden_layers": 3}) == (2, 5, 5, 5, 1)
    assert matching._expand_depth((2, 5, 1), {}) == (2, 5, 1)


def test_grid_extension_takes_the_specs_own_extension(registry):
    """A spec's ``extend_grid(model, new_size, x) -> model`` replaces the model (pykan's refine
    returns a new one); without it the model's own method is used."""
    from kanbench.accuracy import grid_scaling

    spec = registry.get("splines-better_kan").spec
    calls = []

    def build(grid):
        torch.manual_seed(0)
        return spec.build((2, 1, 1), device=torch.device("cpu"), dtype=torch.float64, grid_size=grid)

    def extend(model, new_size, x):
        calls.append((new_size, tuple(x.shape)))
        return build(new_size)  # a new model, as pykan's refine gives

    data = grid_scaling.exp_sin_data(n_train=64, n_test=64)
    run = grid_scaling.run(build, data, "x", "exp-sin", (2, 1, 1), grids=(3, 5), steps=1, extend=extend)
    assert calls == [(5, (64, 2))]
    assert [p.params for p in run.points] == [23, 29]  # the second point is the new model's


def test_grid_extension_updates_grids_as_pykans_fit_does(registry):
    """``update(model, x)`` every 5 steps of the first 50 at each grid, then the remaining steps."""
    from kanbench.accuracy import grid_scaling

    spec = registry.get("splines-better_kan").spec
    calls, steps = [], []
    real = grid_scaling._lbfgs

    def build(grid):
        torch.manual_seed(0)
        return spec.build((2, 1, 1), device=torch.device("cpu"), dtype=torch.float64, grid_size=grid)

    data = grid_scaling.exp_sin_data(n_train=32, n_test=32)
    try:
        grid_scaling._lbfgs = lambda model, x, y, n: steps.append(n)
        grid_scaling.run(build, data, "x", "exp-sin", (2, 1, 1), grids=(3,), steps=12, update=lambda m, x: calls.append(len(x)))
    finally:
        grid_scaling._lbfgs = real
    assert calls == [32, 32, 32] and steps == [5, 5, 2, 0]
    assert (grid_scaling.UPDATE_EVERY, grid_scaling.UPDATE_UNTIL) == (5, 50)


def test_levenberg_marquardt_solves_a_least_squares_fit_exactly():
    """On a model linear in its parameters one damped Gauss-Newton step is the least-squares
    solution; a handful reach it to float64 precision, in both the P <= N and the P > N form."""
    from kanbench.accuracy import grid_scaling

    torch.manual_seed(0)
    x = torch.randn(40, 3, dtype=torch.float64)
    y = x @ torch.tensor([[1.5], [-2.0], [0.25]], dtype=torch.float64) + 0.5
    model = torch.nn.Linear(3, 1).double()
    loss = grid_scaling.levenberg_marquardt(model, x, y, steps=20)
    assert loss < 1e-20
    assert torch.allclose(model.weight, torch.tensor([[1.5, -2.0, 0.25]], dtype=torch.float64), atol=1e-9)
    wide = torch.nn.Linear(3, 1).double()  # 4 parameters, 2 points: the N x N form, an interpolant
    assert grid_scaling.levenberg_marquardt(wide, x[:2], y[:2], steps=20) < 1e-20


def test_levenberg_marquardt_never_raises_the_loss_of_a_kan(registry):
    """Our [2,1,1] KAN after a few LBFGS steps: the refinement lowers the training loss (a step that
    does not is undone), through the native operator's backward."""
    from kanbench.accuracy import grid_scaling

    spec = registry.get("splines-better_kan").spec
    torch.manual_seed(0)
    model = spec.build((2, 1, 1), device=torch.device("cpu"), dtype=torch.float64, grid_size=5)
    data = grid_scaling.exp_sin_data(n_train=64, n_test=16)
    x, y = data["train"]
    grid_scaling._lbfgs(model, x, y, 5)
    before = float(torch.mean((model(x) - y) ** 2).detach())
    after = grid_scaling.levenberg_marquardt(model, x, y, steps=5)
    assert after <= before
    assert after == pytest.approx(float(torch.mean((model(x) - y) ** 2).detach()), rel=1e-9)


def test_grid_extension_refines_only_below_the_interpolation_threshold(registry):
    """``lm_steps``: Levenberg-Marquardt after LBFGS at grids with fewer parameters than training
    points, never past the threshold; the run records it and reads back from its dict."""
    from kanbench.accuracy import grid_scaling

    spec = registry.get("splines-better_kan").spec
    calls = []
    real_lbfgs, real_lm = grid_scaling._lbfgs, grid_scaling.levenberg_marquardt

    def build(grid):
        torch.manual_seed(0)
        return spec.build((2, 1, 1), device=torch.device("cpu"), dtype=torch.float64, grid_size=grid)

    data = grid_scaling.exp_sin_data(n_train=25, n_test=8)  # G=3: 23 params < 25; G=5: 29 >= 25
    try:
        grid_scaling._lbfgs = lambda model, x, y, n: None
        grid_scaling.levenberg_marquardt = lambda model, x, y, n: calls.append((grid_scaling._trainable(model), n))
        run = grid_scaling.run(build, data, "x", "exp-sin", (2, 1, 1), grids=(3, 5), steps=1, lm_steps=7)
    finally:
        grid_scaling._lbfgs, grid_scaling.levenberg_marquardt = real_lbfgs, real_lm
    assert calls == [(23, 7)]
    assert run.lm_steps == 7 and "7 Levenberg-Marquardt" in run.optimizer
    back = grid_scaling.GridRun.from_dict(run.to_dict())
    assert back.lm_steps == 7
    old = run.to_dict()
    del old["lm_steps"]  # a file written before the refinement existed: LBFGS alone
    assert grid_scaling.GridRun.from_dict(old).lm_steps == 0


class _OldStyleSquare(torch.autograd.Function):
    """An autograd.Function without setup_context: torch.func cannot transform it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


class _SquareNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1).double()

    def forward(self, x):
        return _OldStyleSquare.apply(self.lin(x))


def test_the_jacobian_is_per_sample_gradients_with_a_loop_where_torch_func_cannot_run(registry):
    """vmap of grad on our KAN (its native operator hands torch.func the plain ops) equals one
    backward pass per output; a model torch.func cannot run gets the loop."""
    from kanbench.accuracy import fitting

    spec = registry.get("splines-better_kan").spec
    torch.manual_seed(0)
    model = spec.build((2, 3, 1), device=torch.device("cpu"), dtype=torch.float64, grid_size=4)
    x = torch.rand(9, 2, dtype=torch.float64) * 2 - 1
    params = [p for p in model.parameters() if p.requires_grad]
    loop = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(model(x)[i, 0], params)]) for i in range(9)])
    torch.testing.assert_close(fitting.jacobian(model, x), loop, atol=1e-13, rtol=1e-12)
    odd = _SquareNet()
    with torch.no_grad():
        odd.lin.weight.copy_(torch.tensor([[0.5, -1.0]], dtype=torch.float64))
        odd.lin.bias.fill_(0.25)
    z = odd.lin(x)
    expected = torch.cat([2 * z * x, 2 * z], 1)  # d(z^2)/d(w, b) = 2 z (x, 1)
    torch.testing.assert_close(fitting.jacobian(odd, x), expected)
