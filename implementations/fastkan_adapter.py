"""fast-kan (https://github.com/ZiyaoLi/fast-kan), row ``fastkan``: gaussian RBFs in one matmul.

Not on PyPI: ``pip install git+https://github.com/ZiyaoLi/fast-kan.git`` (imports as ``fastkan``).

Parity: ``FastKAN(widths, num_grids=8)`` -- 8 RBFs per input, as our RBF layer's 8
centers (KAN-benchmarking used 9 grid points; 8 keeps the per-edge count equal to
ours and to a G=5 cubic spline's 8 basis functions). Counting quirks: each layer's
RBF grid is a frozen ``Parameter`` (counted in "num params", not "trainable"), and
each layer has a LayerNorm on its input (2*in parameters): 4521 / 4505 at [2,150,1].
Its grid spans [-2, 2] by default.
"""

from __future__ import annotations

from kanbench import Implementation, flops

INSTALL = "pip install git+https://github.com/ZiyaoLi/fast-kan.git"


def build(widths, device, dtype, grid_size=5):
    from fastkan import FastKAN

    return FastKAN(list(widths), num_grids=grid_size + 3).to(device=device, dtype=dtype)


fastkan = Implementation(
    name="fastkan",
    build=build,
    description="fast-kan FastKAN(widths, num_grids=8): gaussian RBF KAN",
    requires=("fastkan",),
    install=INSTALL,
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_rbf(widths, grid_size + 3),
)
