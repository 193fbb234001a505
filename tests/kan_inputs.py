"""Inputs for checking a KAN layer's paths against each other (tests/test_native.py, tests/test_triton_kernels.py)."""

from __future__ import annotations

import torch

from better_kan import SplineKANLayer


def layer_inputs(layer, kind: str, n: int, seed: int = 0, inside: float = 1.1, outside: tuple = (1.5, 4.0)) -> torch.Tensor:
    """(n, in) in the layer's dtype: ``random`` in [-inside, inside]; exactly on the layer's knots (or RBF
    centers); or ``outside`` the grid, |x| in [outside[0], outside[0] + outside[1]] with random signs."""
    gen = torch.Generator().manual_seed(seed)
    dtype = layer.weight.dtype
    shape = (n, layer.in_features)
    if kind == "random":
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 * inside - inside).to(dtype)
    if kind == "outside":
        size = torch.rand(shape, generator=gen, dtype=torch.float64) * outside[1] + outside[0]
        return (size * torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)).to(dtype)
    knots = layer.grid if isinstance(layer, SplineKANLayer) else layer.centers.detach()
    idx = torch.randint(0, knots.shape[1], (layer.in_features, n), generator=gen)
    return knots.gather(1, idx).t().contiguous().to(dtype)
