"""GR-KAN, the group-rational KAN of KAT (https://github.com/Adamdad/rational_kat_cu), row ``grkan``.

Install: ``kanbench install katrational`` (pinned 181bae8, 2025-02-03; no licence file,
the KAT repository is MIT). The package's ``__init__`` imports its Triton kernels; on a
machine without Triton kanbench loads the pure-torch ``kat_rational/kat_1dgroup_torch.py``
from the checkout (it reads ``init.json`` next to it, which a pip install would not ship:
not package data).

Construction, as KAT's MLP block: per pair of widths, a ``KAT_Group_Torch`` rational
activation over the layer's inputs (mode "identity" for the first layer, "gelu" after,
as KAT does), then ``nn.Linear(in, out)``. A rational P(x)/Q(x) of degree (5, 4) is shared
by the channels of a group (the numerator by all groups); groups = gcd(in, 8) (it must
divide the width). Parity: one weight per edge + one bias per output + the rational
coefficients: far fewer parameters per edge than a spline KAN, so compare it param-matched
(``--match params``).

Known quirks: the input must be 3-D (batch, length, channels): the adapter passes
(batch, 1, in); the torch path builds its denominator with ``torch.ones(..., device=...)``
in the default dtype, so it does not run in float64 (the sanity gate's float64 gradient
check is skipped for it); the GPU path (Triton) computes the same formula with a
hand-written backward.
"""

from __future__ import annotations

import math

import torch

from kanbench import Implementation

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "katrational", "kat_rational/kat_1dgroup_torch.py"


class GRKAN(torch.nn.Module):
    """KAT-style layers: rational(group) activation on the inputs, then a Linear."""

    def __init__(self, widths, group_cls):
        super().__init__()
        self.acts = torch.nn.ModuleList()
        self.linears = torch.nn.ModuleList()
        for n, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
            self.acts.append(group_cls(num_groups=math.gcd(i, 8), mode="identity" if n == 0 else "gelu"))
            self.linears.append(torch.nn.Linear(i, o))

    def forward(self, x):
        for act, linear in zip(self.acts, self.linears):
            x = linear(act(x.unsqueeze(1)).squeeze(1))
        return x


def build(widths, device, dtype):
    module = import_from_checkout(SOURCE, TARGET)
    return GRKAN(list(widths), module.KAT_Group_Torch).to(device=device, dtype=dtype)


grkan = Implementation(
    name="grkan",
    build=build,
    family="rational (group)",
    description="GR-KAN: KAT_Group_Torch rational activation + Linear per layer",
    check=lambda: checkout_reason(SOURCE, TARGET),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    flops=lambda widths: sum(20.0 * i + 2.0 * i * o for i, o in zip(widths[:-1], widths[1:])),
)
