"""efficient-kan (https://github.com/Blealtan/efficient-kan), row ``effkan``.

Not on PyPI: ``pip install git+https://github.com/Blealtan/efficient-kan.git``
(imports as ``efficient_kan``).

Parity: ``KAN(widths, grid_size=5, spline_order=3)``, as in the seed's table: 10
trainable parameters per edge (8 spline coefficients, base weight, the standalone
spline scaler), 4500 at [2,150,1]. Its grid is a buffer (not counted).
"""

from __future__ import annotations

from kanbench import Implementation, flops

INSTALL = "pip install git+https://github.com/Blealtan/efficient-kan.git"


def build(widths, device, dtype, grid_size=5):
    from efficient_kan import KAN

    return KAN(list(widths), grid_size=grid_size, spline_order=3).to(device=device, dtype=dtype)


effkan = Implementation(
    name="effkan",
    build=build,
    description="efficient-kan KAN(widths, grid_size=5, spline_order=3)",
    requires=("efficient_kan",),
    install=INSTALL,
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_bspline(widths, grid_size, 3, per="input"),
)
