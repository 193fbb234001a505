"""The MLP baseline every KAN is compared against, and its name in results.

Widths ``[in, hidden, ..., out]`` become ``Linear(in, 10*hidden) -> ReLU ->
... -> Linear(10*hidden, out)``: hidden widths are multiplied by
``HIDDEN_FACTOR`` (10), as the harness behind the seed's table did, so that
the MLP has about as many parameters as a KAN with 5 grid intervals and cubic
splines (6001 vs 4500-6300 at [2,150,1]; 10.0M vs 9.0-10.0M at [1000,1000,1]).

The spec that registers it is ``implementations/mlp.py``; every table and
comparison finds the baseline row by :data:`BASELINE`.
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

#: the implementation name of the baseline row (ratios "x MLP" divide by it)
BASELINE = "mlp"
HIDDEN_FACTOR = 10


#: activations the MLP can use (tuned by the accuracy suite, ReLU by default as in the seed's harness)
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def hidden_sizes(widths: Sequence[int], hidden_factor: float = HIDDEN_FACTOR, hidden_layers: Optional[int] = None) -> list:
    """The layer sizes [in, hidden..., out] the MLP builds: hidden widths times ``hidden_factor``; with
    ``hidden_layers``, that many hidden layers: the widths given when there are that many (the matcher
    sets each), else the first hidden width repeated (depth is a hyperparameter)."""
    widths = list(widths)
    hidden = [int(round(w * hidden_factor)) for w in widths[1:-1]]
    if hidden_layers is not None and hidden and len(hidden) != int(hidden_layers):
        hidden = [hidden[0]] * int(hidden_layers)
    return [widths[0], *hidden, widths[-1]]


class MLP(nn.Sequential):
    """x: (batch, widths[0]) -> (batch, widths[-1]); hidden widths times ``hidden_factor`` (see :func:`hidden_sizes`)."""

    def __init__(
        self,
        widths: Sequence[int],
        hidden_factor: float = HIDDEN_FACTOR,
        activation: str = "relu",
        hidden_layers: Optional[int] = None,
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
        sizes = hidden_sizes(widths, hidden_factor, hidden_layers)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
