"""One autograd node per layer: basis, base activation and contraction with a hand-written backward.

For the networks KAN users train (a few edges, thousands of full-batch steps) a step's time
is per-operation overhead, and most of a layer's ops were autograd bookkeeping: the basis
Function, the base activation, the concatenation, the reshape and the linear each made a
node of their own. :class:`KANLinearFunction` is the whole layer as one node; its backward
reuses what the forward computed (the features for the weight gradient, the scaled
distances for the basis derivative):

    forward:  z = x[..., None] * a + b                          (batch, in, n)
              F = [phi(z), base(x)]                             (batch, in, n + 1)
              y = F.view(batch, in*(n+1)) @ W.view(out, -1)^T + bias     (batch, out)
    backward: dW = dy^T F,   dbias = sum_batch dy,   dF = dy W
              dx = sum_i phi'(z_i) a_i dF_i + base'(x) dF_base

Used by a layer with ``use_fused = True`` when nothing needs the general path (no masks,
locks, standalone scale, statistics tracking, trainable centers; a uniform spline grid;
base activation silu, identity or zero). First derivatives only (``once_differentiable``).

Measured (2-core CPU, torch 2.13, torch.utils.benchmark, one training step): *slower* than
the op-by-op path -- 637 vs 588 us (splines) and 551 vs 501 us (RBF) at [2,150,1] batch 32,
746 vs 714 us at [2,5,1] batch 1000 -- because a Python ``autograd.Function`` costs more
per call than the handful of C++ autograd nodes it replaces. So it is off by default.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from . import basis as basis_mod


class SplineBasis:
    """Closed-form B-spline of order ``k`` on uniform knots: phi(z) = M_k(z), phi'(z) = M_k'(z)."""

    def __init__(self, k: int):
        self.k = k
        self.terms = basis_mod.cardinal_terms(k) if k > 0 else []

    def value(self, z: torch.Tensor) -> torch.Tensor:
        if self.k == 0:
            return ((z >= -0.5) & (z < 0.5)).to(z.dtype)
        r = z.abs()
        if self.k == 3:
            c0 = (2.0 - r).clamp_min_(0.0)
            c1 = (1.0 - r).clamp_min_(0.0)
            return torch.sub(c0.pow_(3), c1.pow_(3), alpha=4.0).mul_(1.0 / 6.0)
        out = None
        for shift, weight in self.terms:
            term = (shift - r).clamp_min_(0.0).pow_(self.k).mul_(weight)
            out = term if out is None else out.add_(term)
        return out

    def derivative(self, z: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        if self.k == 0:
            return torch.zeros_like(z)
        r = z.abs()
        slope = None
        for shift, weight in self.terms:
            c = (shift - r).clamp_min_(0.0)
            # (shift - |z|)_+^(k-1); for k = 1 the indicator of the support (not c**0 = 1)
            term = (c > 0).to(c.dtype) if self.k == 1 else c.pow_(self.k - 1)
            term = term.mul_(weight * self.k)
            slope = term if slope is None else slope.add_(term)
        return slope.mul_(z.sign()).neg_()


class RBFBasis:
    """A radial kernel of :data:`better_kan.basis.KERNELS` and its derivative."""

    def __init__(self, kernel: str):
        self.kernel = kernel
        self._value = basis_mod.KERNELS[kernel]
        self._derivative = basis_mod.KERNEL_DERIVATIVES[kernel]

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return self._value(z)

    def derivative(self, z: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self._derivative(z, value)


def _silu_derivative(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


#: base activation -> (value, derivative); those the fused layer supports
BASES: dict[str, tuple[Callable, Callable]] = {
    "silu": (F.silu, _silu_derivative),
    "identity": (lambda x: x, torch.ones_like),
    "zero": (torch.zeros_like, torch.zeros_like),
}


class KANLinearFunction(torch.autograd.Function):
    """``y = features(x) @ W^T + bias`` as one autograd node (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, a, b, basis, base: str):
        batch, n_in = x.shape
        n_out, _, n1 = weight.shape
        n = n1 - 1
        z = torch.addcmul(b, x.unsqueeze(-1), a)
        feats = torch.empty((batch, n_in, n1), dtype=x.dtype, device=x.device)
        feats[..., :n] = basis.value(z)
        feats[..., n] = BASES[base][0](x)
        flat = feats.view(batch, n_in * n1)
        w2 = weight.reshape(n_out, n_in * n1)
        y = torch.addmm(bias, flat, w2.t()) if bias is not None else flat.mm(w2.t())
        ctx.basis, ctx.base = basis, base
        ctx.save_for_backward(x, z, feats, weight, a)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        x, z, feats, weight, a = ctx.saved_tensors
        batch, n_in, n1 = feats.shape
        n_out = weight.shape[0]
        n = n1 - 1
        grad_x = grad_w = grad_b = None
        grad_y = grad_y.contiguous()
        if ctx.needs_input_grad[1]:
            grad_w = grad_y.t().mm(feats.view(batch, n_in * n1)).view(n_out, n_in, n1)
        if ctx.needs_input_grad[2]:
            grad_b = grad_y.sum(0)
        if ctx.needs_input_grad[0]:
            grad_f = grad_y.mm(weight.reshape(n_out, n_in * n1)).view(batch, n_in, n1)
            slope = ctx.basis.derivative(z, feats[..., :n]).mul_(a).mul_(grad_f[..., :n])
            grad_x = slope.sum(-1).addcmul_(BASES[ctx.base][1](x), grad_f[..., n])
        return grad_x, grad_w, grad_b, None, None, None, None


def kan_linear(x, weight, bias: Optional[torch.Tensor], a, b, basis, base: str) -> torch.Tensor:
    """x (batch, in), weight (out, in, n + 1), bias (out) or None, a/b (in, n) -> (batch, out)."""
    return KANLinearFunction.apply(x, weight, bias, a, b, basis, base)


__all__ = ["BASES", "KANLinearFunction", "RBFBasis", "SplineBasis", "kan_linear"]
