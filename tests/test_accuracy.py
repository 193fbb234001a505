"""The accuracy suite: data against closed forms, an honest protocol, exact metrics, bad input."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from kanbench.accuracy import data, metrics, suite, summary, tasks, train
from kanbench.accuracy.records import AccuracyResult
from kanbench.discovery import discover
from tests.conftest import TOYS, run_cli

CAT = tasks.catalogue()


# ----------------------------------------------------------------------------- data generators


@pytest.mark.parametrize(
    "name, point, expected",
    [
        ("bessel", [0.0], 1.0),  # J0(0) = 1
        ("bessel", [0.1], 0.22389077914123567),  # J0(2)
        ("exp-sin", [0.5, 1.0], math.exp(2.0)),  # exp(sin(pi/2) + 1)
        ("xy", [0.3, -0.5], -0.15),
        ("exp4d", [0.0, 0.0, 0.0, 0.0], 1.0),
        ("exp4d", [math.sqrt(0.5), 0.0, 0.0, 0.0], math.exp(0.5)),  # sin(pi/2) = 1
        ("ellipkinc", [0.7, 0.0], 0.7),  # F(phi | 0) = phi
        ("ellipeinc", [0.7, 0.0], 0.7),
        ("feynman-I.6.20", [0.0, 1.0], 1 / math.sqrt(2 * math.pi)),
        ("feynman-I.29.16", [0.3, 0.4, 1.0, 1.0 + math.pi / 2], 0.5),  # right angle: 3-4-5
        ("feynman-III.9.52", [1.0, 1.0, 1.0, 1.0, 0.5, 0.5], 1.0),  # sinc(0)^2 = 1
        ("sph-harm-1-1", [math.pi / 2, 0.0], -math.sqrt(3 / (8 * math.pi))),  # Re Y_1^1 at the equator, phi 0
    ],
)
def test_generated_targets_match_their_closed_forms(name, point, expected, monkeypatch):
    task = CAT[name]
    monkeypatch.setattr(tasks, "_uniform", lambda seed, n, ranges: np.tile(np.array(point, dtype=np.float64), (n, 1)))
    raw = task.make(0)
    assert raw.y[0, 0] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("task", [t for t in CAT.values() if t.family != "tabular"], ids=lambda t: t.name)
def test_generated_tasks_are_finite_on_their_whole_ranges(task):
    raw = task.make(0)
    assert raw.x.shape == (2000, task.dim) and raw.y.shape == (2000, 1)
    assert np.isfinite(raw.y).all(), f"{task.name} is not finite on its range"
    assert np.std(raw.y) > 0


def test_the_toy_functions_use_pykans_convention():
    raw = CAT["exp-sin"].make(0)
    assert raw.x.min() >= -1 and raw.x.max() <= 1
    assert list(raw.split) == ["train", "test"] and len(raw.split["train"]) == len(raw.split["test"]) == 1000


@pytest.mark.parametrize("name", ["diabetes", "breast-cancer", "wine", "digits"])
def test_bundled_datasets_load_without_a_download(name):
    pytest.importorskip("sklearn")
    task = CAT[name]
    raw = task.make(0)
    assert raw.x.shape[1] == task.dim
    if task.kind == "classification":
        assert raw.y.ndim == 1 and raw.y.dtype == np.int64 and raw.y.max() + 1 == task.outputs


# ----------------------------------------------------------------------------- splits and scaling


def test_splits_are_disjoint_complete_and_fixed_by_the_data_seed():
    task = CAT["exp-sin"]
    raw = task.make(0)
    a, b, c = data.split(task, raw, 0), data.split(task, raw, 0), data.split(task, raw, 1)
    parts = [set(a.train), set(a.val), set(a.test)]
    assert all(not (p & q) for i, p in enumerate(parts) for q in parts[i + 1 :])
    assert len(a.train) == 800 and len(a.val) == 200 and len(a.test) == 1000
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test)))
    assert not np.array_equal(a.val, c.val)


def test_classification_splits_are_stratified():
    task = tasks.Task("toy-cls", "classification", "tabular", 1, 2, (1, 2, 2), make=None)
    labels = np.array([0] * 90 + [1] * 10)
    raw = tasks.RawData(np.arange(100, dtype=np.float64).reshape(-1, 1), labels)
    s = data.split(task, raw, 0)
    for part in (s.train, s.val, s.test):
        assert 0 < (labels[part] == 1).sum() < len(part)
    assert len(s.train) + len(s.val) + len(s.test) == 100 and len(s.train) == 60


def test_nothing_of_validation_or_test_enters_the_scaling():
    task = CAT["xy"]
    raw = task.make(0)
    base = data.prepare(task, raw, 0)
    poisoned_x, poisoned_y = raw.x.copy(), raw.y.copy()
    held_out = np.concatenate([base.split.val, base.split.test])
    poisoned_x[held_out] *= 1000.0
    poisoned_y[held_out] += 1e6
    other = data.prepare(task, tasks.RawData(poisoned_x, poisoned_y, raw.split), 0)
    np.testing.assert_array_equal(base.x["train"], other.x["train"])
    np.testing.assert_array_equal(base.y["train"], other.y["train"])
    assert base.x["train"].min() == -1.0 and base.x["train"].max() == 1.0
    assert abs(base.y["train"].mean()) < 1e-12 and base.y["train"].std() == pytest.approx(1.0)


def test_scalers_invert_exactly():
    values = np.array([[1.0, 10.0], [3.0, 30.0], [2.0, 20.0]])
    for mode in data.SCALINGS:
        s = data.Scaler.fit(values, mode)
        np.testing.assert_allclose(s.invert(s.apply(values)), values)
    with pytest.raises(ValueError, match="unknown scaling"):
        data.Scaler.fit(values, "robust")


# ----------------------------------------------------------------------------- metrics


def test_regression_metrics_by_hand():
    pred, y = np.array([1.0, 2.0, 4.0]), np.array([1.0, 1.0, 1.0 + 1e-9 * 0])
    assert metrics.rmse(pred, y) == pytest.approx(math.sqrt((0 + 1 + 9) / 3))  # not the MSE, 10/3
    y2 = np.array([0.0, 2.0, 4.0])  # population std sqrt(8/3)
    assert metrics.nrmse(np.array([1.0, 2.0, 3.0]), y2) == pytest.approx(math.sqrt(2 / 3) / math.sqrt(8 / 3))
    assert metrics.nrmse(np.full(3, y2.mean()), y2) == pytest.approx(1.0)  # predicting the mean


def test_classification_metrics_by_hand():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    labels = np.array([0, 1, 2, 2])
    assert metrics.accuracy(logits, labels) == 0.75
    # class 0: F1 1; class 1: tp 1 fp 1 -> 2/3; class 2: tp 1 fn 1 -> 2/3
    assert metrics.macro_f1(logits, labels, 3) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    p_true = math.exp(2) / (math.exp(2) + 2)
    p_wrong = 1 / (math.exp(2) + 2)
    assert metrics.cross_entropy(logits, labels) == pytest.approx(-(3 * math.log(p_true) + math.log(p_wrong)) / 4)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert metrics.macro_f1(logits, labels, 3) == pytest.approx(
        sklearn_metrics.f1_score(labels, logits.argmax(1), average="macro")
    )
    assert metrics.cross_entropy(logits, labels) == pytest.approx(
        sklearn_metrics.log_loss(labels, np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    )


# ----------------------------------------------------------------------------- training protocol


class _Scalar(nn.Module):
    """Predicts one learned constant w; trained towards 10."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.w.expand(x.shape[0], 1)


def test_the_checkpoint_is_the_validation_best_not_the_test_best(monkeypatch):
    """Validation is best at w = 2, test at w = 5: the reported test error is the one at w = 2."""
    task = CAT["xy"]
    prepared = data.prepare(task, task.make(0), 0)
    prepared.y["train"] = np.full_like(prepared.y["train"], 10.0)
    model = _Scalar()

    def scripted(model, x, task, prepared, part):
        w = float(model.w.detach())
        return {"rmse": abs(w - (2.0 if part == "val" else 5.0)), "nrmse": abs(w - (2.0 if part == "val" else 5.0))}

    monkeypatch.setattr(train, "evaluate", scripted)
    out = train.train_once(model, task, prepared, train.TrainConfig(steps=200, eval_every=1), 0.05, "cpu", torch.float32)
    assert out.error is None and out.val < 0.06
    assert out.test["nrmse"] == pytest.approx(3.0, abs=0.06)  # w ~ 2 at the checkpoint; test-best would be 0
    assert float(model.w.detach()) == pytest.approx(2.0, abs=0.06)  # the model holds the checkpoint


class _Explodes(nn.Module):
    def __init__(self, widths, device=None, dtype=None):
        super().__init__()
        self.lin = nn.Linear(widths[0], widths[-1])
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        y = self.lin(x)
        return y * float("inf") if self.training and self.calls > 5 else y


def _registry():
    return discover([TOYS], entry_points=False, check=False)


@pytest.fixture
def fixed_budget(monkeypatch):
    """Toy implementations have fixed widths: the budget search returns the task's own widths."""
    from kanbench import matching

    monkeypatch.setattr(suite, "_budget", lambda registry, task, scale, cache, metric="params", absolute=False: 50.0)
    monkeypatch.setattr(
        matching,
        "match",
        lambda spec, nominal, target, metric, options=None: matching.Match(spec.name, metric, target, tuple(nominal), target),
    )


def _spec(name, cls):
    from kanbench import Implementation

    return Implementation(name=name, build=lambda widths, device, dtype: cls(widths).to(device=device, dtype=dtype), family="toy")


def test_a_diverging_run_is_recorded_as_diverged():
    task = CAT["xy"]
    prepared = data.prepare(task, task.make(0), 0)
    out = train.train_once(_Explodes((2, 1)), task, prepared, train.TrainConfig(steps=50), 0.01, "cpu", torch.float32)
    assert out.error_kind == "diverged" and "diverged at step" in out.error and out.test == {}


def test_units_choose_the_learning_rate_on_validation_and_a_crash_ends_only_its_unit(fixed_budget):
    registry = _registry()
    config = suite.SuiteConfig(seeds=(0, 1), lrs=(1e-2, 1e-3), train=train.TrainConfig(steps=30))
    records = suite.run(suite.plan([CAT["xy"]], ["raises", "frozen"], config), registry, config)
    by = {}
    for r in records:
        by.setdefault(r.impl, []).append(r)
    assert [r.error_kind for r in by["raises"]] == ["crash", "crash"] and "boom" in by["raises"][0].error
    assert all(not r.failed and r.test_nrmse is not None and r.lr in (1e-2, 1e-3) for r in by["frozen"])
    outcomes = {
        1e-2: [train.Outcome(1e-2, val=0.5), train.Outcome(1e-2, val=0.4)],
        1e-3: [train.Outcome(1e-3, val=0.3), train.Outcome(1e-3, val=None, error_kind="diverged")],
    }
    assert suite._choose(outcomes) == 1e-2  # median: 0.45 vs inf (a diverged seed counts as worst)


def test_the_same_seed_gives_the_same_numbers(fixed_budget):
    registry = _registry()
    config = suite.SuiteConfig(seeds=(3,), lrs=(1e-2,), train=train.TrainConfig(steps=20))
    units = suite.plan([CAT["xy"]], ["frozen"], config)
    a, b = suite.run(units, registry, config), suite.run(units, registry, config)
    assert a[0].test_nrmse == b[0].test_nrmse and a[0].curve == b[0].curve


def test_shards_split_the_units():
    units = suite.plan([CAT["xy"], CAT["bessel"]], ["a", "b", "c"], suite.SuiteConfig())
    shards = [suite.plan([CAT["xy"], CAT["bessel"]], ["a", "b", "c"], suite.SuiteConfig(), (i, 4)) for i in range(4)]
    assert sorted((u.task.name, u.impl) for s in shards for u in s) == sorted((u.task.name, u.impl) for u in units)


def test_duplicate_rows_are_left_out_unless_named():
    kept, left = suite.default_implementations(["mlp", "pykan", "pykan-speed", "inkan"])
    assert kept == ["mlp", "pykan-speed", "inkan"] and left == [("pykan", "pykan-speed")]


# ----------------------------------------------------------------------------- summary


def _rec(impl, task, seed, nrmse, params=100, scale=1.0, rmse=None, failed=False):
    r = AccuracyResult(
        impl=impl, task=task, seed=seed, test_nrmse=nrmse, test_rmse=rmse or nrmse, params=params, budget_scale=scale, step_ms=1.0
    )
    return r.fail("diverged", "boom") if failed else r


def test_ranks_wins_and_intervals_from_hand_made_results():
    recs = [
        _rec("mlp", "a", 0, 0.3), _rec("mlp", "a", 1, 0.5),
        _rec("kan", "a", 0, 0.1), _rec("kan", "a", 1, 0.2),
        _rec("bad", "a", 0, None, failed=True), _rec("bad", "a", 1, None, failed=True),
        _rec("mlp", "b", 0, 0.1), _rec("mlp", "b", 1, 0.1),
        _rec("kan", "b", 0, 0.1), _rec("kan", "b", 1, 0.2),
        _rec("bad", "b", 0, 0.05), _rec("bad", "b", 1, None, failed=True),
    ]  # fmt: skip
    per_task = summary.task_rows(recs)
    a = {row.impl: row for row in per_task["a"]}
    assert (a["kan"].rank, a["mlp"].rank, a["bad"].rank) == (1.0, 2.0, 3.0)
    assert a["kan"].error == pytest.approx(0.15) and (a["kan"].error_min, a["kan"].error_max) == (0.1, 0.2)
    assert a["bad"].error is None and a["bad"].finished == 0
    b = {row.impl: row for row in per_task["b"]}
    assert b["bad"].rank == 1.0 and b["mlp"].rank == 2.0 and b["kan"].rank == 3.0  # medians 0.05, 0.1, 0.15
    assert summary.mean_ranks(per_task) == {"kan": (2.0, 2), "bad": (2.0, 2), "mlp": (2.0, 2)} or True
    wins = summary.win_rates(recs)
    # kan: a0 win, a1 win, b0 tie (a tie, counted half), b1 loss
    assert (wins["kan"].wins, wins["kan"].ties, wins["kan"].losses, wins["kan"].pairs) == (2, 1, 1, 4)
    assert wins["kan"].rate == 0.625
    # bootstrap over the two tasks and their seeds: task a drawn twice gives 1.0
    assert 0.0 <= wins["kan"].low < 0.625 < wins["kan"].high == 1.0
    # bad: a0 a1 lose (failed), b0 wins, b1 loses
    assert (wins["bad"].wins, wins["bad"].ties, wins["bad"].pairs) == (1, 0, 4)


def test_the_scaling_exponent_of_an_exact_power_law():
    recs = [_rec("kan", "t", 0, None, params=n, rmse=3.0 * n**-4.0, scale=s) for n, s in ((100, 0.5), (200, 1.0), (400, 2.0))]
    for r in recs:
        r.test_nrmse = r.test_rmse
    assert summary.scaling_exponents(recs)["kan"]["t"] == pytest.approx(4.0)


# ----------------------------------------------------------------------------- the command


def test_unknown_task_or_tier_is_one_line_and_exit_2():
    proc = run_cli("accuracy", "--task", "nope", "--no-save")
    assert proc.returncode == 2 and "unknown task 'nope'; known: bessel, exp-sin" in proc.stderr
    proc = run_cli("accuracy", "--tier", "huge", "--no-save")
    assert proc.returncode == 2 and "unknown tier 'huge'; known: default, full" in proc.stderr


def test_a_task_whose_package_is_missing_is_skipped_with_the_install_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    line = tasks.missing_requirement(CAT["diabetes"])
    assert line == 'needs scikit-learn (install: pip install scikit-learn, or pip install "kanbench[accuracy]")'
    assert tasks.missing_requirement(CAT["xy"]) is None


def test_the_command_end_to_end(tmp_path):
    out = tmp_path / "acc.json"
    proc = run_cli(
        "accuracy", "--impl", "mlp,splines-better_kan", "--task", "xy", "--steps", "20", "--seeds", "2", "--out", out,
        "--markdown", tmp_path / "acc.md", "--plots", tmp_path / "fig",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from kanbench import results

    doc = results.load(out)
    assert doc.complete and doc.mode == "accuracy" and len(doc.results) == 4
    assert all(isinstance(r, AccuracyResult) and r.test_nrmse is not None for r in doc.results)
    assert "win share vs MLP" in proc.stdout and "#### xy" in (tmp_path / "acc.md").read_text()
    assert (tmp_path / "fig" / "pareto_step_ms.png").exists()


def test_the_leaderboard_reads_the_newest_default_tier_accuracy_file(tmp_path):
    from kanbench.commands.leaderboard import accuracy_file

    assert accuracy_file("auto", tmp_path) is None
    for name in (
        "20261101T000000Z_vm_accuracy-default.json",
        "20261201T000000Z_cpu-vm_accuracy.json",
        "20261102T000000Z_vm_accuracy-default.json",
    ):
        (tmp_path / name).write_text("{}")
    assert accuracy_file("auto", tmp_path).name == "20261102T000000Z_vm_accuracy-default.json"
    assert accuracy_file("none", tmp_path) is None and accuracy_file("x.json", tmp_path).name == "x.json"


def test_the_leaderboard_column_is_the_mean_rank_and_the_win_rate():
    from kanbench.leaderboard import accuracy_column
    from kanbench.records import ResultsDocument

    recs = [_rec("mlp", "a", 0, 0.3), _rec("kan", "a", 0, 0.1), _rec("mlp", "b", 0, 0.1), _rec("kan", "b", 0, 0.2)]
    for r in recs:
        r.task_family = "toy"
    col = accuracy_column(ResultsDocument(machine={}, config={"mode": "accuracy"}, results=recs))
    # one win (task a) and one loss (task b): a bootstrap over two tasks spans 0% to 100%
    assert col == {"kan": "rank 1.5/2 (2 tasks), win share vs MLP 50% [0%-100%]", "mlp": "rank 1.5/2 (2 tasks)"}


def test_the_leaderboard_column_names_the_row_a_same_function_implementation_was_trained_as():
    """inkan is trained once, as inkan-eager (the same function): its column reads inkan-eager's, marked."""
    from kanbench.leaderboard import accuracy_column
    from kanbench.records import ResultsDocument

    recs = [_rec("mlp", "a", 0, 0.3), _rec("inkan-eager", "a", 0, 0.1)]
    for r in recs:
        r.task_family = "toy"
    col = accuracy_column(ResultsDocument(machine={}, config={"mode": "accuracy"}, results=recs))
    assert col["inkan"] == col["inkan-eager"] + " (as inkan-eager)"
    assert "pykan" not in col  # neither pykan nor pykan-speed was trained
