"""The accuracy protocol's fairness: equal tuning budgets, exact parameter matching, per-seed splits,
convergence flags, bootstrap intervals with ties, and the KAN paper's grid-extension scaling law."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from kanbench import discovery, matching
from kanbench.accuracy import grid_scaling, suite, summary, tasks, tuning
from kanbench.accuracy.records import AccuracyResult
from kanbench.accuracy.train import TrainConfig, converged

# ----------------------------------------------------------------------------- symmetric tuning


@pytest.fixture(scope="module")
def registry():
    return discovery.discover()


def test_every_row_gets_the_same_number_of_trials_from_its_own_space(registry):
    n = 6
    for name in registry.names():
        spec = registry.get(name).spec
        if spec is None:
            continue
        trials = tuning.draw(name, spec.options, n)
        assert len(trials) == n
        for t in trials:
            assert set(t.options) == set(tuning.space(spec.options))
            assert all(t.options[k] in tuning.OPTION_VALUES[k] for k in t.options)
    mlp = tuning.draw("mlp", registry.get("mlp").spec.options, n)
    assert {t.options["activation"] for t in mlp} >= {"relu", "gelu", "silu", "tanh"}
    assert {t.options["hidden_layers"] for t in mlp} == {1, 2, 3}
    kan = tuning.draw("splines-better_kan", registry.get("splines-better_kan").spec.options, n)
    assert {t.options["spline_order"] for t in kan} == {2, 3} and len({t.options["grid_size"] for t in kan}) >= 3


def test_learning_rates_cover_the_range_one_per_slice_and_are_reproducible():
    n = 8
    trials = tuning.draw("x", (), n, seed=3)
    lo, hi = (math.log10(v) for v in tuning.LR_RANGE)
    slices = sorted(int((math.log10(t.lr) - lo) / (hi - lo) * n) for t in trials)
    assert slices == list(range(n))  # stratified: one rate in each slice of the log range
    assert trials == tuning.draw("x", (), n, seed=3)
    assert trials != tuning.draw("y", (), n, seed=3)  # rows draw independently: adding one changes no other
    assert tuning.at_edge(tuning.LR_RANGE[0] * 1.2) and tuning.at_edge(tuning.LR_RANGE[1] / 1.2)
    assert not tuning.at_edge(1e-2)
    with pytest.raises(ValueError):
        tuning.draw("x", (), 0)


# ----------------------------------------------------------------------------- exact matching


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0, 4.0])
def test_the_mlp_and_our_layers_are_matched_within_three_percent(registry, scale):
    for task in tasks.select(None, "default"):
        target = matching.default_target(registry, task.widths, "params") * scale
        for impl in ("mlp", "splines-better_kan", "rbf-better_kan"):
            m = matching.match(registry.get(impl).spec, task.widths, target, "params")
            assert m.error <= 0.03, (task.name, impl, scale, m.widths, m.value, target)
            built = registry.get(impl).spec.build(m.widths, device=torch.device("cpu"), dtype=torch.float32, **m.options)
            assert sum(p.numel() for p in built.parameters() if p.requires_grad) == m.value


def test_the_matched_mlp_is_built_with_its_match_options(registry):
    """141 parameters on a 2-input task: the MLP [2, 35, 1] (before: [2, 3, 1] x 10 = 121)."""
    m = matching.match(registry.get("mlp").spec, (2, 5, 1), 141, "params")
    assert m.options == {"hidden_factor": 1} and m.widths == (2, 35, 1) and m.value == 141
    deep = matching.match(registry.get("mlp").spec, (2, 5, 1), 1000, "params", {"hidden_layers": 3})
    assert deep.error < 0.03 and deep.options == {"hidden_factor": 1, "hidden_layers": 3}


def test_every_installed_implementation_is_matched_within_ten_percent(registry):
    task = tasks.catalogue()["exp-sin"]
    target = matching.default_target(registry, task.widths, "params")
    for name in registry.names():
        entry = registry.get(name)
        if entry.spec is None or discovery.check_requirements(entry.spec):
            continue
        try:
            m = matching.match(entry.spec, task.widths, target, "params")
        except matching.MatchError:
            continue
        # as close as the family's granularity allows: half the step between neighbouring widths
        count = matching.counter(entry.spec, "params", m.options)
        h = m.widths[1]
        step = abs(count((2, h + 1, 1)) - count((2, max(1, h - 1), 1))) / 2
        assert m.error <= max(0.10, step / 2 / target + 1e-9), (name, m.widths, m.value, target)


# ----------------------------------------------------------------------------- splits


@pytest.mark.parametrize("name", ["exp-sin", "diabetes", "breast-cancer"])
def test_each_seed_draws_its_own_split_and_none_leaks(name):
    task = tasks.catalogue()[name]
    if tasks.missing_requirement(task):
        pytest.skip(tasks.missing_requirement(task))
    config = suite.SuiteConfig()
    a, b = suite.prepare_split(task, config, 0), suite.prepare_split(task, config, 1)
    assert not np.array_equal(a.x["train"], b.x["train"])
    for p in (a, b):
        parts = [set(map(tuple, np.round(p.x[k], 12))) for k in ("train", "val", "test")]
        if task.kind == "regression" and task.family == "toy":
            assert not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        split = p.split
        assert not set(split.train) & set(split.val) and not set(split.test) & (set(split.train) | set(split.val))
        if task.kind == "classification":
            assert set(np.unique(p.y["train"])) == set(np.unique(p.y["test"]))  # stratified
    assert suite.prepare_split(task, config, 1).x["val"].tolist() == b.x["val"].tolist()  # reproducible


# ----------------------------------------------------------------------------- convergence


def test_the_convergence_flag_on_hand_made_curves():
    assert converged(400, 1000) is True
    assert converged(950, 1000) is True
    assert converged(960, 1000) is False  # best checkpoint in the last 5%: may still be improving
    assert converged(None, 1000) is None
    with pytest.raises(ValueError):
        TrainConfig(patience=5, eval_every=10)


def test_early_stopping_stops_a_run_that_no_longer_improves():
    from kanbench.accuracy.train import train_once

    task = tasks.catalogue()["xy"]
    prepared = suite.prepare_split(task, suite.SuiteConfig(), 0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    out = train_once(model, task, prepared, TrainConfig(steps=2000, eval_every=10, patience=50), 0.3, "cpu", torch.float32)
    assert out.stopped_early and out.steps_run < 2000 and out.steps_run - out.best_step >= 50


# ----------------------------------------------------------------------------- intervals


def _rec(impl, task, seed, score):
    return AccuracyResult(impl=impl, task=task, seed=seed, kind="regression", test_nrmse=score)


def test_bootstrap_win_share_with_ties_on_a_hand_made_table():
    records = []
    for t in ("a", "b", "c", "d"):
        for s in range(5):
            records.append(_rec("mlp", t, s, 1.0))
            records.append(_rec("always", t, s, 0.5))
            records.append(_rec("never", t, s, 2.0))
            records.append(_rec("tied", t, s, 1.0))
            records.append(_rec("half", t, s, 0.5 if t in ("a", "b") else 2.0))
    w = summary.win_rates(records)
    assert (w["always"].wins, w["always"].ties, w["always"].losses) == (20, 0, 0)
    assert w["always"].rate == 1.0 and w["always"].low == 1.0 and w["always"].high == 1.0
    assert w["never"].rate == 0.0 and w["never"].high == 0.0
    assert (w["tied"].ties, w["tied"].rate) == (20, 0.5)  # ties count as ties, not as losses
    # whole tasks agree within themselves: the interval is that of 4 tasks, not of 20 independent pairs
    assert w["half"].rate == 0.5 and w["half"].low <= 0.25 and w["half"].high >= 0.75
    r = summary.error_ratios(records)
    assert r["always"].ratio == pytest.approx(0.5) and r["always"].low == pytest.approx(0.5)
    assert r["half"].ratio == pytest.approx(1.0) and r["half"].low < 0.6 and r["half"].high > 1.6


def test_the_flags_reach_the_tables():
    from kanbench.accuracy import render

    records = [_rec("mlp", "xy", 0, 1.0), _rec("kan", "xy", 0, 0.5)]
    records[1].converged, records[1].lr_at_edge = False, True
    text = render.task_tables(records)
    assert "not converged, lr at edge" in text


# ----------------------------------------------------------------------------- grid extension


@pytest.mark.parametrize("k", [1, 2, 3])
def test_grid_extension_keeps_the_function(k):
    """Nested knots (G -> 2G on the same range): the extended layer computes the same function, at the
    old knots and between them."""
    from better_kan import SplineKANLayer

    torch.manual_seed(k)
    layer = SplineKANLayer(2, 3, grid_size=5, spline_order=k, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.normal_()
    x = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    knots = layer.grid[:, k:-k].t().contiguous()  # the old grid's knots inside its range
    before, at_knots = layer(x), layer(knots)
    layer.extend_grid(10)
    assert layer.grid_size == 10
    torch.testing.assert_close(layer(knots), at_knots, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(layer(x), before, atol=1e-9, rtol=1e-9)


def test_fit_exponent_and_threshold_on_a_synthetic_schedule():
    run = grid_scaling.GridRun("k", "t", [2, 1, 1], 3, train_points=1000, steps=1)
    for g in grid_scaling.GRIDS:
        params = 3 * (g + 4) + 2
        rmse = 0.5 * g**-4.0 if params < 1000 else 1e-3
        run.points.append(grid_scaling.GridPoint(g, params, rmse, rmse, 0.0))
    assert run.threshold_grid == 500
    assert grid_scaling.fit_exponent(run) == pytest.approx(4.0)
    assert run.to_dict()["exponent"] == pytest.approx(4.0)


def test_the_grid_extension_protocol_runs_our_layers_end_to_end(tmp_path):
    from better_kan import build_spline_kan

    data = grid_scaling.exp_sin_data(n_train=200, n_test=200)
    run = grid_scaling.run(
        lambda g: build_spline_kan((2, 1, 1), grid_size=g, dtype=torch.float64),
        data,
        "splines",
        "exp-sin",
        (2, 1, 1),
        (3, 6, 12),
        20,
    )
    errors = [p.test_rmse for p in run.points]
    assert all(p.error is None for p in run.points) and errors[2] < errors[0]
    grid_scaling.figure([run], tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 1000
    assert "test RMSE ~ G^-" in grid_scaling.markdown([run])


# ----------------------------------------------------------------------------- the command's request


def _args(**kw):
    from kanbench.cli import build_parser

    argv = ["accuracy"] + [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    return build_parser().parse_args(argv)


def test_the_tiers_tune_and_an_lr_grid_or_lbfgs_does_not():
    from kanbench.commands.accuracy import config_from

    _, config, _ = config_from(_args())
    assert config.trials == suite.TIER_DEFAULTS["default"]["trials"] and len(config.seeds) == 5
    assert config.train.patience == 150 and config.train.steps == 800
    _, config, _ = config_from(_args(lr="0.01,0.001"))
    assert config.trials is None and config.lrs == (0.01, 0.001)
    _, config, _ = config_from(_args(trials=3, patience=0))
    assert config.trials == 3 and config.train.patience is None
    assert isinstance(config_from(_args(optimizer="lbfgs"))[1].trials, types.NoneType)


def test_pykan_honours_the_callers_seed(registry):
    entry = registry.get("pykan")
    if entry.spec is None or discovery.check_requirements(entry.spec):
        pytest.skip("pykan is not installed")
    weights = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = entry.spec.build((2, 3, 1), device=torch.device("cpu"), dtype=torch.float64)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.allclose(weights[0], weights[1], equal_nan=True)  # it used to be seed 0 whatever the caller's


def test_absolute_budgets_are_the_same_count_for_every_task(registry):
    """``--params``: counts, not multiples of each task's reference; exclusive with ``--budgets``."""
    from kanbench.commands.accuracy import config_from
    from kanbench.commands.common import UsageError

    _, config, _ = config_from(_args(params="100,1000", tier="full"))
    assert config.budgets == (100.0, 1000.0) and config.absolute_budgets and config.to_dict()["absolute_budgets"]
    assert not config_from(_args())[1].absolute_budgets
    full = config_from(_args(tier="full"))[1]  # the full tier: 10^2 to 10^3.5 parameters on every task
    assert full.absolute_budgets and full.budgets == (100.0, 316.0, 1000.0, 3162.0)
    assert not config_from(_args(tier="full", budgets="1,2"))[1].absolute_budgets
    with pytest.raises(UsageError, match="exclude each other"):
        config_from(_args(params="100", budgets="1"))
    cache = {}
    xy, digits = tasks.catalogue()["xy"], tasks.catalogue()["digits"]
    assert (
        suite._budget(registry, xy, 316.0, cache, absolute=True)
        == suite._budget(registry, digits, 316.0, cache, absolute=True)
        == 316.0
    )
    assert suite._budget(registry, xy, 2.0, cache) == 2 * suite._budget(registry, xy, 1.0, cache)


def test_the_report_has_a_summary_per_budget():
    """Several budgets: one table, a column per budget, labelled by count when the budgets are absolute."""
    from kanbench.accuracy import render

    recs = []
    for budget, kan_error in ((100.0, 0.2), (1000.0, 0.05)):
        for seed in (0, 1):
            for impl, error in (("mlp", 0.1), ("kan", kan_error)):
                recs.append(
                    AccuracyResult(
                        impl=impl, task="t", seed=seed, kind="regression", test_nrmse=error, budget_scale=budget, budget=budget
                    )
                )
    text = render.budget_table(recs, [100.0, 1000.0])
    assert "error / MLP's at 100 parameters" in text and "error / MLP's at 1000 parameters" in text
    row = next(line for line in text.splitlines() if line.startswith("| kan"))
    assert "2.00x" in row and "0.50x" in row
    assert "### Summary per budget" in render.report(recs)
    assert render._budget_label(recs, 100.0) == "100 parameters"
    assert render._budget_label([AccuracyResult(impl="a", task="t", seed=0, budget_scale=2.0, budget=282.0)], 2.0) == "x2"
