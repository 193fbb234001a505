"""better_kan: B-spline and RBF KAN layers that are as fast as the fastest public
ones and keep pykan's tools (L1 + entropy regularization, grid update and
extension, pruning, locks, input masks, activation plots).

    from implementations.better_kan import build_spline_kan, build_rbf_kan, KAN
"""

from kanbench import Implementation, flops

from .layers import KANLayer, RBFKANLayer, SplineKANLayer
from .network import KAN, build_kan, build_rbf_kan, build_spline_kan

__all__ = [
    "KAN",
    "KANLayer",
    "RBFKANLayer",
    "SplineKANLayer",
    "build_kan",
    "build_rbf_kan",
    "build_spline_kan",
]


def _build_splines(widths, device, dtype, grid_size=5):
    return build_spline_kan(widths, device=device, dtype=dtype, grid_size=grid_size)


def _build_rbf(widths, device, dtype, grid_size=5):
    # G + k centres for G grid intervals: the B-spline layer's number of basis functions
    return build_rbf_kan(widths, device=device, dtype=dtype, num_centers=grid_size + 3)


splines_spec = Implementation(
    name="splines-better_kan",
    build=_build_splines,
    description="our B-spline KAN (G=5, k=3), one matmul per layer",
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_bspline(widths, grid_size, 3, per="input"),
    notes="Per edge: 8 spline coefficients (w_s folded in) + base weight; one bias per output node.",
)
rbf_spec = Implementation(
    name="rbf-better_kan",
    build=_build_rbf,
    description="our RBF KAN (8 gaussian centres per input), one matmul per layer",
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_rbf(widths, grid_size + 3),
    notes="Per edge: 8 RBF coefficients + base weight (parity with the B-spline layer); centres and widths are buffers.",
)
