"""KAGN from torch-conv-kan (https://github.com/IvanDrokin/torch-conv-kan), row ``kagn``: Gram polynomials.

Install: ``kanbench install convkan`` (pinned 7a0e83c, 2024-11-19, MIT; plus einops,
pillow and matplotlib, which its ``kans`` and ``utils`` packages import). kanbench imports
``kans`` with the checkout on ``sys.path`` (``kans/kan.py`` does ``from utils import L1``).

Construction: ``KAGN(widths, degree=7)``: per layer a SiLU base branch and Gram
polynomials of tanh(x) up to degree 7 (with learned recurrence weights beta), summed,
then LayerNorm(out) and SiLU. Parity: degree + 2 = 9 parameters per edge (8 Gram
coefficients + base weight) + (degree + 1) betas + 2*out LayerNorm parameters.

Known bug, as published: every layer ends in LayerNorm(out); for the last layer with out=1
that normalizes one number to zero, so the network's output is the constant
SiLU(LayerNorm bias) whatever the input (the sanity gate reports "output constant across
inputs"). The seed workload has out=1.
"""

from __future__ import annotations

from kanbench import Implementation

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "convkan", "kans"


def build(widths, device, dtype, degree=7):
    kans = import_from_checkout(SOURCE, TARGET, package_root=True)
    return kans.KAGN(list(widths), degree=degree).to(device=device, dtype=dtype)


kagn = Implementation(
    name="kagn",
    build=build,
    family="Gram polynomial",
    description="torch-conv-kan KAGN(widths, degree=7), as published",
    check=lambda: checkout_reason(SOURCE, TARGET, package_root=True),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    options=("degree",),
    flops=lambda widths, degree=7: sum(
        i * (4 * degree + 10) + 2.0 * i * o * (degree + 2) for i, o in zip(widths[:-1], widths[1:])
    ),
)
