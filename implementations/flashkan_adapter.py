"""FlashKAN (PyPI ``flashkan`` 0.2.0, https://github.com/naveenmysore/flashkan, MIT), row ``flashkan``.

Install: ``kanbench install flashkan`` (``pip install flashkan==0.2.0``; it declares only torch).

Construction, as its README: ``KANNetwork(widths, grid_size=5, spline_order=3)``, a stack of
``KANLayer(in, out)``: per edge 8 B-spline coefficients and a base (SiLU) weight, no bias --
9 trainable parameters per edge, 4050 at [2,150,1] (like inkan). The basis is the truncated power
form of the cubic B-spline on a uniform grid, ``torch.compile``'d at import (the first step
compiles: spent in the warm-up, never in a sample).

Claims (package summary, 0.2.0): "6-15x faster than Cox-de Boor", "faster than Gaussian RBF
alternatives (FastKAN)", measured on an Apple M-series GPU (MPS) at batch 256 -- see
:mod:`kanbench.claims`.

Known quirks: the basis formula is the cubic one whatever ``spline_order`` says (the argument only
changes how many bases there are); inputs outside the grid get B-spline tails, as usual.
"""

from __future__ import annotations

from kanbench import Implementation, flops

INSTALL = "kanbench install flashkan"


def build(widths, device, dtype, grid_size: int = 5):
    from flashkan import KANNetwork

    return KANNetwork(list(widths), grid_size=grid_size, spline_order=3).to(device=device, dtype=dtype)


flashkan = Implementation(
    name="flashkan",
    family="B-spline",
    build=build,
    description="FlashKAN KANNetwork(widths, grid_size=5, spline_order=3), compiled basis (package default)",
    requires=("flashkan",),
    install=INSTALL,
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_bspline(widths, grid_size, 3, per="input"),
)
