"""The MLP baseline's spec (the model is :class:`kanbench.baseline.MLP`).

Options (``--option`` / the accuracy suite's tuning): ``activation`` (relu, gelu, silu, tanh),
``hidden_layers`` (depth) and ``hidden_factor``. The parameter matcher builds it with
``hidden_factor=1`` (``match_options``), so a matched MLP's hidden width is searched one unit at a
time, not in steps of 10.
"""

from __future__ import annotations

from kanbench import Implementation, flops
from kanbench.baseline import BASELINE, HIDDEN_FACTOR, MLP, hidden_sizes


def build(widths, device, dtype, hidden_factor=HIDDEN_FACTOR, activation="relu", hidden_layers=None) -> MLP:
    return MLP(widths, hidden_factor, activation, hidden_layers).to(device=device, dtype=dtype)


def forward_flops(widths, hidden_factor=HIDDEN_FACTOR, activation="relu", hidden_layers=None) -> float:
    return flops.mlp(hidden_sizes(widths, hidden_factor, hidden_layers), activation)


spec = Implementation(
    name=BASELINE,
    build=build,
    flops=forward_flops,
    family="MLP",
    options=("hidden_factor", "activation", "hidden_layers"),
    match_options={"hidden_factor": 1},
    description=f"baseline: Linear-ReLU-Linear, hidden widths x{HIDDEN_FACTOR} for parameter parity",
)
