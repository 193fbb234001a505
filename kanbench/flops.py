"""Analytic forward FLOPs per sample.

MLP and B-spline KAN layers are counted as in "KAN or MLP: A Fairer Comparison"
(Yu, Yu and Wang, 2024, arXiv:2407.16674), whose code (KANbeFair) counts

- an MLP layer: 2 * d_in * d_out + F(act) * d_out (no activation after the last layer);
- a B-spline KAN layer of grid size G and order K:
  d_in * d_out * (9K(G + 1.5K) + 2G - 2.5K + 1)  +  F(shortcut) * d_in + 2 * d_in * d_out,

with F(relu) = 1 and F(silu) = 5. That count evaluates the basis on every *edge*,
as pykan does (``per="edge"``). Layers that evaluate the basis once per *input* and
then contract all edges in one matmul (ours, efficient-kan, inkan) are counted the
same way per input (``per="input"``): the paper's bracket once per input for the
basis, plus 2 * (G + K + 1) per edge for the contraction with the coefficients and
the base weight. Each implementation declares the count that matches what it
executes, so GFLOP/s is an achieved rate.

The paper has no formula for RBF KAN layers. We count, per input, the kernel at
n centers (5 FLOPs each for a gaussian: subtract, scale, square, negate, exp),
the shortcut (F(silu) * d_in) and the contraction 2 * d_in * (n + 1) * d_out, plus
d_out for the bias -- what our RBF layer and fast-kan execute.
"""

from __future__ import annotations

from typing import Sequence

ACTIVATION_FLOPS = {"zero": 0, "identity": 0, "relu": 1, "sigmoid": 4, "silu": 5, "tanh": 6, "gelu": 14}


def mlp(sizes: Sequence[int], activation: str = "relu") -> float:
    """An MLP with these layer sizes (already including any hidden-width factor)."""
    total = 0.0
    layers = list(zip(sizes[:-1], sizes[1:]))
    for i, (a, b) in enumerate(layers):
        total += 2 * a * b
        if i < len(layers) - 1:
            total += ACTIVATION_FLOPS[activation] * b
    return total


def kan_bspline(
    widths: Sequence[int], grid_size: int = 5, spline_order: int = 3, shortcut: str = "silu", per: str = "edge"
) -> float:
    g, k = grid_size, spline_order
    bracket = 9 * k * (g + 1.5 * k) + 2 * g - 2.5 * k + 1
    total = 0.0
    for a, b in zip(widths[:-1], widths[1:]):
        if per == "edge":
            total += a * b * bracket + ACTIVATION_FLOPS[shortcut] * a + 2 * a * b
        elif per == "input":
            total += a * bracket + ACTIVATION_FLOPS[shortcut] * a + 2 * a * (g + k + 1) * b + b
        else:
            raise ValueError(f"per must be 'edge' or 'input', got {per!r}")
    return total


def kan_rbf(widths: Sequence[int], n_centers: int = 8, kernel_flops: int = 5, shortcut: str = "silu") -> float:
    total = 0.0
    for a, b in zip(widths[:-1], widths[1:]):
        total += a * n_centers * kernel_flops + ACTIVATION_FLOPS[shortcut] * a + 2 * a * (n_centers + 1) * b + b
    return total


def gflops_per_second(flops_per_sample: float, batch: int, forward_ms: float) -> float:
    return flops_per_sample * batch / (forward_ms * 1e-3) / 1e9
