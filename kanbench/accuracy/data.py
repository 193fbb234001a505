"""The protocol's data handling: train / validation / test splits and scaling fitted on training only.

- Splits are drawn by a *data seed*; the suite gives every model seed its own (the run's data
  seed plus the model seed), the same for every implementation, so rows are compared on the same
  split seed by seed and the spread over seeds includes the split's. Generated tasks draw their
  own train/test samples from it (pykan's convention); the validation set is
  carved from the training points (``val_fraction``). Datasets without a split are permuted
  and cut into train / validation / test (60 / 20 / 20 by default), classification splits
  stratified so every class is in every split.
- Inputs are scaled to [-1, 1] by the training split's per-feature min and max (``minmax``,
  the default: KAN grids live on [-1, 1]) or standardized by its mean and std (``standard``).
  Regression targets are standardized by the training split's mean and std for training;
  predictions are mapped back before any metric, so every error is in the task's own units.
  Validation and test statistics never enter the scaling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from kanbench.accuracy.tasks import RawData, Task

SCALINGS = ("minmax", "standard")


@dataclass(frozen=True)
class Split:
    """Row indices of the three parts, disjoint."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _stratified(labels: np.ndarray, rng, fractions: tuple) -> tuple:
    """Per class, a permutation cut by ``fractions`` (train, val); the rest is test."""
    parts: tuple = ([], [], [])
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train : n_train + n_val])
        parts[2].append(idx[n_train + n_val :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def split(task: Task, raw: RawData, data_seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Split:
    """The train / validation / test indices of ``raw`` (see the module docstring)."""
    rng = np.random.default_rng(10_000 + data_seed)
    if raw.split is not None:
        train = rng.permutation(np.asarray(raw.split["train"]))
        n_val = int(round(val_fraction * len(train)))
        return Split(np.sort(train[n_val:]), np.sort(train[:n_val]), np.asarray(raw.split["test"]))
    n = len(raw.x)
    train_fraction = 1.0 - val_fraction - test_fraction
    if task.kind == "classification":
        train, val, test = _stratified(raw.y, rng, (train_fraction, val_fraction))
        return Split(train, val, test)
    idx = rng.permutation(n)
    n_train = int(round(train_fraction * n))
    n_val = int(round(val_fraction * n))
    return Split(np.sort(idx[:n_train]), np.sort(idx[n_train : n_train + n_val]), np.sort(idx[n_train + n_val :]))


@dataclass(frozen=True)
class Scaler:
    """An affine map per column, ``(v - shift) / scale``, fitted on the training split."""

    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, mode: str) -> "Scaler":
        if mode == "minmax":  # to [-1, 1]
            lo, hi = values.min(axis=0), values.max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            return cls((lo + hi) / 2, span / 2)
        if mode == "standard":
            std = values.std(axis=0)
            return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))
        raise ValueError(f"unknown scaling {mode!r}; known: {', '.join(SCALINGS)}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        return (values - self.shift) / self.scale

    def invert(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.shift


@dataclass
class Prepared:
    """A task's data ready for training: scaled inputs, training-scale targets, and the raw
    targets that metrics are computed on (numpy float64; labels int64)."""

    x: dict  #: {"train"|"val"|"test": (n, dim)} scaled inputs
    y: dict  #: {part: (n, 1)} standardized regression targets, or (n,) labels
    y_raw: dict  #: {part: (n, 1) or (n,)} targets in the task's units
    target_scaler: Optional[Scaler]  #: None for classification
    split: Split


def prepare(task: Task, raw: RawData, data_seed: int, scaling: str = "minmax") -> Prepared:
    """Split ``raw`` and scale it on its training part only."""
    parts = split(task, raw, data_seed)
    index = {"train": parts.train, "val": parts.val, "test": parts.test}
    x_scaler = Scaler.fit(raw.x[parts.train], scaling)
    x = {k: x_scaler.apply(raw.x[i]) for k, i in index.items()}
    y_raw = {k: raw.y[i] for k, i in index.items()}
    if task.kind == "regression":
        y_scaler = Scaler.fit(raw.y[parts.train], "standard")
        y = {k: y_scaler.apply(v) for k, v in y_raw.items()}
    else:
        y_scaler, y = None, dict(y_raw)
    return Prepared(x, y, y_raw, y_scaler, parts)
