"""kanbench specs for our own layers (the :mod:`better_kan` package next to this file).

Importing the sibling package keeps an A/B run honest: each side's specs build that side's
``better_kan``, not whichever copy is installed. Installed from a wheel (where these specs live
in ``kanbench.builtin`` and the layers in the top-level ``better_kan`` package) there is no
sibling, and the installed package is the one.
"""

import importlib
from pathlib import Path

from kanbench import Implementation, flops

if (Path(__file__).resolve().parent / "better_kan" / "__init__.py").is_file():
    _better_kan = importlib.import_module(".better_kan", __package__)
else:
    _better_kan = importlib.import_module("better_kan")
build_rbf_kan, build_spline_kan = _better_kan.build_rbf_kan, _better_kan.build_spline_kan


def _build_splines(widths, device, dtype, grid_size=5, spline_order=3):
    return build_spline_kan(widths, device=device, dtype=dtype, grid_size=grid_size, spline_order=spline_order)


def _build_rbf(widths, device, dtype, grid_size=5):
    # G + k centers for G grid intervals: the B-spline layer's number of basis functions
    return build_rbf_kan(widths, device=device, dtype=dtype, num_centers=grid_size + 3)


def _path_note(model, x):
    """One line when a layer of ``model`` takes its PyTorch path for inputs like x (the native operator
    has kernels for float32 and float64, on the CPU and, through Triton, CUDA)."""
    native = importlib.import_module(_better_kan.__name__ + ".native")

    layers = [m for m in model.modules() if hasattr(m, "native_basis")]
    if not layers or not native.STATUS.available:
        return "PyTorch path: better_kan's native operator is not built here" if layers else None
    for layer in layers:
        args = layer.native_basis()
        if args is None or x.dtype != layer.weight.dtype or not native.supports(x, layer.base_activation, args[2]):
            return f"PyTorch path: no native kernel for {x.dtype} on {x.device.type}"
    return None


splines_spec = Implementation(
    name="splines-better_kan",
    family="B-spline",
    build=_build_splines,
    description="our B-spline KAN (G=5, k=3), one matmul per layer",
    options=("grid_size", "spline_order"),
    flops=lambda widths, grid_size=5, spline_order=3: flops.kan_bspline(widths, grid_size, spline_order, per="input"),
    notes="Per edge: 8 spline coefficients (w_s folded in) + base weight; one bias per output node.",
    path_note=_path_note,
)
rbf_spec = Implementation(
    name="rbf-better_kan",
    family="Gaussian RBF",
    build=_build_rbf,
    description="our RBF KAN (8 gaussian centers per input), one matmul per layer",
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_rbf(widths, grid_size + 3),
    notes="Per edge: 8 RBF coefficients + base weight (parity with the B-spline layer); centers and widths are buffers.",
    path_note=_path_note,
)
