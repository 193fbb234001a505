"""The MLP baseline's spec (the model is :class:`kanbench.baseline.MLP`)."""

from __future__ import annotations

from kanbench import Implementation, flops
from kanbench.baseline import BASELINE, HIDDEN_FACTOR, MLP


def build(widths, device, dtype) -> MLP:
    return MLP(widths).to(device=device, dtype=dtype)


def forward_flops(widths) -> float:
    sizes = [widths[0]] + [w * HIDDEN_FACTOR for w in widths[1:-1]] + [widths[-1]]
    return flops.mlp(sizes)


spec = Implementation(
    name=BASELINE,
    build=build,
    flops=forward_flops,
    family="MLP",
    description=f"baseline: Linear-ReLU-Linear, hidden widths x{HIDDEN_FACTOR} for parameter parity",
)
