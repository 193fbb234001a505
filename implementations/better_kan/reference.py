"""The native operator's reference: one table of its bases, and the same layer in plain PyTorch ops.

:mod:`better_kan.native` runs a KAN layer as one operator (C++ on the CPU, Triton on CUDA). This
module is the single source both sides are held to:

* :data:`BASES` and :data:`BASE_ACTIVATION_CODES` name every basis and base activation the
  operator takes, with the integer code the C++ enums (``csrc/kan_ops.cpp``) and the Triton
  kernels (:mod:`better_kan.triton_kernels`) use for it; tests call every entry on every path;
* :func:`features` and :func:`kan_linear` compute the operator's function with ordinary,
  differentiable PyTorch ops (no custom ``autograd.Function``), so autograd differentiates them
  to any order. The C++ operator's backward uses :func:`kan_linear` when a graph of the gradient
  is asked for (``create_graph=True``: second derivatives, physics-informed losses), and the
  Triton kernels fall back on it when they cannot compile or launch.

Shapes: x (batch, in); weight (out, in, n + 1); bias (out) or None; ``a``, ``b`` (in, n) (for
``"bspline"``: ``a`` the knots (in, n + order + 1), ``b`` empty).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from . import basis as basis_mod

#: basis name -> code of the native kernels (the order of ``enum class Basis`` in csrc/kan_ops.cpp)
BASES: dict[str, int] = {
    "bspline_uniform": 0,
    "bspline": 1,
    "gaussian": 2,
    "inverse_quadratic": 3,
    "multiquadric": 4,
    "inverse_multiquadric": 5,
    "matern32": 6,
    "matern52": 7,
}
#: base activation name -> code of the native kernels (the order of ``enum class Base``)
BASE_ACTIVATION_CODES: dict[str, int] = {"silu": 0, "identity": 1, "zero": 2, "gelu": 3, "tanh": 4}

#: base activation name -> function (the layers' ``base_activation``)
BASE_ACTIVATIONS = {
    "silu": F.silu,
    "identity": lambda x: x,
    "zero": torch.zeros_like,
    "gelu": F.gelu,
    "tanh": torch.tanh,
}

assert set(BASES) == {"bspline_uniform", "bspline", *basis_mod.KERNELS}
assert set(BASE_ACTIVATION_CODES) == set(BASE_ACTIVATIONS)


def functorch_active() -> bool:
    """True inside a torch.func transform (grad, vmap, jacrev, ...). The native operator's C++ autograd
    node and the basis functions' hand-written backwards cannot run there; the plain ops here can."""
    return basis_mod._functorch_active()


def basis_values(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, basis: str, order: int) -> torch.Tensor:
    """x (batch, in) -> (batch, in, n): the ``n`` basis functions of every input, differentiable to any order."""
    if basis == "bspline_uniform":
        if order == 0:
            z = torch.addcmul(b, x.unsqueeze(-1), a)
            return ((z >= -0.5) & (z < 0.5)).to(x.dtype)
        return basis_mod.bspline_uniform_plain(x, a, b, order)
    if basis == "bspline":
        return basis_mod.bspline_cox_de_boor(x, a, order)
    if basis in basis_mod.KERNELS:
        return basis_mod.KERNELS[basis](torch.addcmul(b, x.unsqueeze(-1), a))
    raise ValueError(f"better_kan: unknown basis {basis!r}; use one of {', '.join(BASES)}")


def features(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, basis: str, order: int, base: str) -> torch.Tensor:
    """F (batch, in, n + 1) = [B_0(x) .. B_{n-1}(x), base(x)] per input."""
    if base not in BASE_ACTIVATIONS:
        raise ValueError(f"better_kan: unknown base activation {base!r}; use one of {', '.join(BASE_ACTIVATIONS)}")
    return torch.cat([basis_values(x, a, b, basis, order), BASE_ACTIVATIONS[base](x).unsqueeze(-1)], dim=-1)


def kan_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    basis: str,
    order: int,
    base: str,
) -> torch.Tensor:
    """x (batch, in) -> y (batch, out): the operator's function, in differentiable PyTorch ops."""
    f = features(x, a, b, basis, order, base)
    if bias is not None and bias.numel() == 0:
        bias = None
    return F.linear(f.reshape(x.shape[0], -1), weight.reshape(weight.shape[0], -1), bias)


def forward(x, weight, bias, a, b, basis: str, order: int, base: str):
    """The forward operator's outputs from the reference: (y (batch, out), features (in, n + 1, batch))."""
    f = features(x, a, b, basis, order, base)
    bias = bias if bias is not None and bias.numel() else None
    y = F.linear(f.reshape(x.shape[0], -1), weight.reshape(weight.shape[0], -1), bias)
    return y, f.permute(1, 2, 0).contiguous()


def backward(grad_y, x, weight, features_, a, b, basis: str, order: int, base: str, output_mask):
    """The backward operator's outputs from the reference: (grad_x, grad_weight, grad_bias, grad_a, grad_b),
    empty where ``output_mask`` does not ask for one (``features_`` is not needed: recomputed)."""
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(bool(m)) for t, m in zip((x, weight), output_mask[:2])]
        bias = torch.zeros(weight.shape[0], dtype=x.dtype, device=x.device, requires_grad=bool(output_mask[2]))
        ab = [t.detach().requires_grad_(bool(m)) for t, m in zip((a, b), output_mask[3:])]
        wanted = [t for t, m in zip((*leaves, bias, *ab), output_mask) if m]
        y = kan_linear(leaves[0], leaves[1], bias, ab[0], ab[1], basis, order, base)
        grads = iter(torch.autograd.grad(y, wanted, grad_y, allow_unused=True)) if wanted else iter(())
    out = []
    for t, m in zip((x, weight, bias, a, b), output_mask):
        g = next(grads) if m else x.new_empty(0)
        out.append(torch.zeros_like(t) if m and g is None else g)
    return tuple(out)


__all__ = [
    "BASES",
    "BASE_ACTIVATIONS",
    "BASE_ACTIVATION_CODES",
    "backward",
    "basis_values",
    "features",
    "forward",
    "functorch_active",
    "kan_linear",
]
