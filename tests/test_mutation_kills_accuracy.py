"""Tests written against surviving mutants (make mutate) of the accuracy suite: metrics and summaries
against hand-computed values or scipy/scikit-learn, every task's target function against an
independent formula at random points of its box, the split sizes and the training loop's edges."""

import math

import numpy as np
import pytest
import scipy.special as sp
import torch
from torch import nn

from kanbench.accuracy import data, metrics, suite, summary, tasks, train
from kanbench.accuracy.records import AccuracyResult

CAT = tasks.catalogue()

# ----------------------------------------------------------------------------- metrics


def test_metrics_against_numpy_and_sklearn():
    rng = np.random.default_rng(1)
    pred, y = rng.normal(size=50), rng.normal(size=50)
    assert metrics.rmse(pred, y) == pytest.approx(math.sqrt(np.mean((pred - y) ** 2)), rel=1e-15)
    assert metrics.rmse([1, 2], [1, 4]) == pytest.approx(math.sqrt(2.0), rel=1e-15)  # lists, ints
    assert metrics.nrmse(pred, y) == pytest.approx(metrics.rmse(pred, y) / np.std(y), rel=1e-15)
    assert metrics.nrmse([1.0, 2.0], [3.0, 3.0]) == math.inf  # constant targets
    logits = rng.normal(size=(40, 4))
    labels = rng.integers(0, 4, size=40)
    skm = pytest.importorskip("sklearn.metrics")
    assert metrics.accuracy(logits, labels) == pytest.approx(skm.accuracy_score(labels, logits.argmax(1)), rel=1e-15)
    assert metrics.macro_f1(logits, labels, 4) == pytest.approx(
        skm.f1_score(labels, logits.argmax(1), average="macro"), rel=1e-12
    )
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert metrics.cross_entropy(logits, labels) == pytest.approx(skm.log_loss(labels, probs, labels=range(4)), rel=1e-12)
    # a class never true and never predicted counts 0 (scikit-learn's zero_division default)
    two = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert metrics.macro_f1(two, np.array([0, 1]), 3) == pytest.approx(2 / 3)
    # cross-entropy stays finite for huge logits (the max is subtracted)
    assert metrics.cross_entropy(np.array([[1000.0, 0.0]]), np.array([1])) == pytest.approx(1000.0)
    assert metrics.cross_entropy(np.array([[0.0, 0.0], [3.0, 1.0]]), np.array([0, 0])) == pytest.approx(
        (math.log(2) + math.log(1 + math.exp(-2))) / 2, rel=1e-12
    )


# ----------------------------------------------------------------------------- data


def _raw(n, kind="regression", classes=None, split=None):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    y = (np.arange(n) % classes) if classes else np.arange(n, dtype=np.float64).reshape(-1, 1) ** 2
    return tasks.RawData(x, y, split)


def _task(kind="regression"):
    return tasks.Task("t", kind, "toy", 2, 1, (2, 5, 1), make=None)


def test_split_sizes_exactly():
    s = data.split(_task(), _raw(10), 0)
    assert (len(s.train), len(s.val), len(s.test)) == (6, 2, 2)
    assert sorted(np.concatenate([s.train, s.val, s.test]).tolist()) == list(range(10))
    assert all((np.diff(p) > 0).all() for p in (s.train, s.val, s.test))
    s = data.split(_task(), _raw(10), 0, val_fraction=0.3, test_fraction=0.1)
    assert (len(s.train), len(s.val), len(s.test)) == (6, 3, 1)
    # the permutation is numpy's, seeded with 10000 + data_seed
    idx = np.random.default_rng(10_003).permutation(10)
    s = data.split(_task(), _raw(10), 3)
    assert s.train.tolist() == sorted(idx[:6].tolist()) and s.test.tolist() == sorted(idx[8:].tolist())
    fixed = _raw(10, split={"train": np.arange(8), "test": np.array([8, 9])})
    s = data.split(_task(), fixed, 0)
    assert (len(s.train), len(s.val), s.test.tolist()) == (6, 2, [8, 9])
    perm = np.random.default_rng(10_000).permutation(np.arange(8))
    assert s.val.tolist() == sorted(perm[:2].tolist()) and s.train.tolist() == sorted(perm[2:].tolist())


def test_stratified_split_exactly():
    s = data.split(_task("classification"), _raw(30, classes=3), 0)
    for part, n in ((s.train, 6), (s.val, 2), (s.test, 2)):
        labels = np.arange(30)[part] % 3
        assert [int((labels == c).sum()) for c in range(3)] == [n, n, n]
    s = data.split(_task("classification"), _raw(12, classes=2), 0, val_fraction=0.25, test_fraction=0.25)
    assert (len(s.train), len(s.val), len(s.test)) == (6, 4, 2)  # per class: round(3) train, round(1.5) = 2 val, 1 test


def test_scalers_exactly():
    v = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, 3.0], [4.0, 5.0, 8.0]])
    m = data.Scaler.fit(v, "minmax")
    assert m.shift.tolist() == [2.0, 5.0, 4.5] and m.scale.tolist() == [2.0, 0.5, 3.5]
    assert m.apply(v)[:, 0].tolist() == [-1.0, 0.0, 1.0] and m.apply(v)[:, 1].tolist() == [0.0, 0.0, 0.0]
    s = data.Scaler.fit(v, "standard")
    assert s.shift.tolist() == [2.0, 5.0, 4.0] and s.scale[1] == 1.0
    assert s.scale[0] == pytest.approx(np.std([0.0, 2.0, 4.0]))
    assert np.allclose(s.invert(s.apply(v)), v)
    with pytest.raises(ValueError) as e:
        data.Scaler.fit(v, "robust")
    assert str(e.value) == "unknown scaling 'robust'; known: minmax, standard"


def test_prepare_scales_on_training_only():
    raw = _raw(10)
    p = data.prepare(_task(), raw, 0)
    tr = p.split.train
    assert p.x["train"].min() == -1.0 and p.x["train"].max() == 1.0
    assert np.allclose(p.y["train"].mean(), 0.0) and np.allclose(p.y["train"].std(), 1.0)
    assert np.array_equal(p.y_raw["test"], raw.y[p.split.test])
    assert np.allclose(p.target_scaler.invert(p.y["val"]), raw.y[p.split.val])
    assert p.target_scaler.shift[0] == pytest.approx(raw.y[tr].mean())
    s = data.prepare(_task(), raw, 0, scaling="standard")
    assert np.allclose(s.x["train"].mean(0), 0.0)
    c = data.prepare(_task("classification"), _raw(30, classes=3), 0)
    assert c.target_scaler is None and c.y["train"] is c.y_raw["train"] or np.array_equal(c.y["train"], c.y_raw["train"])


# ----------------------------------------------------------------------------- tasks: every formula


def _reference(name, x):
    c = [x[:, i] for i in range(x.shape[1])]
    pi = math.pi
    ref = {
        "bessel": lambda: sp.j0(20 * c[0]),
        "exp-sin": lambda: np.exp(np.sin(pi * c[0]) + c[1] ** 2),
        "xy": lambda: c[0] * c[1],
        "exp4d": lambda: np.exp(0.5 * (np.sin(pi * (c[0] ** 2 + c[1] ** 2)) + np.sin(pi * (c[2] ** 2 + c[3] ** 2)))),
        "exp100d": lambda: np.exp(sum(np.sin(pi * ci / 2) ** 2 for ci in c) / 100),
        "ellipkinc": lambda: sp.ellipkinc(c[0], c[1]),
        "ellipeinc": lambda: sp.ellipeinc(c[0], c[1]),
        "ellipj-sn": lambda: sp.ellipj(c[0], c[1])[0],
        "jv": lambda: sp.jv(c[0], c[1]),
        "yv": lambda: sp.yv(c[0], c[1]),
        "kv": lambda: sp.kv(c[0], c[1]),
        "iv": lambda: sp.iv(c[0], c[1]),
        "lpmv0": lambda: sp.lpmv(0, c[0], c[1]),
        "lpmv1": lambda: sp.lpmv(1, c[0], c[1]),
        "lpmv2": lambda: sp.lpmv(2, c[0], c[1]),
    }
    if name in ref:
        return ref[name]()
    if name.startswith("kbf-"):  # KANbeFair's src/data/special.py: x0, x1 on [0, 1)
        kbf = {  # ellipkinc, ellipeinc, lpmv0 and lpmv1 are the formulas above, on its box
            "jvp": lambda: sp.jvp(c[0], c[1]),
            "ivp": lambda: sp.ivp(c[0], c[1]),
            # Re Y_n^0 at polar angle x1 = sqrt((2n+1)/(4 pi)) P_n(cos x1)
            "sphharm01": lambda: math.sqrt(3 / (4 * pi)) * np.cos(c[1]),
            "sphharm02": lambda: math.sqrt(5 / (4 * pi)) * (3 * np.cos(c[1]) ** 2 - 1) / 2,
        }
        return (kbf.get(name[4:]) or ref[name[4:]])()
    if name.startswith("sph-harm"):
        n, m = int(name.split("-")[2]), int(name.split("-")[3])
        theta, phi = c[0], c[1]
        # Re Y_n^m = N P_n^m(cos theta) cos(m phi), N = sqrt((2n+1)/(4 pi) (n-m)!/(n+m)!), Condon-Shortley in lpmv
        norm = math.sqrt((2 * n + 1) / (4 * pi) * math.factorial(n - m) / math.factorial(n + m))
        return norm * sp.lpmv(m, n, np.cos(theta)) * np.cos(m * phi)
    f = {
        "I.6.20": lambda: np.exp(-(c[0] ** 2) / 2 / c[1] ** 2) / np.sqrt(2 * pi) / c[1],
        "I.29.16": lambda: np.sqrt(np.abs((c[0] - c[1] * np.cos(c[2] - c[3])) ** 2 + (c[1] * np.sin(c[2] - c[3])) ** 2)),
        "I.12.11": lambda: c[0] * c[1] + c[0] * c[2] * c[3] * np.sin(c[4]),
        "I.13.12": lambda: c[0] * c[1] * c[2] / c[4] - c[0] * c[1] * c[2] / c[3],
        "I.16.6": lambda: (c[0] + c[1]) * c[2] ** 2 / (c[2] ** 2 + c[0] * c[1]),
        "I.27.6": lambda: c[0] * c[2] / (c[2] + c[1] * c[0]),
        "I.37.4": lambda: c[0] + c[1] + 2 * np.sqrt(c[0]) * np.sqrt(c[1]) * np.cos(c[2]),
        "I.40.1": lambda: c[0] / np.exp(c[1] * c[2] * c[3] / c[4] / c[5]),
        "II.6.15a": lambda: 0.75 / pi / c[0] * c[1] * c[2] * np.hypot(c[3], c[4]) / c[5] ** 5,
        "II.35.21": lambda: c[0] * c[1] * np.tanh(c[1] * c[2] / c[3] / c[4]),
        "III.9.52": lambda: c[0] * c[1] * c[2] / c[3] * (np.sin((c[4] - c[5]) * c[2] / 2) / ((c[4] - c[5]) * c[2] / 2)) ** 2,
    }
    return f[name.split("-", 1)[1]]()


@pytest.mark.parametrize("name", [n for n, t in CAT.items() if t.family != "tabular"])
def test_each_task_built_at_test_time_matches_an_independent_formula(name, monkeypatch):
    task = tasks.catalogue()[name]
    raw = task.make(7)
    n = 2000 if name != "exp100d" else 2000
    assert raw.x.shape == (n, task.dim) and raw.y.shape == (n, 1) and raw.y.dtype == np.float64
    assert raw.split["train"].tolist() == list(range(1000)) and raw.split["test"].tolist() == list(range(1000, 2000))
    expected = _reference(name, raw.x)
    assert np.allclose(raw.y[:, 0], expected, rtol=1e-9, atol=1e-12), name
    assert task.kind == "regression" and task.outputs == 1 and len(task.widths) >= 3 and task.widths[0] == task.dim


# the box of every generated task: its generated inputs fill it (2000 uniform points reach within 2% of each end)
BOXES = {
    "bessel": [(-1, 1)],
    "exp-sin": [(-1, 1)] * 2,
    "xy": [(-1, 1)] * 2,
    "exp4d": [(-1, 1)] * 4,
    "ellipkinc": [(-1, 1), (0, 0.9)],
    "ellipeinc": [(-1, 1), (0, 0.9)],
    "ellipj-sn": [(-1, 1), (0, 0.9)],
    "jv": [(0, 2), (0.5, 5)],
    "yv": [(0, 2), (1, 5)],
    "kv": [(0, 2), (0.5, 3)],
    "iv": [(0, 2), (0.5, 3)],
    "lpmv0": [(0, 3), (-0.8, 0.8)],
    "lpmv1": [(0, 3), (-0.8, 0.8)],
    "lpmv2": [(0, 3), (-0.8, 0.8)],
    "sph-harm-1-1": [(0, math.pi), (0, 2 * math.pi)],
    "sph-harm-2-1": [(0, math.pi), (0, 2 * math.pi)],
    "feynman-I.6.20": [(-1, 1), (0.5, 2)],
    "feynman-I.29.16": [(-1, 1), (-1, 1), (0, 2 * math.pi), (0, 2 * math.pi)],
    "feynman-I.12.11": [(-1, 1)] * 4 + [(0, 2 * math.pi)],
    "feynman-I.13.12": [(0, 1), (0, 1), (0, 1), (0.5, 2), (0.5, 2)],
    "feynman-I.16.6": [(-0.8, 0.8), (-0.8, 0.8), (1, 2)],
    "feynman-I.27.6": [(0.5, 2), (1, 2), (0.5, 2)],
    "feynman-I.37.4": [(0.1, 1), (0.1, 1), (0, 2 * math.pi)],
    "feynman-I.40.1": [(0, 1), (-1, 1), (-1, 1), (-1, 1), (1, 2), (1, 2)],
    "feynman-II.6.15a": [(0.5, 2), (0, 1), (0, 1), (0, 1), (0, 1), (0.5, 2)],
    "feynman-II.35.21": [(0, 1), (0, 1), (0, 1), (0.5, 2), (0.5, 2)],
    "feynman-III.9.52": [(0, 1), (0, 1), (0, 1), (0.5, 2), (0, math.pi), (0, math.pi)],
}


@pytest.mark.parametrize("name", sorted(BOXES))
def test_each_task_built_at_test_time_fills_its_box(name):
    x = tasks.catalogue()[name].make(0).x
    for (lo, hi), col in zip(BOXES[name], x.T):
        span = hi - lo
        assert lo <= col.min() <= lo + 0.02 * span and hi - 0.02 * span <= col.max() <= hi, (name, lo, hi)
    assert x.shape[1] == len(BOXES[name])


def test_uniform_draws_exactly():
    x = tasks._uniform(5, 3, [(0.0, 2.0), (-1.0, 1.0)])
    u = np.random.default_rng(5).random((3, 2))
    assert np.array_equal(x, np.array([0.0, -1.0]) + u * np.array([2.0, 2.0]))
    assert tasks._box(3, 0.5, 2.0) == [(0.5, 2.0)] * 3 and tasks._box(2) == [(-1.0, 1.0)] * 2


def test_the_catalogue_and_its_tiers():
    CAT = tasks.catalogue()
    names = list(CAT)
    assert [n for n in names if n.startswith("kbf-")] == [
        "kbf-ellipkinc",
        "kbf-ellipeinc",
        "kbf-jvp",
        "kbf-ivp",
        "kbf-lpmv0",
        "kbf-lpmv1",
        "kbf-sphharm01",
        "kbf-sphharm02",
    ]
    assert all(CAT[n].tier == "full" and CAT[n].family == "kanbefair" for n in names if n.startswith("kbf-"))
    assert names[:5] == ["bessel", "exp-sin", "xy", "exp4d", "exp100d"] and names[-4:] == [
        "diabetes",
        "breast-cancer",
        "wine",
        "digits",
    ]
    default = [t.name for t in tasks.select(None, "default")]
    assert default == [
        "bessel",
        "exp-sin",
        "xy",
        "ellipkinc",
        "feynman-I.6.20",
        "diabetes",
        "breast-cancer",
    ]
    assert len(tasks.select("", "full")) == len(CAT)
    assert [t.name for t in tasks.select(" xy, ,bessel", "default")] == ["xy", "bessel"]
    for args, msg in [((None, "all"), "unknown tier 'all'; known: default, full"), ((" , ", "full"), "no task selected")]:
        with pytest.raises(tasks.TaskError) as e:
            tasks.select(*args)
        assert str(e.value) == msg
    with pytest.raises(tasks.TaskError, match="^unknown task 'nope'; known: bessel, exp-sin, "):
        tasks.select("nope", "full")
    assert CAT["exp100d"].in_tier("full") and not CAT["exp100d"].in_tier("default") and CAT["xy"].in_tier("default")
    assert CAT["exp100d"].widths == (100, 1, 1) and CAT["exp4d"].widths == (4, 4, 2, 1) and CAT["bessel"].widths == (1, 5, 1)
    assert CAT["jv"].widths == (2, 5, 1) and CAT["jv"].requires == ("scipy",) and CAT["jv"].family == "special"
    assert CAT["feynman-I.6.20"].tier == "default" and CAT["feynman-I.12.11"].tier == "full" and CAT["feynman-I.12.11"].dim == 5
    tab = {n: (t.kind, t.dim, t.outputs, t.widths, t.target, t.tier, t.requires) for n, t in CAT.items() if t.family == "tabular"}
    assert tab == {
        "diabetes": ("regression", 10, 1, (10, 5, 1), 0.8, "default", ("sklearn",)),
        "breast-cancer": ("classification", 30, 2, (30, 5, 2), 0.95, "default", ("sklearn",)),
        "wine": ("classification", 13, 3, (13, 5, 3), 0.95, "full", ("sklearn",)),
        "digits": ("classification", 64, 10, (64, 10, 10), 0.9, "full", ("sklearn",)),
    }
    assert all(t.target == 0.05 for t in CAT.values() if t.family != "tabular")


def test_each_tabular_task_built_at_test_time_types_and_requirements(monkeypatch):
    pytest.importorskip("sklearn")
    CAT = tasks.catalogue()
    d = CAT["diabetes"].make(0)
    assert d.y.shape == (442, 1) and d.y.dtype == np.float64 and d.x.shape == (442, 10) and d.split is None
    assert d.x.dtype == np.float64 and np.isfinite(d.x).all()
    import sklearn.datasets

    ref = sklearn.datasets.load_diabetes()
    assert np.array_equal(d.x, ref.data) and np.array_equal(d.y[:, 0], ref.target)
    w = CAT["wine"].make(0)
    assert w.y.shape == (178,) and w.y.dtype == np.int64 and sorted(set(w.y.tolist())) == [0, 1, 2]
    assert np.array_equal(w.x, sklearn.datasets.load_wine().data) and w.x.dtype == np.float64
    b = CAT["breast-cancer"].make(0)
    assert b.x.shape == (569, 30) and sorted(set(b.y.tolist())) == [0, 1] and b.y.dtype == np.int64
    g = CAT["digits"].make(0)
    assert g.x.shape == (1797, 64) and g.y.dtype == np.int64 and len(set(g.y.tolist())) == 10
    assert tasks.missing_requirement(CAT["wine"]) is None and tasks.missing_requirement(CAT["xy"]) is None
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert (
        tasks.missing_requirement(CAT["wine"])
        == 'needs scikit-learn (install: pip install scikit-learn, or pip install "kanbench[accuracy]")'
    )
    assert tasks.missing_requirement(CAT["jv"]) == 'needs scipy (install: pip install scipy, or pip install "kanbench[accuracy]")'


# ----------------------------------------------------------------------------- train


def _prepared(kind="regression"):
    if kind == "regression":
        raw = _raw(20)
        return _task(), data.prepare(_task(), raw, 0)
    t = tasks.Task("c", "classification", "toy", 2, 3, (2, 5, 3), make=None, target=0.5)
    return t, data.prepare(t, _raw(30, classes=3), 0)


def test_train_config_and_helpers():
    for kw, msg in [
        ({"optimizer": "sgd"}, "unknown optimizer 'sgd'; known: adam, lbfgs"),
        ({"steps": 0}, "steps and eval_every must be at least 1"),
        ({"eval_every": 0}, "steps and eval_every must be at least 1"),
    ]:
        with pytest.raises(ValueError) as e:
            train.TrainConfig(**kw)
        assert str(e.value) == msg
    train.TrainConfig(steps=1, eval_every=1, optimizer="lbfgs")
    assert train.TrainConfig() == train.TrainConfig("adam", 500, 10, 120.0)
    assert train.step_summary([]) == (None, None)
    assert train.step_summary([1.0, 2.0, 3.0, 4.0, 5.0]) == (3.0, 2.0)
    reg, _ = _prepared()
    cls, _ = _prepared("classification")
    assert train._headline(reg, {"nrmse": 0.3}) == 0.3 and train._headline(reg, {"nrmse": math.nan}) == math.inf
    assert train._headline(cls, {"accuracy": 0.75}) == 0.25
    assert train._meets_target(reg, {"nrmse": 0.05}) and not train._meets_target(reg, {"nrmse": 0.0500001})
    assert train._meets_target(cls, {"accuracy": 0.5}) and not train._meets_target(cls, {"accuracy": 0.4999})
    assert train._loss_fn(reg) is torch.nn.functional.mse_loss and train._loss_fn(cls) is torch.nn.functional.cross_entropy


def test_evaluate_in_the_tasks_units():
    task, p = _prepared()
    x, y = train._tensors(p, task, "cpu", torch.float64)
    assert x["train"].dtype == torch.float64 and y["val"].dtype == torch.float64

    class Truth(nn.Module):  # predicts the standardized target exactly for the val rows
        def forward(self, xv):
            return torch.as_tensor(p.y["val"], dtype=xv.dtype)

    m = train.evaluate(Truth(), x, task, p, "val")
    assert m["rmse"] == pytest.approx(0.0, abs=1e-9) and m["nrmse"] == pytest.approx(0.0, abs=1e-9)
    ctask, cp = _prepared("classification")
    cx, cy = train._tensors(cp, ctask, "cpu", torch.float32)
    assert cy["train"].dtype == torch.long

    class Onehot(nn.Module):
        def forward(self, xv):
            return torch.nn.functional.one_hot(torch.as_tensor(cp.y["test"]), 3).float() * 5

    m = train.evaluate(Onehot(), cx, ctask, cp, "test")
    assert (
        m["accuracy"] == 1.0
        and m["macro_f1"] == 1.0
        and m["cross_entropy"] == pytest.approx(-math.log(math.exp(5) / (math.exp(5) + 2)))
    )


class _Const(nn.Module):
    def __init__(self, dim=2, out=1):
        super().__init__()
        self.lin = nn.Linear(dim, out)

    def forward(self, x):
        return self.lin(x)


def test_train_once_records_curve_steps_and_target():
    task, p = _prepared()
    torch.manual_seed(0)
    out = train.train_once(
        _Const().double(), task, p, train.TrainConfig(steps=25, eval_every=10, budget_s=None), 0.1, "cpu", torch.float64
    )
    assert [c[0] for c in out.curve] == [0, 10, 20, 25]
    assert len(out.step_ms) == 25 and out.train_s == pytest.approx(sum(out.step_ms) / 1e3)
    assert out.best_step in (0, 10, 20, 25) and out.val == min(c[1] for c in out.curve) or out.val <= out.curve[0][1]
    assert set(out.test) == {"rmse", "nrmse", "mae"} and out.final_train_loss is not None and out.error is None
    assert out.val_accuracy is None
    # LBFGS: one iteration per step
    torch.manual_seed(0)
    lb = train.train_once(
        _Const().double(), task, p, train.TrainConfig("lbfgs", steps=3, eval_every=1, budget_s=None), 1.0, "cpu", torch.float64
    )
    assert [c[0] for c in lb.curve] == [0, 1, 2, 3] and lb.error is None
    assert lb.steps_to_target is None and lb.time_to_target_s is None  # a line cannot fit x^2 within 5%
    easy = tasks.Task("t", "regression", "toy", 2, 1, (2, 5, 1), make=None, target=0.5)
    torch.manual_seed(0)
    lb = train.train_once(
        _Const().double(), easy, p, train.TrainConfig("lbfgs", steps=3, eval_every=1, budget_s=None), 1.0, "cpu", torch.float64
    )
    first = next(s for s, v in lb.curve if v <= 0.5)
    assert (
        lb.steps_to_target == first
        and first > 0
        and lb.time_to_target_s == pytest.approx(sum(lb.step_ms[:first]) / 1e3, abs=1e-4)
    )


def test_train_once_classification_and_budget():
    task, p = _prepared("classification")
    torch.manual_seed(0)
    out = train.train_once(
        _Const(2, 3), task, p, train.TrainConfig(steps=5, eval_every=2, budget_s=None), 0.1, "cpu", torch.float32
    )
    assert [c[0] for c in out.curve] == [0, 2, 4, 5] and set(out.test) == {"accuracy", "macro_f1", "cross_entropy"}
    assert out.val_accuracy is not None and out.val == pytest.approx(1 - out.val_accuracy)
    slow = train.train_once(
        _Const(2, 3), task, p, train.TrainConfig(steps=5, eval_every=2, budget_s=1e-9), 0.1, "cpu", torch.float32
    )
    assert (slow.error_kind, slow.error) == ("budget", "stopped after 1 of 5 steps: over the 1e-09 s budget")
    assert slow.test and len(slow.step_ms) == 1


def test_a_model_that_diverges_at_the_first_step():
    task, p = _prepared()

    class Nan(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return self.w * x[:, :1] * (float("nan") if self.training else 1.0)

    out = train.train_once(Nan(), task, p, train.TrainConfig(steps=5, budget_s=None), 0.1, "cpu", torch.float32)
    assert (out.error_kind, out.error) == ("diverged", "diverged at step 1: the training loss is nan")
    assert out.val is None and out.test == {} and out.final_train_loss is None and out.curve[0][0] == 0


# ----------------------------------------------------------------------------- suite


def test_suite_config_plan_and_choice():
    cfg = suite.SuiteConfig()
    assert cfg.to_dict() == {
        "seeds": [0, 1],
        "lrs": [1e-2, 3e-3],
        "trials": None,
        "lr_range": None,
        "patience": None,
        "budgets": [1.0],
        "optimizer": "adam",
        "steps": 500,
        "eval_every": 10,
        "budget_s": 120.0,
        "scaling": "minmax",
        "device": "cpu",
        "dtype": "float32",
        "data_seed": 0,
        "match": "params",
        "absolute_budgets": False,
    }
    assert suite.TIER_DEFAULTS["default"] == {
        "seeds": 5,
        "trials": 4,
        "lrs": (3e-2, 1e-2, 3e-3),
        "budgets": (1.0,),
        "steps": 800,
        "patience": 150,
    }
    units = suite.plan([CAT["xy"], CAT["bessel"]], ["a", "b"], suite.SuiteConfig(budgets=(1.0, 2.0)))
    assert [(u.task.name, u.budget_scale, u.impl) for u in units] == [
        ("xy", 1.0, "a"),
        ("xy", 1.0, "b"),
        ("xy", 2.0, "a"),
        ("xy", 2.0, "b"),
        ("bessel", 1.0, "a"),
        ("bessel", 1.0, "b"),
        ("bessel", 2.0, "a"),
        ("bessel", 2.0, "b"),
    ]
    assert [u.impl for u in suite.plan([CAT["xy"]], ["a", "b", "c"], cfg, (1, 2))] == ["b"]
    O = train.Outcome
    assert suite._choose({0.1: [O(0.1, val=0.2)], 0.01: [O(0.01, val=0.2)]}) == 0.01  # a tie: the smaller rate
    assert suite._choose({0.1: [O(0.1, val=0.1, error_kind="budget")], 0.01: [O(0.01, val=0.5)]}) == 0.01
    assert suite._choose({0.1: [O(0.1, val=0.1), O(0.1, val=0.9), O(0.1, val=0.2)], 0.01: [O(0.01, val=0.3)] * 3}) == 0.1
    kept, left = suite.default_implementations(["inkan-eager", "inkan", "pykan"])
    assert kept == ["inkan-eager", "pykan"] and left == [("inkan", "inkan-eager")]


class _SpecF:
    name = "s"
    family = "fam"

    def __init__(self, flops=None):
        self.flops = flops


def test_record_fields_exactly():
    unit = suite.Unit(CAT["xy"], "s", 2.0)
    cfg = suite.SuiteConfig(lrs=(0.1, 0.01), train=train.TrainConfig(steps=7))
    out = train.Outcome(
        0.1,
        val=0.25,
        best_step=3,
        test={"rmse": 1.5, "nrmse": 0.5},
        final_train_loss=0.01,
        step_ms=[1.0, 3.0, 2.0],
        train_s=0.123456,
        steps_to_target=4,
        time_to_target_s=0.1,
        curve=[[0, 1.0]],
    )
    r = suite._record(unit, 3, _SpecF(lambda w: 10 * w[1]), (2, 4, 1), 40, 80.0, cfg, 0.1, out)
    assert (r.impl, r.task, r.seed, r.family, r.task_family, r.kind, r.widths, r.params, r.budget, r.budget_scale) == (
        "s",
        "xy",
        3,
        "fam",
        "toy",
        "regression",
        [2, 4, 1],
        40,
        80.0,
        2.0,
    )
    assert (r.optimizer, r.lr, r.lr_grid, r.steps, r.target, r.flops_per_sample) == ("adam", 0.1, [0.1, 0.01], 7, 0.05, 40.0)
    assert (r.best_step, r.final_train_loss, r.step_ms, r.step_ms_iqr, r.steps_to_target, r.time_to_target_s) == (
        3,
        0.01,
        2.0,
        1.0,
        4,
        0.1,
    )
    assert (r.train_s, r.curve, r.val_nrmse, r.test_rmse, r.test_nrmse, r.failed) == (0.1235, [[0, 1.0]], 0.25, 1.5, 0.5, False)
    bad = suite._record(unit, 0, _SpecF(lambda w: 1 / 0), (2, 4, 1), None, None, cfg, None, None)
    bare = suite._record(unit, 0, type("Bare", (), {"name": "b"})(), (2, 4, 1), None, None, cfg, None, None)
    assert bare.flops_per_sample is None and bare.family == "" and bare.device == "cpu"
    assert bad.flops_per_sample is None and bad.best_step is None and bad.family == "fam"
    assert suite._record(unit, 0, None, (2, 4, 1), None, None, cfg, None, None).family == ""
    cunit = suite.Unit(CAT["wine"], "s")
    cout = train.Outcome(
        0.1,
        val=0.2,
        val_accuracy=0.8,
        test={"accuracy": 0.7, "macro_f1": 0.6, "cross_entropy": 0.5},
        error_kind="budget",
        error="over  budget",
    )
    c = suite._record(cunit, 0, _SpecF(), (13, 5, 3), 9, 9.0, cfg, 0.1, cout)
    assert (c.val_accuracy, c.test_accuracy, c.test_macro_f1, c.test_cross_entropy, c.val_nrmse) == (0.8, 0.7, 0.6, 0.5, None)
    assert (c.error_kind, c.error) == ("budget", "over budget")


def test_run_unit_crash_message_and_progress(monkeypatch):
    from kanbench import matching

    class Reg:
        def get(self, name):
            return type("I", (), {"spec": Boom()})()

    class Boom:
        name, family, flops = "boom", "x", None

        def build(self, widths, device=None, dtype=None):
            raise ValueError("\n  first line  \nsecond")

    monkeypatch.setattr(suite, "_budget", lambda registry, task, scale, cache, metric="params", absolute=False: 50.0)
    monkeypatch.setattr(
        matching,
        "match",
        lambda spec, nominal, target, metric, options=None: matching.Match("boom", metric, target, (2, 3, 1), 50.0),
    )
    cfg = suite.SuiteConfig(seeds=(0, 1), lrs=(0.1,), train=train.TrainConfig(steps=2))
    seen = []
    recs = suite.run(
        [suite.Unit(CAT["xy"], "boom")], Reg(), cfg, progress=lambda i, n, u, r, t: seen.append((i, n, u.impl, len(r)))
    )
    assert [(r.seed, r.error_kind, r.error, r.widths, r.budget) for r in recs] == [
        (0, "crash", "ValueError: first line", [2, 3, 1], 50.0),
        (1, "crash", "ValueError: first line", [2, 3, 1], 50.0),
    ]
    assert seen == [(1, 1, "boom", 2)]
    cache = {}
    monkeypatch.undo()
    monkeypatch.setattr(matching, "default_target", lambda registry, widths, metric: (cache.setdefault("n", 0), 100.0)[1])
    assert suite._budget(None, CAT["xy"], 0.5, cache) == 50.0 and suite._budget(None, CAT["xy"], 2.0, cache) == 200.0
    assert cache[(CAT["xy"].widths, "params")] == 100.0


# ----------------------------------------------------------------------------- summary


def _rec(impl, task, seed, nrmse, params=100, scale=1.0, rmse=None, failed=False, **kw):
    r = AccuracyResult(
        impl=impl,
        task=task,
        seed=seed,
        test_nrmse=nrmse,
        test_rmse=rmse if rmse is not None else nrmse,
        params=params,
        budget_scale=scale,
        **kw,
    )
    return r.fail("diverged", "boom") if failed else r


def test_task_rows_fields_exactly():
    recs = [
        _rec("a", "t", 0, 0.3, step_ms=1.0, steps_to_target=10, lr=0.1),
        _rec("a", "t", 1, 0.1, step_ms=3.0, steps_to_target=None),
        _rec("a", "t", 2, None, failed=True, step_ms=5.0),
        _rec("a", "t", 3, math.inf),
        _rec("b", "t", 0, 0.2, scale=2.0),
    ]
    (row,) = summary.task_rows(recs)["t"]
    assert (row.impl, row.task, row.budget_scale, row.error, row.error_min, row.error_max, row.rmse) == (
        "a",
        "t",
        1.0,
        0.2,
        0.1,
        0.3,
        0.2,
    )
    assert (row.params, row.step_ms, row.steps_to_target, row.lr, row.finished, row.seeds) == (100, 3.0, 10.0, 0.1, 2, 4)
    assert row.failures == ["diverged: boom"] and row.rank == 1.0
    (b,) = summary.task_rows(recs, budget_scale=2.0)["t"]
    assert b.impl == "b" and b.error == 0.2
    ties = summary.task_rows(
        [_rec("z", "t", 0, 0.1), _rec("y", "t", 0, 0.1), _rec("x", "t", 0, None, failed=True), _rec("w", "t", 0, 0.05)]
    )["t"]
    assert [(r.impl, r.rank) for r in ties] == [("w", 1.0), ("y", 2.5), ("z", 2.5), ("x", 4.0)]
    assert summary._median([None, 3.0, 1.0]) == 2.0 and summary._median([None]) is None and summary._median([]) is None
    c = AccuracyResult(impl="c", task="t", seed=0, kind="classification", test_accuracy=0.75)
    assert (
        c.score == 0.25 and summary._ok(c) and not summary._ok(AccuracyResult(impl="c", task="t", seed=0, kind="classification"))
    )


def test_win_rates_exactly():
    recs = [_rec("mlp", "t", s, 0.5) for s in range(3)] + [
        _rec("k", "t", 0, 0.4),
        _rec("k", "t", 1, 0.5),
        _rec("k", "t", 2, 0.6),
        _rec("k", "t", 9, 0.1),  # seed 9: no MLP pair
        _rec("k", "u", 0, 0.1),
        _rec("mlp", "u", 0, None, failed=True),  # the MLP failed: a win
        _rec("k", "v", 0, None, failed=True),
        _rec("mlp", "v", 0, None, failed=True),  # both failed: left out
        _rec("k", "t", 0, 0.0, scale=2.0),
    ]
    w = summary.win_rates(recs)
    # t0 win, t1 tie, t2 loss, u0 win (the MLP failed); v both failed: left out
    assert (w["k"].wins, w["k"].ties, w["k"].losses, w["k"].pairs, w["k"].rate) == (2, 1, 1, 4, 0.625)
    assert 0.0 <= w["k"].low <= 0.625 <= w["k"].high <= 1.0
    assert set(w) == {"k"} and summary.WinRate("k", 0, 0, 0, 0.0, 1.0).rate != summary.WinRate("k", 0, 0, 0, 0.0, 1.0).rate
    assert summary.win_rates(recs, budget_scale=2.0) == {}
    assert summary.win_rates([_rec("k", "t", 0, 0.1)]) == {}
    assert set(summary.win_rates(recs, baseline="k")) == {"mlp"}


def test_mean_ranks_and_scaling_exactly():
    per_task = summary.task_rows(
        [_rec("a", "t", 0, 0.1), _rec("b", "t", 0, 0.2), _rec("a", "u", 0, 0.3), _rec("b", "u", 0, 0.2), _rec("c", "u", 0, 0.9)]
    )
    assert summary.mean_ranks(per_task) == {"b": (1.5, 2), "a": (1.5, 2), "c": (3.0, 1)} or list(
        summary.mean_ranks(per_task)
    ) == ["a", "b", "c"]
    ranks = summary.mean_ranks(per_task)
    assert ranks["a"] == (1.5, 2) and ranks["c"] == (3.0, 1) and list(ranks)[-1] == "c"
    recs = [_rec("k", "t", s, r, params=n) for s, (n, r) in enumerate([(100, 1.0), (100, 3.0), (400, 0.5), (1600, 0.25)])]
    recs += [
        _rec("k", "one", 0, 1.0, params=100),
        _rec("k", "t", 9, 0.0, params=800),
        _rec("k", "t", 10, 0.1, params=700, rmse=-1.0),
        _rec("k", "t", 8, 0.1, params=None),
        _rec("k", "t", 11, 0.1, params=0),
        _rec("k", "t", 7, 0.1, params=300, failed=True),
        _rec("c", "t", 0, 1.0, params=100, kind="classification", test_accuracy=0.5),
        _rec("c", "t", 1, 2.0, params=200, kind="classification", test_accuracy=0.5),
    ]
    alpha = summary.scaling_exponents(recs)
    # medians: 100 -> 2.0, 400 -> 0.5, 1600 -> 0.25; least squares of log e on log n
    n, e = np.log([100, 400, 1600]), np.log([2.0, 0.5, 0.25])
    assert alpha == {"k": {"t": pytest.approx(-np.polyfit(n, e, 1)[0], rel=1e-12)}}


def test_every_tasks_metadata():
    special = {"ellipkinc": "default"} | {
        n: "full"
        for n in ("ellipeinc", "ellipj-sn", "jv", "yv", "kv", "iv", "lpmv0", "lpmv1", "lpmv2", "sph-harm-1-1", "sph-harm-2-1")
    }
    feynman = {"I.6.20": 2, "I.29.16": 4, "I.12.11": 5, "I.13.12": 5, "I.16.6": 3, "I.27.6": 3, "I.37.4": 3, "I.40.1": 6,
               "II.6.15a": 6, "II.35.21": 5, "III.9.52": 6}  # fmt: skip
    cat = tasks.catalogue()
    for name, tier in special.items():
        t = cat[name]
        assert (t.kind, t.family, t.dim, t.outputs, t.widths, t.tier, t.requires) == (
            "regression",
            "special",
            2,
            1,
            (2, 5, 1),
            tier,
            ("scipy",),
        ), name
        assert t.source.startswith("KAN paper section 3.2") and t.note
    for name, dim in feynman.items():
        t = cat["feynman-" + name]
        tier = "default" if name == "I.6.20" else "full"
        assert (t.kind, t.family, t.dim, t.outputs, t.widths, t.tier, t.requires) == (
            "regression",
            "feynman",
            dim,
            1,
            (dim, 5, 1),
            tier,
            (),
        ), name
        assert t.source.startswith("AI Feynman")
    for name, (dim, widths, tier) in {"bessel": (1, (1, 5, 1), "default"), "exp-sin": (2, (2, 5, 1), "default"),
                                      "xy": (2, (2, 5, 1), "default"), "exp4d": (4, (4, 4, 2, 1), "full"),
                                      "exp100d": (100, (100, 1, 1), "full")}.items():  # fmt: skip
        t = cat[name]
        assert (t.kind, t.family, t.dim, t.outputs, t.widths, t.tier, t.requires) == (
            "regression",
            "toy",
            dim,
            1,
            widths,
            tier,
            (),
        )
        assert t.source == tasks.PAPER
    assert len(cat) == 5 + 12 + 8 + 11 + 4  # toys, special functions, KANbeFair's, Feynman, tabular
    assert all(isinstance(t.formula, str) and t.formula.strip() and t.source.strip() for t in cat.values())
    assert all(t.note.strip() for t in cat.values() if t.family == "special")


def test_metrics_keep_float64_for_float32_inputs():
    rng = np.random.default_rng(3)
    p32, y32 = rng.normal(size=1000).astype(np.float32), rng.normal(size=1000).astype(np.float32)
    p64, y64 = p32.astype(np.float64), y32.astype(np.float64)
    assert metrics.rmse(p32, y32) == math.sqrt(np.mean((p64 - y64) ** 2))
    assert metrics.nrmse(p32, y32) == math.sqrt(np.mean((p64 - y64) ** 2)) / float(np.std(y64))
    logits = (rng.normal(size=(300, 3)) * 30).astype(np.float32)
    labels = rng.integers(0, 3, size=300)
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    ref = float(-np.mean((z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(300), labels]))
    assert metrics.cross_entropy(logits, labels) == ref
    # the max is per row: a row whose logits are all far below another row's still counts
    assert metrics.cross_entropy(np.array([[0.0, 0.0], [-2000.0, -2000.0]]), np.array([0, 1])) == pytest.approx(math.log(2))


def test_summary_edges_exactly():
    # only positive RMSEs enter the fit; two budgets are enough
    recs = [_rec("k", "t", 0, 1.0, params=100), _rec("k", "t", 1, 0.25, params=400), _rec("k", "t", 2, 0.0, params=200)]
    assert summary.scaling_exponents(recs) == {"k": {"t": pytest.approx(1.0, rel=1e-12)}}
    assert summary.scaling_exponents(recs[:1]) == {}
    recs2 = [
        _rec("z", "t", 0, 1.0, params=100),
        _rec("a", "t", 0, 1.0, params=100),
        _rec("a", "t", 1, 0.5, params=200),
        _rec("b", "u", 0, 1.0, params=10),
        _rec("b", "u", 1, 0.1, params=100),
    ]
    assert summary.scaling_exponents(recs2) == {"a": {"t": pytest.approx(1.0)}, "b": {"u": pytest.approx(1.0)}}
    recs3 = [_rec("a", "t", 0, 1.0, params=100), _rec("a", "t", 1, 0.5, params=200), _rec("a", "t", 2, 0.5, params=400)]
    assert summary.scaling_exponents(recs3)["a"]["t"] == pytest.approx(
        -np.polyfit(np.log([100, 200, 400]), np.log([1.0, 0.5, 0.5]), 1)[0]
    )
    per_task = {
        "t": [
            summary.TaskRow("a", "t", 1.0, 0.1, 0.1, 0.1, None, None, None, None, None, 1, 1, [], rank=2.0),
            summary.TaskRow("b", "t", 1.0, 0.1, 0.1, 0.1, None, None, None, None, None, 1, 1, [], rank=1.0),
        ]
    }
    assert list(summary.mean_ranks(per_task)) == ["b", "a"]
    w = summary.win_rates([_rec("mlp", "t", 0, 0.5), _rec("k", "t", 0, 0.4)])["k"]
    assert w.impl == "k" and (w.low, w.high) == (1.0, 1.0)  # one pair, a win in every resample
    rows = summary.task_rows([_rec("a", "t", 0, 0.2), _rec("b", "t", 0, 0.1), _rec("c", "t", 0, 0.1), _rec("d", "t", 0, 0.3)])[
        "t"
    ]
    assert [r.rank for r in rows] == [1.5, 1.5, 3.0, 4.0]


def test_suite_run_unit_end_to_end_on_a_recording_spec(monkeypatch):
    from kanbench import matching

    built, trained, budgets = [], [], []

    class Spec:
        name, family, flops = "rec", "fam", None

        def build(self, widths, device=None, dtype=None):
            built.append((widths, device, dtype))
            return nn.Linear(widths[0], widths[-1]).to(device=device, dtype=dtype)

    class Reg:
        def get(self, name):
            return type("I", (), {"spec": Spec()})()

    monkeypatch.setattr(
        matching,
        "default_target",
        lambda registry, widths, metric: budgets.append((type(registry).__name__, widths, metric)) or 100.0,
    )

    def fake_match(spec, nominal, target, metric, options=None):
        budgets.append(("match", nominal, target, metric))
        return matching.Match(spec.name, metric, target, (2, 7, 1), target)

    monkeypatch.setattr(matching, "match", fake_match)

    def fake_train(model, task, prepared, config, lr, device, dtype):
        trained.append((task.name, lr, str(device), dtype, config.steps))
        return train.Outcome(lr, val=lr, test={"rmse": lr, "nrmse": lr})

    monkeypatch.setattr(suite, "train_once", fake_train)
    cfg = suite.SuiteConfig(seeds=(4, 5), lrs=(0.1, 0.01), budgets=(2.0,), train=train.TrainConfig(steps=3), dtype="float64")
    units = suite.plan([tasks.catalogue()["xy"]], ["rec"], cfg)
    times = iter([10.0, 12.5])
    monkeypatch.setattr(suite.time, "monotonic", lambda: next(times))
    seen = []
    recs = suite.run(units, Reg(), cfg, progress=lambda i, n, u, r, t: seen.append((i, n, u.impl, len(r), t)))
    assert seen == [(1, 1, "rec", 2, 2.5)]
    # matched once per set of options (each trial may take other options; seeds share their trial's)
    assert budgets == [("Reg", (2, 5, 1), "params"), ("match", (2, 5, 1), 200.0, "params")]
    assert built == [((2, 7, 1), torch.device("cpu"), torch.float64)] * 4
    assert trained == [("xy", 0.1, "cpu", torch.float64, 3)] * 2 + [("xy", 0.01, "cpu", torch.float64, 3)] * 2
    assert [(r.seed, r.lr, r.params, r.budget, r.family, r.widths, r.test_rmse) for r in recs] == [
        (4, 0.01, 2 * 1 + 1, 200.0, "fam", [2, 7, 1], 0.01),
        (5, 0.01, 3, 200.0, "fam", [2, 7, 1], 0.01),
    ]
    assert recs[0].device == "cpu" and recs[0].budget_scale == 2.0


def test_suite_prepares_each_task_once_with_its_scaling(monkeypatch):
    calls = []
    real = data.prepare
    monkeypatch.setattr(
        suite.data_mod,
        "prepare",
        lambda task, raw, seed, scaling="minmax": calls.append((task.name, seed, scaling)) or real(task, raw, seed, scaling),
    )
    monkeypatch.setattr(
        suite,
        "run_unit",
        lambda unit, registry, config, data_for, cache: [
            data_for(config.seeds[0]).x["train"].mean(0).tolist(),
            cache,
            data_for(config.seeds[-1]) is data_for(config.seeds[-1]),
        ],
    )
    cfg = suite.SuiteConfig(scaling="standard", data_seed=2)
    cat = tasks.catalogue()
    out = suite.run([suite.Unit(cat["xy"], "a"), suite.Unit(cat["xy"], "b"), suite.Unit(cat["bessel"], "a")], None, cfg)
    # each (task, seed) prepared once, its split seed the run's data seed plus the model seed
    assert calls == [("xy", 2, "standard"), ("xy", 3, "standard"), ("bessel", 2, "standard"), ("bessel", 3, "standard")]
    out = [v for i, v in enumerate(out) if i % 3 != 2]
    assert out[0] == pytest.approx([0.0, 0.0], abs=1e-12) and out[1] == {} and out[1] is out[3] is out[5]
    assert len(out[4]) == 1


def test_lbfgs_is_pykans_configuration():
    task, p = _prepared()
    torch.manual_seed(0)
    ours = train.train_once(
        _Const().double(), task, p, train.TrainConfig("lbfgs", steps=2, eval_every=1, budget_s=None), 0.5, "cpu", torch.float64
    )
    torch.manual_seed(0)
    model = _Const().double()
    x, y = train._tensors(p, task, "cpu", torch.float64)
    opt = torch.optim.LBFGS(list(model.parameters()), lr=0.5, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-32, tolerance_change=1e-32)  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x["train"]), y["train"])
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(2)]
    assert ours.final_train_loss == losses[-1] and ours.lr == 0.5
    assert all(0 <= ms < 60_000 for ms in ours.step_ms)
    assert all(v == round(v, 6) for _, v in ours.curve)


def test_ties_keep_the_earlier_checkpoint_and_the_budget_boundary(monkeypatch):
    task, p = _prepared()
    monkeypatch.setattr(train, "evaluate", lambda model, x, task, prepared, part: {"rmse": 1.0, "nrmse": 0.5})
    out = train.train_once(
        _Const().double(), task, p, train.TrainConfig(steps=4, eval_every=1, budget_s=None), 0.1, "cpu", torch.float64
    )
    assert out.best_step == 0 and out.val == 0.5
    clock = iter([0.0] + [1.0] * 20)
    monkeypatch.setattr(train.time, "monotonic", lambda: next(clock))
    out = train.train_once(
        _Const().double(), task, p, train.TrainConfig(steps=3, eval_every=1, budget_s=1.0), 0.1, "cpu", torch.float64
    )
    assert out.error is None and len(out.step_ms) == 3  # exactly at the budget is not over it


def test_a_crash_after_building_keeps_the_parameter_count(monkeypatch):
    from kanbench import matching

    class Breaks(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            raise RuntimeError("forward broke")

    class Spec:
        name, family, flops = "brk", "fam", None

        def build(self, widths, device=None, dtype=None):
            return Breaks()

    class Reg:
        def get(self, name):
            return type("I", (), {"spec": Spec()})()

    monkeypatch.setattr(suite, "_budget", lambda registry, task, scale, cache, metric="params", absolute=False: 50.0)
    monkeypatch.setattr(
        matching,
        "match",
        lambda spec, nominal, target, metric, options=None: matching.Match("brk", metric, target, (2, 3, 1), 50.0),
    )
    cfg = suite.SuiteConfig(seeds=(0,), lrs=(0.1,), train=train.TrainConfig(steps=2), device="cpu")
    xy = tasks.catalogue()["xy"]
    (rec,) = suite.run_unit(suite.Unit(xy, "brk"), Reg(), cfg, lambda seed: data.prepare(xy, xy.make(seed), seed), {})
    assert (rec.error_kind, rec.error, rec.params, rec.family, rec.kind, rec.optimizer, rec.device) == (
        "crash",
        "RuntimeError: forward broke",
        3,
        "fam",
        "regression",
        "adam",
        "cpu",
    )


def test_adam_in_float32_against_a_plain_loop():
    task, p = _prepared()
    torch.manual_seed(0)
    ours = train.train_once(
        _Const(), task, p, train.TrainConfig(steps=3, eval_every=10, budget_s=None), 0.1, "cpu", torch.float32
    )
    torch.manual_seed(0)
    model = _Const()
    x = torch.as_tensor(p.x["train"], dtype=torch.float32)
    y = torch.as_tensor(p.y["train"], dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert ours.final_train_loss == float(loss)


# ----------------------------------------------------------------------------- survivors of the previous report, one by one


def test_function_tasks_draw_their_points_from_the_seed():
    t = tasks.catalogue()["xy"]
    a, b, c = t.make(3), t.make(3), t.make(4)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and not np.array_equal(a.x, c.x)
    assert a.y.dtype == np.float64 and a.y.shape == (len(a.x), 1)


def test_record_copies_the_device_kind_and_optimizer():
    unit = suite.Unit(tasks.Task("c", "classification", "toy", 2, 3, (2, 5, 3), make=None, target=0.5), "s")
    cfg = suite.SuiteConfig(device="cuda:1", train=train.TrainConfig("lbfgs", steps=3))
    r = suite._record(unit, 0, None, (2, 5, 3), None, None, cfg, None, None)
    assert (r.device, r.kind, r.optimizer, r.steps) == ("cuda:1", "classification", "lbfgs", 3)


def test_time_to_target_is_rounded_to_a_tenth_of_a_millisecond(monkeypatch):
    task, p = _prepared()
    task = tasks.Task(task.name, "regression", "toy", 2, 1, (2, 5, 1), make=None, target=0.05)
    values = iter([1.0, 0.01, 0.01, 0.01])
    monkeypatch.setattr(train, "evaluate", lambda model, x, task, prepared, part: {"rmse": 1.0, "nrmse": next(values)})
    ticks = iter([0.0, 0.0123456789, 1.0, 1.0123456789])
    monkeypatch.setattr(train.time, "perf_counter", lambda: next(ticks))
    out = train.train_once(
        _Const().double(), task, p, train.TrainConfig(steps=2, eval_every=1, budget_s=None), 0.1, "cpu", torch.float64
    )
    assert out.steps_to_target == 1 and out.time_to_target_s == 0.0123


def test_lbfgs_keeps_iterating_after_the_gradient_is_tiny():
    # pykan's tolerances (1e-32): LBFGS goes on past a gradient of 1e-7 (torch's default would stop there)
    task, p = _prepared()
    torch.manual_seed(0)
    ours = train.train_once(
        _Const().double(), task, p, train.TrainConfig("lbfgs", steps=12, eval_every=100, budget_s=None), 1.0, "cpu", torch.float64
    )
    torch.manual_seed(0)
    model = _Const().double()
    x, y = train._tensors(p, task, "cpu", torch.float64)
    opt = torch.optim.LBFGS(list(model.parameters()), lr=1.0, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-32, tolerance_change=1e-32)  # fmt: skip

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x["train"]), y["train"])
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(12)]
    assert ours.final_train_loss == losses[-1]
