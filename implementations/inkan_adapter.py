"""inkan (PyPI ``inkan``), uniform cubic B-splines evaluated as a piecewise polynomial.

Rows: ``inkan`` -- ``KANNetwork(widths, grid_size=5, spline_order=3)`` with the
package's defaults, which compile the basis with ``torch.compile`` (the first
step compiles: ~20 s on a 2-core CPU, spent in the warm-up, never in a sample);
``inkan-eager`` -- the same with ``compile_basis=False``, the like-for-like
comparison with eager layers (ours are eager).

Parity: one packed weight per layer, 9 trainable parameters per edge (8
coefficients + base weight), no bias: 4050 at [2,150,1], as our layers' 4050 + 151
biases. Its grid is a buffer (not counted).
"""

from __future__ import annotations

from kanbench import Implementation, flops

INSTALL = 'pip install "kanbench[inkan]"  (or: pip install inkan)'


def build(widths, device, dtype, compile_basis: bool = True, grid_size: int = 5):
    from inkan import KANNetwork

    return KANNetwork(list(widths), grid_size=grid_size, spline_order=3, compile_basis=compile_basis).to(
        device=device, dtype=dtype
    )


inkan = Implementation(
    name="inkan",
    family="B-spline",
    build=build,
    description="inkan KANNetwork(widths, grid_size=5), torch.compile'd basis (package default)",
    requires=("inkan",),
    min_versions={"inkan": "0.5"},
    install=INSTALL,
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_bspline(widths, grid_size, 3, per="input"),
)
inkan_eager = Implementation(
    name="inkan-eager",
    family="B-spline",
    build=lambda widths, device, dtype, grid_size=5: build(widths, device, dtype, compile_basis=False, grid_size=grid_size),
    description="inkan KANNetwork(widths, grid_size=5, compile_basis=False)",
    requires=("inkan",),
    min_versions={"inkan": "0.5"},
    install=INSTALL,
    notes=__doc__,
    options=inkan.options,
    flops=inkan.flops,
)
