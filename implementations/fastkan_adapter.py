"""fast-kan (https://github.com/ZiyaoLi/fast-kan), row ``fastkan``: gaussian RBFs in one matmul.

Install: ``kanbench install fastkan`` (pinned commit, Apache-2.0) or
``pip install git+https://github.com/ZiyaoLi/fast-kan.git`` (imports as ``fastkan``; its
setup.py also installs the repository's own ``efficient_kan`` directory, over
efficient-kan's). kanbench's pinned checkout is used when present, else the installed package.

Parity: ``FastKAN(widths, num_grids=8)`` -- 8 RBFs per input, as our RBF layer's 8
centers (KAN-benchmarking used 9 grid points; 8 keeps the per-edge count equal to
ours and to a G=5 cubic spline's 8 basis functions). Counting quirks: each layer's
RBF grid is a frozen ``Parameter`` (counted in "num params", not "trainable"), and
each layer has a LayerNorm on its input (2*in parameters): 4521 / 4505 at [2,150,1].
Its grid spans [-2, 2] by default.

Known quirk: the LayerNorm over a layer's inputs means that with 2 inputs the first
layer's RBF branch sees about sign(x1 - x2) (a 2-vector normalized to zero mean and unit
variance is (+1, -1) or (-1, +1)); only its SiLU base branch, which takes the raw input,
sees the magnitudes (so the sanity gate's doubling check does not fire for it, unlike
FasterKAN, which has no base branch).
"""

from __future__ import annotations

from kanbench import Implementation, flops

from ._adapter_util import checkout_or_installed, checkout_or_installed_reason

INSTALL = "kanbench install fastkan"


SOURCE, TARGET, MODULE = "fastkan", "fastkan", "fastkan"


def build(widths, device, dtype, grid_size=5):
    return (
        checkout_or_installed(SOURCE, TARGET, MODULE)
        .FastKAN(list(widths), num_grids=grid_size + 3)
        .to(device=device, dtype=dtype)
    )


fastkan = Implementation(
    name="fastkan",
    build=build,
    family="Gaussian RBF",
    description="fast-kan FastKAN(widths, num_grids=8): gaussian RBF KAN",
    check=lambda: checkout_or_installed_reason(SOURCE, TARGET, MODULE),
    install=INSTALL,
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_rbf(widths, grid_size + 3),
)
