"""ChebyKAN (https://github.com/SynodicMonth/ChebyKAN), row ``chebykan``: Chebyshev polynomials.

Install: ``kanbench install chebykan`` (pinned 5f7efdd, 2024-05-14; no licence stated; no
setup.py, so kanbench loads ``ChebyKANLayer.py`` from its checkout).

Construction: one ``ChebyKANLayer(in, out, degree)`` per pair of widths, in an
``nn.Sequential``: y = sum_i sum_d c[i,o,d] T_d(tanh(x_i)), T_d(t) = cos(d acos t).
Parity: degree 8 gives 9 coefficients per edge (T_0..T_8), as a G=5 cubic B-spline's
8 coefficients + base weight: 4050 at [2,150,1]; no bias, no base branch.

Known quirks: ``acos`` has an infinite derivative at +-1, so an input whose tanh rounds to
+-1 (|x| > ~9 in float32) gives NaN gradients (its issue #11); the layer reshapes with
``view(-1, in)``, so inputs must be (batch, in).
"""

from __future__ import annotations

import torch

from kanbench import Implementation

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "chebykan", "ChebyKANLayer.py"


def build(widths, device, dtype, degree=8):
    module = import_from_checkout(SOURCE, TARGET)
    layers = [module.ChebyKANLayer(i, o, degree) for i, o in zip(widths[:-1], widths[1:])]
    return torch.nn.Sequential(*layers).to(device=device, dtype=dtype)


def forward_flops(widths, degree=8):
    """Per sample: tanh + acos + (degree+1) multiplies and cosines per input, then the contraction."""
    total = 0.0
    for i, o in zip(widths[:-1], widths[1:]):
        total += i * (2 + 2 * (degree + 1)) + 2.0 * i * o * (degree + 1)
    return total


chebykan = Implementation(
    name="chebykan",
    build=build,
    family="Chebyshev",
    description="ChebyKAN ChebyKANLayer(in, out, degree=8) per layer",
    check=lambda: checkout_reason(SOURCE, TARGET),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    options=("degree",),
    flops=forward_flops,
)
