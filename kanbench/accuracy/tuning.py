"""Symmetric tuning: every row gets the same number of trials, each drawn from its own hyperparameters.

A comparison of an MLP and a KAN is fair only if both sides got the same tuning budget over what
is natural to each (KANbeFair, arXiv 2407.16674, section 3). The accuracy suite therefore tunes by
random search (Bergstra and Bengio, JMLR 2012), which gives every row exactly ``n`` trials however
large its space is:

- the learning rates are drawn log-uniformly from :data:`LR_RANGE`, one from each of ``n`` equal
  slices of it (stratified, so no row's trials bunch up by chance), a range wide enough that
  a chosen rate at an end is rare; one within :data:`EDGE_DECADES` of an end is flagged
  (``lr_at_edge``) in every table;
- the other hyperparameters are the options the implementation's spec declares that
  :data:`OPTION_VALUES` knows: the MLP's activation (ReLU, GELU, SiLU, tanh) and depth (1-3 hidden
  layers at the matched budget); every grid-based KAN's grid size (3, 5, 10, 20; or its own name for
  it), and the spline order or polynomial degree where the spec takes one, each value drawn equally
  often. Each trial's widths are
  then matched to the parameter budget for that trial's options.

The draws are seeded by the tuning seed and the implementation's name, so a run is reproducible and
adding a row changes no other row's trials. Selection uses the validation split only.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

#: the learning rates trials are drawn from (log-uniform)
LR_RANGE = (1e-4, 3e-1)
#: a chosen learning rate within this many decades of an end of LR_RANGE is flagged
EDGE_DECADES = 0.25
#: option name (as specs declare it) -> the values trials draw from
OPTION_VALUES: dict[str, tuple] = {
    "activation": ("relu", "gelu", "silu", "tanh"),
    "hidden_layers": (1, 2, 3),
    "grid_size": (3, 5, 10, 20),
    "gridsize": (3, 5, 10, 20),  # FourierKAN's name for it
    "num_grids": (6, 8, 13, 23),  # FasterKAN: grid + 3 centres
    "grid": (3, 5, 10, 20),  # ReLU-KAN's name for it
    "num_wavelets": (3, 5, 8, 12),  # wavelets per edge (torch-wavelet-kan)
    "spline_order": (2, 3),
    "degree": (2, 3, 4, 5),  # polynomial KANs (ChebyKAN, KAGN)
}


@dataclass(frozen=True)
class Trial:
    """One point of a row's search: a learning rate and build options."""

    index: int
    lr: float
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"index": self.index, "lr": self.lr, "options": dict(self.options)}


def space(option_names: Sequence[str]) -> dict:
    """{option: values} that trials vary, of the options a spec declares."""
    return {name: OPTION_VALUES[name] for name in option_names if name in OPTION_VALUES}


def draw(impl: str, option_names: Sequence[str], n: int, seed: int = 0) -> list[Trial]:
    """``n`` trials for ``impl`` (the same ``n`` for every row of a run)."""
    if n < 1:
        raise ValueError("the number of trials must be at least 1")
    rng = np.random.default_rng([seed, zlib.crc32(impl.encode())])
    lo, hi = (math.log10(v) for v in LR_RANGE)
    # stratified: one learning rate from each of n equal slices of the log range, in random order
    exponents = lo + (hi - lo) * (rng.permutation(n) + rng.uniform(size=n)) / n
    columns = {}
    for name, choices in space(option_names).items():  # every value equally often (up to one)
        repeated = [choices[i % len(choices)] for i in range(n)]
        columns[name] = [repeated[i] for i in rng.permutation(n)]
    return [Trial(i, float(f"{10 ** exponents[i]:.3g}"), {name: column[i] for name, column in columns.items()}) for i in range(n)]


def at_edge(lr: float) -> bool:
    """True when ``lr`` lies within :data:`EDGE_DECADES` of an end of :data:`LR_RANGE`."""
    lo, hi = (math.log10(v) for v in LR_RANGE)
    x = math.log10(lr)
    return x - lo < EDGE_DECADES or hi - x < EDGE_DECADES


__all__ = ["EDGE_DECADES", "LR_RANGE", "OPTION_VALUES", "Trial", "at_edge", "draw", "space"]
