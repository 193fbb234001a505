"""ReLU-KAN (https://github.com/quiqi/relu_kan), row ``relukan``: squared ReLU bumps.

Install: ``kanbench install relukan`` (pinned 79eab7a, 2024-06-05; no licence stated; the
file ``torch_relu_kan.py`` is loaded from the checkout).

Construction: ``ReLUKAN(widths, grid=5, k=3)``; its layers take and return (batch, n, 1),
so the adapter's wrapper feeds ``x.unsqueeze(-1)`` and returns ``y.squeeze(-1)``. Basis:
(r relu(x - a_j) relu(b_j - x))^2 for g+k = 8 bumps per input; the contraction is a
Conv2d(1, out, (g+k, in)) over a *reshaped* (not transposed) (in, g+k) tensor.
Parity: 8 conv weights per edge + one bias per output + trainable phases a, b
(2*in*(g+k) per layer): 6,183 at [2,150,1].

Known quirks: the reshape reinterprets the (in, g+k) basis as (g+k, in), so each conv
weight multiplies a different (input, bump) pair than its position suggests (harmless
for training, confusing for inspection); KAN-benchmarking measured its backward at ~17x
its forward on GPU (Conv2d's weight gradient over a tall thin kernel).
"""

from __future__ import annotations

import torch

from kanbench import Implementation

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "relukan", "torch_relu_kan.py"


class ReLUKANAdapter(torch.nn.Module):
    """(batch, in) -> (batch, out) around ReLUKAN's (batch, n, 1) convention."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.unsqueeze(-1)).squeeze(-1)


def build(widths, device, dtype, grid=5, k=3):
    module = import_from_checkout(SOURCE, TARGET)
    return ReLUKANAdapter(module.ReLUKAN(list(widths), grid, k)).to(device=device, dtype=dtype)


relukan = Implementation(
    name="relukan",
    build=build,
    family="ReLU^2 bumps",
    description="ReLU-KAN ReLUKAN(widths, grid=5, k=3)",
    check=lambda: checkout_reason(SOURCE, TARGET),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    options=("grid",),
    flops=lambda widths, grid=5, k=3: sum(i * (grid + k) * (6 + 2.0 * o) for i, o in zip(widths[:-1], widths[1:])),
)
