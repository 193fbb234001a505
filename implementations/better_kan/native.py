"""The native kernels: a whole KAN layer as one operator forward and one backward.

``torch.ops.better_kan.kan_linear`` computes, for x (batch, in), weight (out, in, n + 1) and
bias (out) or None,

    F[s, p, :] = [B_0(x_sp) .. B_{n-1}(x_sp), base(x_sp)]        (batch, in, n + 1)
    y = F.view(batch, in * (n + 1)) @ weight.view(out, -1)^T + bias   (batch, out), contiguous

as one autograd node, whose backward is one operator too (input, weight, bias and the
basis tables ``a``, ``b`` -- trainable RBF centers get their gradient through ``b``).
The basis is named by a string of :data:`better_kan.reference.BASES`: ``"bspline_uniform"``
(closed form; ``a``, ``b`` from :func:`better_kan.basis.uniform_affine`), ``"bspline"``
(Cox--de Boor; ``a`` the knots (in, n + order + 1)) or an RBF kernel (``a = 1/h``,
``b = -g/h``). Implementations:

* CPU: C++ (``implementations/better_kan/csrc/kan_ops.cpp``), built by the package's
  ``setup.py`` into ``better_kan._C`` when a compiler is present;
* CUDA: Triton kernels (:mod:`better_kan.triton_kernels`, launched by :mod:`better_kan.triton_ops`), registered when Triton imports
  and a GPU is present; a kernel that fails to compile or launch falls back, once and with one
  line, on the reference below;
* shapes only (meta-device models, ``torch.compile``'s fake tensors with symbolic batch sizes):
  ``torch.library.register_fake`` functions here;
* ``better_kan::kan_linear_reference``: the same function in plain PyTorch ops
  (:func:`better_kan.reference.kan_linear`). The operator's backward differentiates it instead
  of running the backward kernel when a graph of the gradient is asked for
  (``create_graph=True``), so second derivatives are exact on every device.

``torch.ops.better_kan.kan_network`` runs a whole :class:`better_kan.KAN` of such layers as one
node: one operator call forward and one backward, the layers' activations and features held in
the node, no Python between layers (:data:`NETWORK_OP`, its arguments from
:meth:`better_kan.KAN.network_arguments`; the network's forward takes it when every layer can, and
its layers one by one otherwise).

Where the extension is not built, was built from another version of its source, needs a newer
torch, or ``BETTER_KAN_NATIVE=0``, ``STATUS`` says why and the layers take their PyTorch
path, which computes the same functions (the tests hold both paths to float64 references and
to each other). ``BETTER_KAN_REQUIRE_NATIVE=1`` turns each of those reasons into an error at
import (CI sets it, so a native build that fails fails CI).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Optional

import torch

from . import reference

#: dtypes the kernels are written for (others -- bf16, fp16 -- take the PyTorch path)
DTYPES = (torch.float32, torch.float64)
#: base activations the kernels compute (one table: :data:`better_kan.reference.BASE_ACTIVATION_CODES`)
BASES = tuple(reference.BASE_ACTIVATION_CODES)
#: bases the kernels compute (:data:`better_kan.reference.BASES`)
BASIS_NAMES = tuple(reference.BASES)
#: the oldest torch the extension builds and runs against (torch.library.register_fake and
#: register_kernel, the C++ ``torch::autograd::Function`` with string arguments); pyproject.toml
#: declares the same floor, and a test holds the two together
MIN_TORCH = (2, 4)
#: where the C++ source lives beside this file (absent in a wheel built without it)
SOURCE = Path(__file__).resolve().parent / "csrc" / "kan_ops.cpp"


class NativeBuildError(RuntimeError):
    """``BETTER_KAN_REQUIRE_NATIVE=1`` and the native kernels cannot be used."""


@dataclasses.dataclass
class NativeStatus:
    """What this process can run natively: ``devices`` (e.g. ("cpu", "meta", "cuda")), why not when empty,
    and ``fallbacks``: device -> why that device's kernels were given up at run time (a Triton kernel that
    did not compile, say), its calls then computed by the reference."""

    devices: tuple[str, ...]
    reason: str = ""
    fallbacks: dict = dataclasses.field(default_factory=dict)

    @property
    def available(self) -> bool:
        return bool(self.devices)

    def describe(self) -> str:
        if not self.available:
            return f"PyTorch path ({self.reason})"
        text = "native kernels on " + ", ".join(d for d in self.devices if d != "meta")
        for device, why in self.fallbacks.items():
            text += f"; {device}: reference path ({why})"
        return text


def source_hash(path: Path = SOURCE) -> Optional[str]:
    """sha256 of the C++ source (what setup.py compiles into the extension), or None without it."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _register_python_kernels() -> None:
    @torch.library.register_fake("better_kan::kan_linear_forward")
    def _forward_shapes(x, weight, bias, a, b, basis, order, base):
        return x.new_empty((x.shape[0], weight.shape[0])), x.new_empty((x.shape[1], weight.shape[2], x.shape[0]))

    @torch.library.register_fake("better_kan::kan_linear_backward")
    def _backward_shapes(grad_y, x, weight, features, a, b, basis, order, base, output_mask):
        shapes = (x.shape, weight.shape, (weight.shape[0],), a.shape, b.shape)
        return tuple(x.new_empty(shape if need else (0,)) for shape, need in zip(shapes, output_mask))

    @torch.library.register_fake("better_kan::kan_network")
    def _network_shapes(x, weights, biases, a, b, bases, orders, base):
        return x.new_empty((x.shape[0], weights[-1].shape[0]))

    torch.library.impl("better_kan::kan_linear_reference", "CompositeImplicitAutograd")(reference.kan_linear)


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
    if _torch_version() < MIN_TORCH:
        return NativeStatus((), f"torch {torch.__version__} is older than {'.'.join(map(str, MIN_TORCH))}")
    if not _registered():
        try:
            from . import _C
        except ImportError as exc:
            return NativeStatus((), f"better_kan._C is not built: {exc}")
        built, here = getattr(_C, "SOURCE_SHA256", None), source_hash()
        if here is not None and built != here:
            # its operators are registered by the import already; they stay unused
            return NativeStatus((), "better_kan._C was built from another version of csrc/kan_ops.cpp: rebuild it (make setup)")
        _register_python_kernels()
    devices = ["cpu", "meta"]
    if torch.cuda.is_available():
        from . import triton_ops

        if triton_ops.register():
            devices.append("cuda")
    return NativeStatus(tuple(devices))


STATUS: NativeStatus = _load()
if not STATUS.available and os.environ.get("BETTER_KAN_REQUIRE_NATIVE", "0") == "1":
    raise NativeBuildError(f"BETTER_KAN_REQUIRE_NATIVE=1 but better_kan takes its {STATUS.describe()}")
#: ``torch.ops.better_kan.kan_linear.default``, looked up once (``torch.ops`` attribute lookups cost
#: microseconds per call; the layers call it directly)
OP = torch.ops.better_kan.kan_linear.default if STATUS.available else None
#: ``torch.ops.better_kan.kan_network.default`` (a whole network as one node), or None
NETWORK_OP = torch.ops.better_kan.kan_network.default if STATUS.available else None


_DEVICES = frozenset(STATUS.devices)
_BASIS_NAMES = frozenset(BASIS_NAMES)


def status() -> NativeStatus:
    """The native kernels' status in this process (``STATUS``, with the run-time fallbacks so far)."""
    return STATUS


def supports(x: torch.Tensor, base: str, basis: str = "bspline_uniform") -> bool:
    """True when the operator has a kernel for ``x``'s device and dtype, the base activation and the basis."""
    return x.dtype in DTYPES and x.device.type in _DEVICES and base in BASES and basis in _BASIS_NAMES


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


__all__ = [
    "BASES",
    "BASIS_NAMES",
    "DTYPES",
    "MIN_TORCH",
    "NETWORK_OP",
    "NativeBuildError",
    "NativeStatus",
    "OP",
    "STATUS",
    "kan_linear",
    "source_hash",
    "status",
    "supports",
]
