"""The accuracy suite's tasks: where each comes from, on which inputs, at which reference shape.

Every task is generated here or loaded from a package that ships its data; nothing is
downloaded. A task returns raw inputs ``x`` (N, dim) and targets ``y`` (N, 1) for regression,
or integer labels (N,) for classification (:class:`RawData`); splitting and scaling are the
protocol's (:mod:`.data`).

Sources:

- **Toy functions**: Liu et al., "KAN: Kolmogorov-Arnold Networks", arXiv 2404.19756, section
  3.1 (figure 3.1): J0(20x), exp(sin(pi x) + y^2), xy, exp((sin(pi(x1^2+x2^2)) +
  sin(pi(x3^2+x4^2)))/2), and exp(1/100 sum_i sin^2(pi x_i / 2)) over 100 inputs; inputs
  uniform on [-1, 1]^d as in pykan's ``create_dataset`` (1000 training, 1000 test points).
- **Special functions** (the KAN paper's section 3.2, table 2; KANbeFair, arXiv 2407.16674,
  uses the same list) from :mod:`scipy.special`. The papers do not state input ranges that
  keep every function finite; the ranges here were chosen and checked so that each
  function is finite and smooth on its whole box (see each task's ``note``): ``yv`` and ``kv``
  are singular at x = 0, ``iv`` and ``jv`` of non-integer order have an infinite derivative
  there (x^v), the elliptic integrals diverge as m -> 1, and the associated Legendre functions
  of non-integer degree diverge at x = -1. ``sph_harm`` became ``sph_harm_y`` in scipy 1.15.
- **KANbeFair's special functions** (``kbf-*``) as its code defines them: see :func:`_kanbefair_tasks`.
- **Feynman equations** (the KAN paper's section 3.3, from Udrescu & Tegmark's AI Feynman
  dataset): the formulas written out here, with the input ranges of the table pykan 0.2.8
  ships in ``kan/feynman.py`` (pykan's dimensionless variants where it has them).
- **Tabular data** bundled with scikit-learn (no download): ``load_diabetes`` (regression, 442 x
  10), ``load_breast_cancer`` (2 classes, 569 x 30), ``load_wine`` (3, 178 x 13), ``load_digits`` (10, 1797 x 64).

Reference widths follow the KAN paper's shapes (a hidden layer of 5 for its one-layer shapes);
tiers: ``default`` (runs on a 2-core machine in minutes) and ``full`` (everything).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

TIERS = ("default", "full")


@dataclass(frozen=True)
class RawData:
    """A task's data before splitting: ``x`` (N, dim) float64; ``y`` (N, 1) float64 or labels (N,) int64.

    ``split`` names a fixed split when the task brings one (e.g. the toy functions' separate
    test draw): index arrays ``{"train": ..., "test": ...}``; otherwise the protocol splits."""

    x: np.ndarray
    y: np.ndarray
    split: Optional[dict] = None


@dataclass(frozen=True)
class Task:
    """One task of the suite: what to learn, where it comes from, its reference shape and target."""

    name: str
    kind: str  #: "regression" or "classification"
    family: str  #: "toy", "special", "feynman", "tabular"
    dim: int  #: inputs
    outputs: int  #: 1 for regression, the number of classes for classification
    widths: tuple  #: reference KAN widths; the parameter budget is our B-spline KAN's at these
    make: Callable[[int], RawData] = field(repr=False)  #: data seed -> RawData
    formula: str = ""
    source: str = ""
    tier: str = "default"  #: the smallest tier that includes it
    #: the validation target "time to target" is measured against: NRMSE (regression) or accuracy
    target: float = 0.05
    requires: tuple = ()  #: importable modules the task needs (skipped with the install line when missing)
    note: str = ""

    def in_tier(self, tier: str) -> bool:
        return TIERS.index(self.tier) <= TIERS.index(tier)


# ----------------------------------------------------------------------------- generated tasks


def _uniform(seed: int, n: int, ranges) -> np.ndarray:
    """n points uniform on the box ``ranges`` [(lo, hi), ...] from a generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    lo = np.array([r[0] for r in ranges], dtype=np.float64)
    hi = np.array([r[1] for r in ranges], dtype=np.float64)
    return lo + rng.random((n, len(ranges))) * (hi - lo)


def _function_task(fn: Callable[[np.ndarray], np.ndarray], ranges, n_train: int = 1000, n_test: int = 1000):
    """pykan's convention: separate uniform draws for training and test points."""

    def make(seed: int) -> RawData:
        x = _uniform(seed, n_train + n_test, ranges)
        y = np.asarray(fn(x), dtype=np.float64).reshape(-1, 1)
        split = {"train": np.arange(n_train), "test": np.arange(n_train, n_train + n_test)}
        return RawData(x, y, split)

    return make


def _box(dim: int, lo: float = -1.0, hi: float = 1.0):
    return [(lo, hi)] * dim


def _j0(x):
    from scipy.special import j0

    return j0(20 * x[:, 0])


def _exp_sin(x):
    return np.exp(np.sin(np.pi * x[:, 0]) + x[:, 1] ** 2)


def _xy(x):
    return x[:, 0] * x[:, 1]


def _exp4d(x):
    return np.exp((np.sin(np.pi * (x[:, 0] ** 2 + x[:, 1] ** 2)) + np.sin(np.pi * (x[:, 2] ** 2 + x[:, 3] ** 2))) / 2)


def _exp100d(x):
    return np.exp(np.mean(np.sin(np.pi * x / 2) ** 2, axis=1))


PAPER = "KAN paper (arXiv 2404.19756) section 3.1"


def _toy_tasks():
    return [
        Task("bessel", "regression", "toy", 1, 1, (1, 5, 1), _function_task(_j0, _box(1)), "J0(20 x)", PAPER),
        Task("exp-sin", "regression", "toy", 2, 1, (2, 5, 1), _function_task(_exp_sin, _box(2)), "exp(sin(pi x) + y^2)", PAPER),
        Task("xy", "regression", "toy", 2, 1, (2, 5, 1), _function_task(_xy, _box(2)), "x y", PAPER),
        Task(
            "exp4d",
            "regression",
            "toy",
            4,
            1,
            (4, 4, 2, 1),
            _function_task(_exp4d, _box(4)),
            "exp((sin(pi(x1^2+x2^2)) + sin(pi(x3^2+x4^2)))/2)",
            PAPER,
            tier="full",
        ),
        Task(
            "exp100d",
            "regression",
            "toy",
            100,
            1,
            (100, 1, 1),
            _function_task(_exp100d, _box(100)),
            "exp(1/100 sum_i sin^2(pi x_i / 2))",
            PAPER,
            tier="full",
            note="the KAN paper's [100,1,1] shape; the MLP's hidden is ten times the budget-matched width",
        ),
    ]


# ----------------------------------------------------------------------------- special functions

SPECIAL = "KAN paper section 3.2 table 2 / KANbeFair; scipy.special"


def _special(name, fn, ranges, formula, note, tier="full"):
    return Task(
        name,
        "regression",
        "special",
        len(ranges),
        1,
        (len(ranges), 5, 1),
        _function_task(fn, ranges),
        formula,
        SPECIAL,
        tier=tier,
        requires=("scipy",),
        note=note,
    )


def _sph_harm_re(n: int, m: int):
    def fn(x):
        import scipy.special as sp

        theta, phi = x[:, 0], x[:, 1]
        if hasattr(sp, "sph_harm_y"):  # scipy >= 1.15: (n, m, polar, azimuth)
            return np.real(sp.sph_harm_y(n, m, theta, phi))
        return np.real(sp.sph_harm(m, n, phi, theta))  # older scipy: (m, n, azimuth, polar)

    return fn


def _special_tasks():
    import_sp = lambda name: lambda x: getattr(__import__("scipy.special", fromlist=[name]), name)  # noqa: E731

    def two(name):
        return lambda x: import_sp(name)(x)(x[:, 0], x[:, 1])

    def lpmv(m):
        return lambda x: __import__("scipy.special", fromlist=["lpmv"]).lpmv(m, x[:, 0], x[:, 1])

    pi = math.pi
    return [
        _special(
            "ellipkinc",
            two("ellipkinc"),
            [(-1.0, 1.0), (0.0, 0.9)],
            "F(phi | m)",
            "m <= 0.9 keeps it far from the m -> 1 divergence",
            tier="default",
        ),
        _special("ellipeinc", two("ellipeinc"), [(-1.0, 1.0), (0.0, 0.9)], "E(phi | m)", "as ellipkinc"),
        _special(
            "ellipj-sn",
            lambda x: __import__("scipy.special", fromlist=["ellipj"]).ellipj(x[:, 0], x[:, 1])[0],
            [(-1.0, 1.0), (0.0, 0.9)],
            "sn(u | m)",
            "u in [-1, 1], m <= 0.9",
        ),
        _special("jv", two("jv"), [(0.0, 2.0), (0.5, 5.0)], "J_v(x)", "x >= 0.5: x^v has no infinite slope there"),
        _special("yv", two("yv"), [(0.0, 2.0), (1.0, 5.0)], "Y_v(x)", "x >= 1: Y_v is singular at 0 (Y_2(1) = -1.65)"),
        _special("kv", two("kv"), [(0.0, 2.0), (0.5, 3.0)], "K_v(x)", "x >= 0.5: K_v is singular at 0 (K_2(0.5) = 7.55)"),
        _special("iv", two("iv"), [(0.0, 2.0), (0.5, 3.0)], "I_v(x)", "x >= 0.5, as jv"),
        _special("lpmv0", lpmv(0), [(0.0, 3.0), (-0.8, 0.8)], "P_v^0(x)", "|x| <= 0.8: non-integer degrees diverge at x = -1"),
        _special("lpmv1", lpmv(1), [(0.0, 3.0), (-0.8, 0.8)], "P_v^1(x)", "as lpmv0"),
        _special("lpmv2", lpmv(2), [(0.0, 3.0), (-0.8, 0.8)], "P_v^2(x)", "as lpmv0"),
        _special(
            "sph-harm-1-1",
            _sph_harm_re(1, 1),
            [(0.0, pi), (0.0, 2 * pi)],
            "Re Y_1^1(theta, phi)",
            "polar angle in [0, pi], azimuth in [0, 2 pi]",
        ),
        _special("sph-harm-2-1", _sph_harm_re(2, 1), [(0.0, pi), (0.0, 2 * pi)], "Re Y_2^1(theta, phi)", "as sph-harm-1-1"),
    ]


# ----------------------------------------------------------------------------- KANbeFair's special functions

KANBEFAIR = "KANbeFair (arXiv 2407.16674), src/data/special.py at yu-rp/KANbeFair@70b255e"


def _kanbefair_target(name: str):
    """KANbeFair's targets as its code computes them (x0 = x[:, 0], x1 = x[:, 1]): the Bessel tasks are
    the derivatives (jvp, ivp: v = x0, z = x1); lpmv(m, v = x0, x = x1); the real part of the order-0
    spherical harmonic of degree n at polar angle x1 (scipy's old sph_harm(0, n, x0, x1))."""

    def fn(x):
        import scipy.special as sp

        x0, x1 = x[:, 0], x[:, 1]
        if name.startswith("lpmv"):
            return sp.lpmv(int(name[-1]), x0, x1)
        if name.startswith("sphharm"):
            n = int(name[-1])
            return np.real(sp.sph_harm_y(n, 0, x1, x0) if hasattr(sp, "sph_harm_y") else sp.sph_harm(0, n, x0, x1))
        return getattr(sp, name)(x0, x1)

    return fn


#: KANbeFair's functions (not yvp, kvp: they diverge as z -> 0; both families' best is the median's)
KANBEFAIR_FORMULAS = {
    "ellipkinc": "F(x0 | m = x1)",
    "ellipeinc": "E(x0 | m = x1)",
    "jvp": "dJ_v/dz (v = x0, z = x1)",
    "ivp": "dI_v/dz (v = x0, z = x1)",
    "lpmv0": "P_v^0(x) (v = x0, x = x1)",
    "lpmv1": "P_v^1(x) (v = x0, x = x1)",
    "sphharm01": "Re Y_1^0 at polar angle x1",
    "sphharm02": "Re Y_2^0 at polar angle x1",
}


def _kanbefair_tasks():
    """Its definitions: inputs uniform on [0, 1)^2, 1000 training and 1000 test points, no noise."""
    made = {n: _function_task(_kanbefair_target(n), _box(2, 0.0, 1.0)) for n in KANBEFAIR_FORMULAS}
    kw = {"tier": "full", "requires": ("scipy",), "note": "KANbeFair's definition; its metric: test_mae"}
    return [
        Task(f"kbf-{n}", "regression", "kanbefair", 2, 1, (2, 5, 1), made[n], f, KANBEFAIR, **kw)
        for n, f in KANBEFAIR_FORMULAS.items()
    ]


# ----------------------------------------------------------------------------- Feynman equations

FEYNMAN = "AI Feynman (Udrescu & Tegmark 2020), KAN paper section 3.3; ranges of pykan 0.2.8 kan/feynman.py"
TWO_PI = 2 * math.pi


def _feynman(name, fn, ranges, formula, tier="full"):
    return Task(
        f"feynman-{name}",
        "regression",
        "feynman",
        len(ranges),
        1,
        (len(ranges), 5, 1),
        _function_task(fn, ranges),
        formula,
        FEYNMAN,
        tier=tier,
    )


def _feynman_tasks():
    c = lambda x, i: x[:, i]  # noqa: E731
    return [
        _feynman(
            "I.6.20",
            lambda x: np.exp(-(c(x, 0) ** 2) / (2 * c(x, 1) ** 2)) / np.sqrt(2 * np.pi * c(x, 1) ** 2),
            [(-1, 1), (0.5, 2)],
            "exp(-theta^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)",
            tier="default",
        ),
        _feynman(
            "I.29.16",
            lambda x: np.sqrt(c(x, 0) ** 2 + c(x, 1) ** 2 - 2 * c(x, 0) * c(x, 1) * np.cos(c(x, 2) - c(x, 3))),
            [(-1, 1), (-1, 1), (0, TWO_PI), (0, TWO_PI)],
            "sqrt(x1^2 + x2^2 - 2 x1 x2 cos(theta1 - theta2))",
            tier="full",
        ),
        _feynman(
            "I.12.11",
            lambda x: c(x, 0) * (c(x, 1) + c(x, 2) * c(x, 3) * np.sin(c(x, 4))),
            [(-1, 1)] * 4 + [(0, TWO_PI)],
            "q (Ef + B v sin theta)",
        ),
        _feynman(
            "I.13.12",
            lambda x: c(x, 0) * c(x, 1) * c(x, 2) * (1 / c(x, 4) - 1 / c(x, 3)),
            [(0, 1), (0, 1), (0, 1), (0.5, 2), (0.5, 2)],
            "G m1 m2 (1/r2 - 1/r1)",
        ),
        _feynman(
            "I.16.6",
            lambda x: (c(x, 0) + c(x, 1)) / (1 + c(x, 0) * c(x, 1) / c(x, 2) ** 2),
            [(-0.8, 0.8), (-0.8, 0.8), (1, 2)],
            "(u + v) / (1 + u v / c^2)",
        ),
        _feynman("I.27.6", lambda x: 1 / (1 / c(x, 0) + c(x, 1) / c(x, 2)), [(0.5, 2), (1, 2), (0.5, 2)], "1 / (1/d1 + n/d2)"),
        _feynman(
            "I.37.4",
            lambda x: c(x, 0) + c(x, 1) + 2 * np.sqrt(c(x, 0) * c(x, 1)) * np.cos(c(x, 2)),
            [(0.1, 1), (0.1, 1), (0, TWO_PI)],
            "I1 + I2 + 2 sqrt(I1 I2) cos(delta)",
        ),
        _feynman(
            "I.40.1",
            lambda x: c(x, 0) * np.exp(-c(x, 1) * c(x, 2) * c(x, 3) / (c(x, 4) * c(x, 5))),
            [(0, 1), (-1, 1), (-1, 1), (-1, 1), (1, 2), (1, 2)],
            "n0 exp(-m g x / (kb T))",
        ),
        _feynman(
            "II.6.15a",
            lambda x: 3 / (4 * np.pi * c(x, 0)) * c(x, 1) * c(x, 2) / c(x, 5) ** 5 * np.sqrt(c(x, 3) ** 2 + c(x, 4) ** 2),
            [(0.5, 2), (0, 1), (0, 1), (0, 1), (0, 1), (0.5, 2)],
            "3 / (4 pi eps) pd z / r^5 sqrt(x^2 + y^2)",
        ),
        _feynman(
            "II.35.21",
            lambda x: c(x, 0) * c(x, 1) * np.tanh(c(x, 1) * c(x, 2) / (c(x, 3) * c(x, 4))),
            [(0, 1), (0, 1), (0, 1), (0.5, 2), (0.5, 2)],
            "n mu tanh(mu B / (kb T))",
        ),
        _feynman(
            "III.9.52",
            lambda x: c(x, 0) * c(x, 1) * c(x, 2) / c(x, 3) * np.sinc((c(x, 4) - c(x, 5)) * c(x, 2) / (2 * np.pi)) ** 2,
            [(0, 1), (0, 1), (0, 1), (0.5, 2), (0, math.pi), (0, math.pi)],
            "pd Ef t / hbar sin^2((w - w0) t / 2) / ((w - w0) t / 2)^2",
        ),
    ]


# ----------------------------------------------------------------------------- bundled datasets

SKLEARN = "scikit-learn's bundled datasets (sklearn.datasets), no download"


def _sklearn(loader: str):
    def make(seed: int) -> RawData:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader)()
        return RawData(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target))

    return make


def _tabular_tasks():
    def t(name, loader, kind, dim, outputs, widths, target, tier, formula):
        make = _sklearn(loader)
        if kind == "regression":
            inner = make
            make = lambda seed: (lambda d: RawData(d.x, d.y.astype(np.float64).reshape(-1, 1)))(inner(seed))  # noqa: E731
        else:
            inner_c = make
            make = lambda seed: (lambda d: RawData(d.x, d.y.astype(np.int64)))(inner_c(seed))  # noqa: E731
        return Task(name, kind, "tabular", dim, outputs, widths, make, formula, SKLEARN, tier, target, ("sklearn",))

    return [
        t("diabetes", "load_diabetes", "regression", 10, 1, (10, 5, 1), 0.8, "default", "disease progression after one year"),
        t("breast-cancer", "load_breast_cancer", "classification", 30, 2, (30, 5, 2), 0.95, "default", "malignant or benign"),
        t("wine", "load_wine", "classification", 13, 3, (13, 5, 3), 0.95, "full", "cultivar from chemical analysis"),
        t("digits", "load_digits", "classification", 64, 10, (64, 10, 10), 0.9, "full", "8x8 images of handwritten digits"),
    ]


def catalogue() -> dict[str, Task]:
    """Every task by name, in the order tables list them."""
    tasks = _toy_tasks() + _special_tasks() + _kanbefair_tasks() + _feynman_tasks() + _tabular_tasks()
    return {t.name: t for t in tasks}


class TaskError(ValueError):
    """An unknown task or tier (one line listing the known ones)."""


def select(names: Optional[str], tier: str) -> list[Task]:
    """The tasks named (comma-separated) or, when ``names`` is empty, those of ``tier``."""
    if tier not in TIERS:
        raise TaskError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
    known = catalogue()
    if not names:
        return [t for t in known.values() if t.in_tier(tier)]
    out = []
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        if name not in known:
            raise TaskError(f"unknown task {name!r}; known: {', '.join(known)}")
        out.append(known[name])
    if not out:
        raise TaskError("no task selected")
    return out


def missing_requirement(task: Task) -> Optional[str]:
    """None when ``task`` can run here, else the line its skip shows (with the install line)."""
    import importlib.util

    for module in task.requires:
        if importlib.util.find_spec(module) is None:
            package = {"sklearn": "scikit-learn"}.get(module, module)
            return f'needs {package} (install: pip install {package}, or pip install "kanbench[accuracy]")'
    return None
