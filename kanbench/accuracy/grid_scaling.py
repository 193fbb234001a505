"""The KAN paper's scaling law, on its own protocol: grid extension with LBFGS (arXiv 2404.19756, §2.4).

The theory (the paper's Theorem 2.1) bounds a KAN's error by G^-(k+1) in the grid size G, so for
cubic splines test RMSE ~ G^-4 -- as the grid is *refined*, at a fixed shape. The paper shows it
with grid extension: train a small grid to convergence, extend it (the finer spline is fitted to
the coarser one, so the function is kept), train again, and so on through G = 3, 5, 10, 20, 50,
100, 200, 500, 1000, with LBFGS at each grid, 1000 training and 1000 test points. Its figure 2.3:
for exp(sin(pi x) + y^2) a [2,1,1] KAN follows about G^-4 (median of squared errors) until the
*interpolation threshold*, where the parameter count reaches the number of training points and
the test error turns up; [2,5,1] lies between G^-2 and G^-4.

:func:`run` reproduces that for any model with ``extend_grid(new_size, x=...)`` (our layers); every
grid's train and test errors are a :class:`GridPoint`: the RMSE and the paper's own metric, the
root of the *median* squared error (RMedSE), which a few test points at the edges of the input box
do not dominate. :func:`fit_exponent` fits the slope of log(test error) on log(G) over the grids
below the threshold (and from G = 5: the first grid is still dominated by the shape's own error),
for either metric. The widening exponent of the suite's full tier is a
different quantity (error against width at a fixed grid) and keeps its own name.

The paper's LBFGS (200 iterations, history 10) leaves a [2,1,1] KAN far from the least-squares
optimum of its grid once the grid is fine: the error stops falling near 1e-6 while the training
error keeps creeping down, and what a grid inherits from the coarser one carries that shortfall
along. ``lm_steps`` adds a Levenberg-Marquardt refinement after LBFGS at every grid below the
interpolation threshold (:func:`~kanbench.accuracy.fitting.levenberg_marquardt`: the exact least-squares step on the model's
Jacobian, damped), which solves each grid's fit to its float64 optimum; with ``lm_steps=0`` the
protocol is the paper's LBFGS alone. Both are recorded, so a reader sees what the optimizer, not
the representation, costs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from kanbench.accuracy.fitting import lbfgs as _lbfgs
from kanbench.accuracy.fitting import levenberg_marquardt

#: the paper's grid schedule (figure 2.3)
GRIDS = (3, 5, 10, 20, 50, 100, 200, 500, 1000)
#: LBFGS iterations at each grid (each with pykan's strong-Wolfe line search)
STEPS = 200
#: pykan's fit: a grid update from the samples every 5 steps of the first 50 (``update`` of :func:`run`)
UPDATE_EVERY, UPDATE_UNTIL = 5, 50
#: Levenberg-Marquardt iterations after LBFGS at each grid below the threshold (0: LBFGS alone)
LM_STEPS = 40
#: grids from which the exponent is fitted (the coarsest grid carries the shape's own error)
FIT_FROM = 5


@dataclass
class GridPoint:
    """One grid of the schedule: the model trained there and its errors in the task's units (RMSE,
    and RMedSE: the square root of the median squared error, the paper's figure 2.3 metric)."""

    grid: int
    params: int
    train_rmse: Optional[float]
    test_rmse: Optional[float]
    seconds: float
    error: Optional[str] = None
    train_rmedse: Optional[float] = None
    test_rmedse: Optional[float] = None


@dataclass
class GridRun:
    """One model shape through the whole schedule."""

    impl: str
    task: str
    widths: list
    spline_order: int
    train_points: int
    steps: int
    points: list = field(default_factory=list)  #: [GridPoint]
    lm_steps: int = 0  #: Levenberg-Marquardt iterations after LBFGS at each grid below the threshold

    @property
    def threshold_grid(self) -> Optional[int]:
        """The first grid whose parameter count reaches the training points (None: never reached)."""
        for p in self.points:
            if p.params >= self.train_points:
                return p.grid
        return None

    @classmethod
    def from_dict(cls, d: dict) -> "GridRun":
        """A run as ``to_dict`` wrote it (a results file's ``runs`` entry)."""
        points = [GridPoint(**p) for p in d["points"]]
        return cls(
            d["impl"],
            d["task"],
            list(d["widths"]),
            d["spline_order"],
            d["train_points"],
            d["steps"],
            points,
            d.get("lm_steps", 0),
        )

    @property
    def optimizer(self) -> str:
        """What trained each grid, in words."""
        lm = f" + {self.lm_steps} Levenberg-Marquardt below the threshold" if self.lm_steps else ""
        return f"{self.steps} LBFGS{lm}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["threshold_grid"] = self.threshold_grid
        d["exponent"] = fit_exponent(self)
        d["exponent_rmedse"] = fit_exponent(self, metric="test_rmedse")
        return d


def fit_exponent(run: GridRun, fit_from: int = FIT_FROM, metric: str = "test_rmse") -> Optional[float]:
    """alpha in test error ~ G^-alpha: least squares on log-log over the grids from ``fit_from`` whose
    parameter count is below the training points (before the interpolation threshold). ``metric``:
    a :class:`GridPoint` field, ``test_rmse`` or ``test_rmedse``."""
    pts = [
        p
        for p in run.points
        if getattr(p, metric)
        and getattr(p, metric) > 0
        and p.grid >= fit_from
        and p.params < run.train_points
        and p.error is None
    ]
    if len(pts) < 2:
        return None
    g = np.log([p.grid for p in pts])
    e = np.log([getattr(p, metric) for p in pts])
    return float(-np.polyfit(g, e, 1)[0])


def local_exponents(run: GridRun, metric: str = "test_rmedse") -> list[tuple[int, int, float]]:
    """(G1, G2, alpha) between consecutive grids: the slope of -log(error) on log(G), which shows
    where the error follows a power law and where it stops falling."""
    pts = [p for p in run.points if getattr(p, metric) and p.error is None]
    return [
        (a.grid, b.grid, float(-np.log(getattr(b, metric) / getattr(a, metric)) / np.log(b.grid / a.grid)))
        for a, b in zip(pts, pts[1:])
    ]


def _rmse(model, x, y) -> float:
    import torch

    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


def _rmedse(model, x, y) -> float:
    """The square root of the median squared error (the KAN paper's figure 2.3 metric)."""
    import torch

    with torch.no_grad():
        return float(torch.sqrt(torch.median((model(x) - y) ** 2)))


def run(
    build: Callable[[int], object],
    data: dict,
    impl: str,
    task: str,
    widths: Sequence[int],
    grids: Sequence[int] = GRIDS,
    steps: int = STEPS,
    spline_order: int = 3,
    progress: Optional[Callable[[GridPoint], None]] = None,
    extend: Optional[Callable] = None,
    update: Optional[Callable] = None,
    lm_steps: int = 0,
) -> GridRun:
    """Train ``build(grids[0])`` and extend its grid through ``grids``, LBFGS at each grid.

    ``data``: {"train": (x, y), "test": (x, y)} float64 tensors; errors are RMSE on them. ``extend(model,
    new_size, x) -> model`` extends a grid (default: the model's own ``extend_grid(new_size, x=x)``);
    ``update(model, x)``, when given, refits the grids to the training inputs every
    ``UPDATE_EVERY`` (5) steps of the first ``UPDATE_UNTIL`` (50) at each grid, as pykan's fit does.
    ``lm_steps`` > 0: :func:`~kanbench.accuracy.fitting.levenberg_marquardt` after LBFGS at each grid whose trainable parameters
    are fewer than the training points. A grid that fails (a diverged loss) ends the schedule there, recorded."""
    x_train, y_train = data["train"]
    x_test, y_test = data["test"]
    out = GridRun(impl, task, list(widths), spline_order, int(x_train.shape[0]), steps, lm_steps=lm_steps)
    model = build(grids[0])
    for i, grid in enumerate(grids):
        started = time.monotonic()
        try:
            if i:
                model = extend(model, grid, x_train) if extend else _own_extend(model, grid, x_train)
            if update is None:
                _lbfgs(model, x_train, y_train, steps)
            else:
                done = 0
                while done < min(UPDATE_UNTIL, steps):
                    update(model, x_train)
                    _lbfgs(model, x_train, y_train, min(UPDATE_EVERY, steps - done))
                    done += UPDATE_EVERY
                _lbfgs(model, x_train, y_train, max(0, steps - done))
            if lm_steps and _trainable(model) < out.train_points:
                levenberg_marquardt(model, x_train, y_train, lm_steps)
            point = GridPoint(
                grid,
                _trainable(model),
                _rmse(model, x_train, y_train),
                _rmse(model, x_test, y_test),
                0.0,
                train_rmedse=_rmedse(model, x_train, y_train),
                test_rmedse=_rmedse(model, x_test, y_test),
            )
        except Exception as exc:  # a failed grid ends this schedule; the grids before it stand
            point = GridPoint(grid, _trainable(model), None, None, 0.0, f"{type(exc).__name__}: {exc}")
        point.seconds = round(time.monotonic() - started, 3)
        out.points.append(point)
        if progress:
            progress(point)
        if point.error:
            break
    return out


def _own_extend(model, new_size: int, x):
    model.extend_grid(new_size, x=x)
    return model


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def exp_sin_data(seed: int = 0, n_train: int = 1000, n_test: int = 1000):
    """exp(sin(pi x) + y^2) on [-1, 1]^2: the paper's draws (uniform, separate train and test), float64."""
    import torch

    from kanbench.accuracy.tasks import catalogue

    raw = catalogue()["exp-sin"].make(seed)
    x = torch.as_tensor(raw.x, dtype=torch.float64)
    y = torch.as_tensor(raw.y, dtype=torch.float64)
    train, test = raw.split["train"][:n_train], raw.split["test"][:n_test]
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}


def figure(runs: Sequence[GridRun], path) -> None:
    """Test RMSE against grid size, log-log, with G^-2, G^-3, G^-4 reference lines through each run's
    first fitted point and each run's interpolation threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kanbench.palette import style

    fig, ax = plt.subplots(figsize=(7.4, 4.8))
    for r in runs:
        pts = [p for p in r.points if p.test_rmse]
        if not pts:
            continue
        color = style(r.impl).color
        alpha = fit_exponent(r)
        label = f"{r.impl} {'x'.join(map(str, r.widths))}" + (f" (fit: G^-{alpha:.2f})" if alpha else "")
        solid = "-" if list(r.widths) == [2, 1, 1] else "-."
        ax.loglog([p.grid for p in pts], [p.test_rmse for p in pts], "o" + solid, color=color, label=label)
        ax.loglog([p.grid for p in pts], [p.train_rmse for p in pts], "o--", color=color, alpha=0.4, ms=3)
        med = [p for p in pts if p.test_rmedse]
        if med:
            beta = fit_exponent(r, metric="test_rmedse")
            ax.loglog(
                [p.grid for p in med],
                [p.test_rmedse for p in med],
                "s:",
                color=color,
                ms=4,
                label="  test RMedSE" + (f" (fit: G^-{beta:.2f})" if beta else ""),
            )
        if r.threshold_grid:
            ax.axvline(r.threshold_grid, color=color, ls=":", lw=1)
    anchor = next((p for r in runs for p in r.points if p.grid == FIT_FROM and p.test_rmse), None)
    if anchor is not None:
        g = np.array([FIT_FROM, max(p.grid for r in runs for p in r.points)], dtype=np.float64)
        for power, style in ((2, "-."), (3, "--"), (4, ":")):
            ax.loglog(g, anchor.test_rmse * (g / FIT_FROM) ** -power, style, color="0.5", lw=1, label=f"G^-{power}")
    ax.set_xlabel("grid size G")
    ax.set_ylabel("test RMSE (solid), train RMSE (dashed),\ntest RMedSE (dotted)", fontsize=8)
    how = {r.optimizer for r in runs}
    ax.set_title(
        f"exp(sin(pi x) + y^2), grid extension; each grid: {'; '.join(sorted(how))}\n"
        "dotted verticals: the interpolation threshold (parameters = training points)",
        fontsize=8,
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(runs: Sequence[GridRun]) -> str:
    """One table per run (grid, parameters, train and test RMSE, seconds) and the fitted exponents."""
    from tabulate import tabulate

    parts = []
    for r in runs:
        alpha = fit_exponent(r)
        beta = fit_exponent(r, metric="test_rmedse")
        head = (
            f"#### {r.impl} {'x'.join(map(str, r.widths))}, k = {r.spline_order}: "
            + (f"test RMSE ~ G^-{alpha:.2f}" if alpha is not None else "no exponent (fewer than two grids to fit)")
            + (f", test RMedSE ~ G^-{beta:.2f}" if beta is not None else "")
            + f" (fitted from G = {FIT_FROM} to the interpolation threshold"
            + (f", G = {r.threshold_grid})" if r.threshold_grid else ", not reached)")
            + f"; each grid: {r.optimizer}"
        )
        body = [
            [
                p.grid,
                p.params,
                "-" if p.train_rmse is None else f"{p.train_rmse:.3e}",
                "-" if p.test_rmse is None else f"{p.test_rmse:.3e}",
                "-" if p.test_rmedse is None else f"{p.test_rmedse:.3e}",
                f"{p.seconds:.1f}",
                p.error or "",
            ]
            for p in r.points
        ]
        table = tabulate(
            body,
            headers=["G", "params", "train RMSE", "test RMSE", "test RMedSE", "s", ""],
            tablefmt="github",
            disable_numparse=True,
        )
        parts.append(f"{head}\n\n{table}")
    return "\n\n".join(parts)


__all__ = [
    "FIT_FROM",
    "GRIDS",
    "GridPoint",
    "GridRun",
    "LM_STEPS",
    "STEPS",
    "exp_sin_data",
    "figure",
    "fit_exponent",
    "local_exponents",
    "markdown",
    "run",
]
