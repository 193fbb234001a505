"""Launching better_kan's Triton kernels (:mod:`better_kan.triton_kernels`) as the CUDA implementation
of ``better_kan::kan_linear_forward`` / ``kan_linear_backward``.

Launches are one-dimensional grids (no 65,535 limit on a second axis: any number of inputs and
outputs), with 64-bit offsets in the kernels (tensors over 2^31 elements), on the inputs' device
(not the current one), after the same input checks as the C++ kernels with the same messages.
grad_weight = grad_y^T F and grad_bias = sum(grad_y) are cuBLAS/ATen calls. A kernel that fails to
compile or launch (an old GPU, a Triton without this target) makes this process compute the
operator with :mod:`better_kan.reference` from then on, said once in one line and recorded in
:func:`better_kan.native.status`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
from typing import Optional

import torch

from . import reference
from .triton_kernels import AVAILABLE, BASE_CODES, BASIS_CODES

if AVAILABLE:
    import triton

    from .triton_kernels import _backward_kernel, _forward_kernel, _terms


@dataclasses.dataclass
class Tiles:
    """Block sizes: batch rows (``bs``), outputs (``bq``), the forward's (input, basis) chunk (``bk``)
    and the backward's feature tile (``bj``, at most; smaller when n + 1 is). Each at least 16 (tl.dot)."""

    bs: int = 32
    bq: int = 32
    bk: int = 32
    bj: int = 32


#: the block sizes the launches use (tests change them)
TILES = Tiles()


def _feature_tile(n1: int) -> int:
    """The backward's feature tile: the power of two >= n + 1 (at least 16, for tl.dot), capped at ``TILES.bj``."""
    return max(16, min(TILES.bj, 1 << max(0, math.ceil(math.log2(max(1, n1))))))


def _shape(x, weight):
    batch, n_in = x.shape
    n_out, _, n1 = weight.shape
    return batch, n_in, n_out, n1 - 1


def check_inputs(x, weight, bias, a, b, basis: str, order: int, base: str) -> None:
    """The C++ kernels' checks (csrc/kan_ops.cpp ``check_inputs``), with their messages, plus one device."""
    if basis not in BASIS_CODES:
        raise RuntimeError(f"better_kan: unknown basis '{basis}'")
    if base not in BASE_CODES:
        raise RuntimeError(f"better_kan: unknown base activation '{base}'")
    if x.dim() != 2:
        raise RuntimeError(f"better_kan: x must be (batch, in), got {list(x.shape)}")
    if weight.dim() != 3 or weight.shape[1] != x.shape[1]:
        raise RuntimeError(f"better_kan: weight must be (out, in, n + 1) with in = {x.shape[1]}, got {list(weight.shape)}")
    if weight.shape[2] < 2:
        raise RuntimeError("better_kan: weight needs at least one basis function and the base weight")
    if not (x.dtype == weight.dtype == a.dtype):
        raise RuntimeError("better_kan: x, weight and the basis tables must share one dtype")
    n_in, n = x.shape[1], weight.shape[2] - 1
    if basis == "bspline":
        if order < 0:
            raise RuntimeError("better_kan: spline order must be >= 0")
        if a.dim() != 2 or tuple(a.shape) != (n_in, n + order + 1):
            raise RuntimeError(f"better_kan: knots must be (in, n + order + 1) = ({n_in}, {n + order + 1}), got {list(a.shape)}")
    else:
        if basis == "bspline_uniform" and not 0 <= order <= 30:
            raise RuntimeError(f"better_kan: spline order must be in 0..30, got {order}")
        if a.dim() != 2 or tuple(a.shape) != (n_in, n):
            raise RuntimeError(f"better_kan: a must be ({n_in}, {n}) = (in, n), got {list(a.shape)}")
        if b.shape != a.shape or b.dtype != a.dtype:
            raise RuntimeError(f"better_kan: b must match a, got {list(b.shape)}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
        raise RuntimeError(f"better_kan: bias must be (out,), got {list(bias.shape)}")
    tensors = [t for t in (weight, bias, a, b) if t is not None and t.numel()]
    if any(t.device != x.device for t in tensors):
        raise RuntimeError("better_kan: x, weight, bias and the basis tables must be on one device")


def device_guard(device: torch.device):
    """Launch on ``device`` (a model on cuda:1 while cuda:0 is current), not on the current device."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


#: device -> why its kernels were given up (a compile or launch failure); those calls take the reference
FAILED: dict[str, str] = {}


def _give_up(device: torch.device, exc: BaseException) -> None:
    reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
    FAILED[str(device)] = reason
    from . import native

    native.STATUS.fallbacks[str(device)] = f"the Triton kernels failed: {reason}"
    print(
        f"better_kan: the Triton kernels failed on {device} ({reason}); computing the operator with the PyTorch reference",
        file=sys.stderr,
    )


def _launch_or_reference(device: torch.device, launch, fallback, args):
    """``launch(*args)`` on ``device``; after a compile or launch failure there, ``fallback(*args)``."""
    if str(device) not in FAILED:
        try:
            with device_guard(device):
                return launch(*args)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # Triton's CompilationError, OutOfResources, a driver's launch error
            _give_up(device, exc)
    return fallback(*args)


def forward(x, weight, bias: Optional[torch.Tensor], a, b, basis: str, order: int, base: str):
    """(y (batch, out), contiguous; features (in, n + 1, batch))."""
    check_inputs(x, weight, bias, a, b, basis, order, base)
    args = (x, weight, bias, a, b, basis, order, base)
    return _launch_or_reference(x.device, _launch_forward, reference.forward, args)


def _launch_forward(x, weight, bias, a, b, basis, order, base):
    batch, n_in, n_out, n = _shape(x, weight)
    w = weight.contiguous()
    a, b = a.contiguous(), b.contiguous()
    features = torch.empty((n_in, n + 1, batch), device=x.device, dtype=x.dtype)
    y = torch.empty((batch, n_out), device=x.device, dtype=x.dtype)
    if batch == 0:
        return y, features
    tiles = TILES
    grid = (triton.cdiv(batch, tiles.bs) * triton.cdiv(n_out, tiles.bq),)
    _forward_kernel[grid](
        x,
        x.stride(0),
        x.stride(1),
        w,
        bias if bias is not None else w,
        a,
        b if b.numel() else a,
        _terms(order, x),
        features,
        y,
        batch,
        n_in,
        n_out,
        n,
        a.shape[1],
        HAS_BIAS=bias is not None,
        BASIS=BASIS_CODES[basis],
        ORDER=order,
        BASE=BASE_CODES[base],
        BS=tiles.bs,
        BQ=tiles.bq,
        BK=tiles.bk,
        IEEE=x.dtype == torch.float32,
    )
    return y, features


def backward(grad_y, x, weight, features, a, b, basis: str, order: int, base: str, output_mask):
    """(grad_x, grad_weight, grad_bias, grad_a, grad_b); the ones not asked for are empty."""
    check_inputs(x, weight, None, a, b, basis, order, base)
    args = (grad_y, x, weight, features, a, b, basis, order, base, output_mask)
    return _launch_or_reference(x.device, _launch_backward, reference.backward, args)


def _launch_backward(grad_y, x, weight, features, a, b, basis, order, base, output_mask):
    batch, n_in, n_out, n = _shape(x, weight)
    need_x, need_w, need_bias, need_a, need_b = (bool(m) for m in output_mask)
    grad_x, grad_w, grad_bias, grad_a, grad_b = (x.new_empty(0) for _ in range(5))  # never aliased
    features = features.contiguous()
    if need_w:
        grad_w = grad_y.t().mm(features.view(n_in * (n + 1), batch).t()).view(weight.shape)
    if need_bias:
        grad_bias = grad_y.sum(0)
    if need_x or need_a or need_b:
        need_dz = need_a or need_b
        gx = torch.zeros((batch, n_in), device=x.device, dtype=x.dtype)
        dz = torch.zeros((n_in, n, batch), device=x.device, dtype=x.dtype) if need_dz else gx
        tiles = TILES
        if batch:
            _backward_kernel[(triton.cdiv(batch, tiles.bs) * n_in,)](
                grad_y,
                grad_y.stride(0),
                grad_y.stride(1),
                x,
                x.stride(0),
                x.stride(1),
                weight.contiguous(),
                features,
                a.contiguous(),
                b.contiguous() if b.numel() else a,
                _terms(order, x),
                gx,
                dz,
                batch,
                n_in,
                n_out,
                n,
                a.shape[1],
                NEED_DZ=need_dz,
                BASIS=BASIS_CODES[basis],
                ORDER=order,
                BASE=BASE_CODES[base],
                BS=tiles.bs,
                BQ=tiles.bq,
                BJ=_feature_tile(n + 1),
                IEEE=x.dtype == torch.float32,
            )
        grad_x = gx if need_x else grad_x
        if need_b:
            grad_b = dz.sum(-1)
        if need_a:
            grad_a = (dz * x.t().unsqueeze(1)).sum(-1)
    return grad_x, grad_w, grad_bias, grad_a, grad_b


_REGISTERED = False


def register() -> bool:
    """Make these the CUDA kernels of the better_kan operators (once); False without Triton."""
    global _REGISTERED
    if not AVAILABLE:
        return False
    if not _REGISTERED:
        try:
            torch.library.register_kernel("better_kan::kan_linear_forward", "cuda", forward)
            torch.library.register_kernel("better_kan::kan_linear_backward", "cuda", backward)
        except RuntimeError:  # another copy of this package registered its kernels first
            pass
        _REGISTERED = True
    return True


__all__ = [
    "AVAILABLE",
    "BASE_CODES",
    "BASIS_CODES",
    "FAILED",
    "TILES",
    "Tiles",
    "backward",
    "check_inputs",
    "device_guard",
    "forward",
    "register",
]
