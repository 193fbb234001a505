"""efficient-kan (https://github.com/Blealtan/efficient-kan), row ``effkan``: B-splines.

Install: ``kanbench install effkan`` (checks out the pinned commit, MIT) or
``pip install git+https://github.com/Blealtan/efficient-kan.git`` (imports as
``efficient_kan``; its declared torchvision dependency can replace a CPU build of torch,
and fast-kan's setup.py installs another package of the same name over it). kanbench's
pinned checkout is used when present, else the installed package.

Parity: ``KAN(widths, grid_size=5, spline_order=3)``, as in the seed's table: 10
trainable parameters per edge (8 spline coefficients, base weight, the standalone
spline scaler), 4500 at [2,150,1]. Its grid is a buffer (not counted).
"""

from __future__ import annotations

from kanbench import Implementation, flops

from ._adapter_util import checkout_or_installed, checkout_or_installed_reason

INSTALL = "kanbench install effkan"


SOURCE, TARGET, MODULE = "effkan", "src/efficient_kan", "efficient_kan"


def build(widths, device, dtype, grid_size=5):
    return (
        checkout_or_installed(SOURCE, TARGET, MODULE)
        .KAN(list(widths), grid_size=grid_size, spline_order=3)
        .to(device=device, dtype=dtype)
    )


effkan = Implementation(
    name="effkan",
    build=build,
    family="B-spline",
    description="efficient-kan KAN(widths, grid_size=5, spline_order=3)",
    check=lambda: checkout_or_installed_reason(SOURCE, TARGET, MODULE),
    install=INSTALL,
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_bspline(widths, grid_size, 3, per="input"),
)
