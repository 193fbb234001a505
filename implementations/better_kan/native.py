"""The native kernels: a whole KAN layer as one operator forward and one backward.

``torch.ops.better_kan.kan_linear`` computes, for x (batch, in), weight (out, in, n + 1) and
bias (out) or None,

    F[s, p, :] = [B_0(x_sp) .. B_{n-1}(x_sp), base(x_sp)]        (batch, in, n + 1)
    y = F.view(batch, in * (n + 1)) @ weight.view(out, -1)^T + bias   (batch, out)

as one autograd node, whose backward is one operator too (input, weight, bias and the
basis tables ``a``, ``b`` -- trainable RBF centers get their gradient through ``b``).
The basis is named by a string: ``"bspline_uniform"`` (closed form; ``a``, ``b`` from
:func:`better_kan.basis.uniform_affine`), ``"bspline"`` (Cox--de Boor; ``a`` the knots
(in, n + order + 1)) or an RBF kernel of :data:`better_kan.basis.KERNELS` (``a = 1/h``,
``b = -g/h``). Implementations:

* CPU: C++ (``implementations/better_kan/csrc/kan_ops.cpp``), built by the package's
  ``setup.py`` into ``better_kan._C`` when a compiler is present;
* CUDA: Triton kernels (:mod:`better_kan.triton_kernels`), registered when Triton imports
  and a GPU is present;
* shapes only (meta-device models, ``torch.compile``'s fake tensors with symbolic batch sizes):
  ``torch.library.register_fake`` functions here.

Where the extension is not built (or ``BETTER_KAN_NATIVE=0``), :func:`supports` is False and
the layers take their PyTorch path, which computes the same functions (the tests hold
both paths to float64 references and to each other).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import torch

#: dtypes the kernels are written for (others -- bf16, fp16 -- take the PyTorch path)
DTYPES = (torch.float32, torch.float64)
#: base activations the kernels compute
BASES = ("silu", "identity", "zero", "gelu", "tanh")


@dataclasses.dataclass(frozen=True)
class NativeStatus:
    """What this process can run natively: ``devices`` (e.g. ("cpu", "meta", "cuda")), and why not when empty."""

    devices: tuple[str, ...]
    reason: str = ""

    @property
    def available(self) -> bool:
        return bool(self.devices)

    def describe(self) -> str:
        if not self.available:
            return f"PyTorch path ({self.reason})"
        return "native kernels on " + ", ".join(d for d in self.devices if d != "meta")


def _register_fakes() -> None:
    @torch.library.register_fake("better_kan::kan_linear_forward")
    def _forward_shapes(x, weight, bias, a, b, basis, order, base):
        # y is the transposed view of a (out, batch) result
        return x.new_empty((weight.shape[0], x.shape[0])).t(), x.new_empty((x.shape[1], weight.shape[2], x.shape[0]))

    @torch.library.register_fake("better_kan::kan_linear_backward")
    def _backward_shapes(grad_y, x, weight, features, a, b, basis, order, base, output_mask):
        shapes = (x.shape, weight.shape, (weight.shape[0],), a.shape, b.shape)
        return tuple(x.new_empty(shape if need else (0,)) for shape, need in zip(shapes, output_mask))


def _registered() -> bool:
    """True when the operators are registered already (a second copy of this package in the process:
    the tests' mutation runs import the tree's copy beside the installed one)."""
    try:
        torch.ops.better_kan.kan_linear_forward.default
    except (AttributeError, RuntimeError):
        return False
    return True


def _load() -> NativeStatus:
    if os.environ.get("BETTER_KAN_NATIVE", "1") == "0":
        return NativeStatus((), "BETTER_KAN_NATIVE=0")
    if not _registered():
        try:
            from . import _C  # noqa: F401  (importing it registers the operators)
        except ImportError as exc:
            return NativeStatus((), f"better_kan._C is not built: {exc}")
        _register_fakes()
    devices = ["cpu", "meta"]
    if torch.cuda.is_available():
        from . import triton_kernels

        if triton_kernels.register():
            devices.append("cuda")
    return NativeStatus(tuple(devices))


STATUS: NativeStatus = _load()
#: ``torch.ops.better_kan.kan_linear.default``, looked up once (``torch.ops`` attribute lookups cost
#: microseconds per call; the layers call it directly)
OP = torch.ops.better_kan.kan_linear.default if STATUS.available else None


_DEVICES = frozenset(STATUS.devices)


def supports(x: torch.Tensor, base: str) -> bool:
    """True when the operator has a kernel for ``x``'s device and dtype and the base activation."""
    return x.dtype in DTYPES and x.device.type in _DEVICES and base in BASES


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
    """x (batch, in), weight (out, in, n + 1), bias (out) or None -> (batch, out); see the module docstring."""
    return OP(x, weight, bias, a, b, basis, order, base)


__all__ = ["BASES", "DTYPES", "OP", "NativeStatus", "STATUS", "kan_linear", "supports"]
