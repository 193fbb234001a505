"""better_kan: B-spline and RBF KAN layers that are as fast as the fastest public
ones and keep pykan's tools (L1 + entropy regularization, grid update and
extension, pruning, locks, input masks, activation plots).

It depends on torch only (matplotlib for :meth:`KAN.plot`, imported when called)::

    from better_kan import SplineKANLayer, RBFKANLayer, KAN, build_spline_kan

    layer = SplineKANLayer(2, 5)           # x: (batch, 2) -> (batch, 5)
    model = build_spline_kan([2, 5, 1])    # x: (batch, 2) -> (batch, 1)

The package lives in the kanbench repository under ``implementations/better_kan``;
``pip install`` of the repository installs it as ``better_kan``. kanbench's specs
for it are in ``implementations/better_kan_specs.py``.
"""

from .layers import KANLayer
from .network import KAN, build_kan, build_rbf_kan, build_spline_kan
from .rbf_layer import RBFKANLayer
from .spline_layer import SplineKANLayer

__all__ = [
    "KAN",
    "KANLayer",
    "RBFKANLayer",
    "SplineKANLayer",
    "build_kan",
    "build_rbf_kan",
    "build_spline_kan",
]
