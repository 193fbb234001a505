"""The Triton (CUDA) kernels of better_kan's operator. Without a GPU, Triton's interpreter runs them
on the CPU (tests/conftest.py turns it on before triton is imported) against the PyTorch path's
autograd, and the compiler builds them for an H100/H200 target (sm_90) in a subprocess; with a GPU
the same checks run the compiled kernels on it. Skipped where Triton is not installed.

Every spline order on uniform and non-uniform knots, every RBF kernel with the gradients of its
tables (trainable centers), every base activation, with and without bias, in float32 and float64,
on random inputs, on the knots, outside the grid and with masked edges (zero columns of the
effective weight).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from kan_inputs import layer_inputs

from better_kan import RBFKANLayer, SplineKANLayer, native, reference
from better_kan import basis as B

triton = pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")
import better_kan.triton_ops as tk  # noqa: E402

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
if not INTERPRETED and not torch.cuda.is_available():
    pytest.skip("triton was imported without TRITON_INTERPRET=1 and there is no GPU", allow_module_level=True)
DEVICE = "cpu" if INTERPRETED else "cuda"
TOL = {torch.float32: dict(atol=3e-5, rtol=3e-5), torch.float64: dict(atol=1e-11, rtol=1e-10)}


@pytest.fixture(autouse=True)
def _no_silent_fallback():
    """A kernel that fails falls back on the reference (and would pass these checks): none may here."""
    yield
    assert not tk.FAILED, tk.FAILED


def _inputs(layer, kind: str, n: int = 37, seed: int = 0) -> torch.Tensor:
    return layer_inputs(layer, kind, n, seed, inside=1.2, outside=(1.2, 3.0))


def _reference(layer, x, a, b, basis_name, order, weight, gy):
    """y and the gradients of (x, weight, bias, a, b) by autograd through the PyTorch path's basis."""
    x = x.clone().requires_grad_()
    a = a.clone().requires_grad_(basis_name not in ("bspline", "bspline_uniform"))
    b = b.clone().requires_grad_(basis_name not in ("bspline", "bspline_uniform"))
    weight = weight.clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_() if layer.bias is not None else None
    if basis_name == "bspline_uniform":
        phi = B.bspline_uniform_plain(x, a, b, order) if order else B.bspline_uniform(x, a, b, 0)
    elif basis_name == "bspline":
        phi = B.bspline_cox_de_boor(x, a, order)
    else:
        phi = B.KERNELS[basis_name](torch.addcmul(b, x.unsqueeze(-1), a))
    feats = torch.cat([phi, layer.base(x).unsqueeze(-1)], dim=-1)
    y = F.linear(feats.reshape(x.shape[0], -1), weight.reshape(weight.shape[0], -1), bias)
    leaves = [x, weight] + ([bias] if bias is not None else []) + [t for t in (a, b) if t.requires_grad]
    grads = torch.autograd.grad(y, leaves, gy)
    names = ["x", "weight"] + (["bias"] if bias is not None else []) + (["a", "b"] if a.requires_grad else [])
    return y.detach(), feats.detach(), dict(zip(names, grads))


def _check(layer, inputs, masked=False, derivative_inputs=True):
    dtype = layer.weight.dtype
    a, b, basis_name, order = (t.detach() if isinstance(t, torch.Tensor) else t for t in layer.native_basis())
    weight = layer.weight.detach().clone()
    if masked:
        weight[:, 1] = 0  # input 1 removed from every output: the effective weight the layer would pass
    x = _inputs(layer, inputs)
    bias = layer.bias.detach() if layer.bias is not None else None
    dev = [t.to(DEVICE) if isinstance(t, torch.Tensor) else t for t in (x, weight, bias, a, b)]
    y, feats = tk.forward(*dev, basis_name, order, layer.base_activation)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(9), dtype=dtype)
    y_ref, feats_ref, ref = _reference(layer, x, a, b, basis_name, order, weight, gy)
    y, feats = y.cpu(), feats.cpu()
    tol = TOL[dtype]
    assert torch.allclose(y, y_ref, **tol), (y - y_ref).abs().max()
    assert torch.allclose(feats, feats_ref.permute(1, 2, 0), **tol)
    mask = [1, 1, int(layer.bias is not None), int("a" in ref), int("b" in ref)]
    grads = tk.backward(
        gy.to(DEVICE), dev[0], dev[1], feats.to(DEVICE), dev[3], dev[4], basis_name, order, layer.base_activation, mask
    )
    got = dict(zip(["x", "weight", "bias", "a", "b"], (g.cpu() for g in grads)))
    for name, expected in ref.items():
        if name == "x" and not derivative_inputs:
            continue
        assert torch.allclose(got[name], expected, **tol), f"{name}: {(got[name] - expected).abs().max()}"


def _weights(layer, seed=1):
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return layer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grid", ["uniform", "non-uniform"])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5])
def test_spline_kernels_under_the_interpreter(k, grid, dtype):
    layer = _weights(SplineKANLayer(3, 5, grid_size=4, spline_order=k, dtype=dtype))
    if grid == "non-uniform":
        layer.update_grid(torch.randn(200, 3, generator=torch.Generator().manual_seed(3), dtype=dtype) * 0.5)
        assert not layer.uniform
    for inputs in ("random", "outside"):
        _check(layer, inputs)
    # on the knots the spline's derivative is one-sided and the paths may pick different sides
    # for k <= 1 (a kink) and in rounding of |z| on the closed form: values and weight gradients
    _check(layer, "knots", masked=True, derivative_inputs=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("kernel", list(B.KERNELS))
def test_rbf_kernels_under_the_interpreter(kernel, trainable, dtype):
    layer = _weights(RBFKANLayer(3, 5, num_centers=6, kernel=kernel, trainable_centers=trainable, dtype=dtype))
    for inputs in ("random", "knots", "outside"):
        _check(layer, inputs, masked=inputs == "outside")


@pytest.mark.parametrize("base", ["silu", "identity", "zero", "gelu", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_base_activations_and_bias_under_the_interpreter(base, bias):
    for dtype in (torch.float32, torch.float64):
        _check(_weights(SplineKANLayer(2, 3, base_activation=base, bias=bias, dtype=dtype)), "random")


def test_a_batch_and_width_beyond_one_block():
    """More rows than one program's block and more outputs than one output block, the
    reduction over (input, basis) across several chunks."""
    layer = _weights(SplineKANLayer(7, 40, grid_size=5, dtype=torch.float32))
    _check(layer, "random")


COMPILE = textwrap.dedent(
    """
    import sys, triton
    from triton.backends.compiler import GPUTarget
    import better_kan.triton_kernels as tk
    dtype, basis, order, base, need_dz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
    ptr = "*" + dtype
    consts = {"BASIS": basis, "ORDER": order, "BASE": base, "BS": 32, "BQ": 32, "IEEE": dtype == "fp32"}
    for fn, extra in ((tk._forward_kernel, {"HAS_BIAS": True, "BK": 32}), (tk._backward_kernel, {"NEED_DZ": need_dz, "BJ": 16})):
        constexprs = {**consts, **extra}
        signature = {}
        for name in fn.arg_names:
            signature[name] = "constexpr" if name in constexprs else ptr if name.endswith("_ptr") else "i32"
        compiled = triton.compile(triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                                  target=GPUTarget("cuda", 90, 32))
        assert compiled.asm.get("cubin"), fn.__name__
    print("compiled")
    """
)


@pytest.mark.parametrize(
    "dtype, basis, order, base, need_dz",
    [
        ("fp32", 0, 3, 0, False),
        ("fp32", 1, 3, 0, False),
        ("fp32", 2, 0, 0, True),
        ("fp64", 7, 0, 3, True),
        ("fp64", 0, 5, 4, False),
    ],
)
def test_kernels_compile_for_an_sm90_gpu(dtype, basis, order, base, need_dz):
    """The compiler (not the interpreter) accepts both kernels and emits a cubin for an H100/H200."""
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, "-c", COMPILE, dtype, str(basis), str(order), str(base), "1" if need_dz else "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0 and "compiled" in out.stdout, out.stderr[-3000:]


# ----------------------------------------------------------------------------- tiles, layouts, limits, failures


@pytest.fixture
def tiles():
    saved = tk.Tiles(**vars(tk.TILES))
    yield tk.TILES
    for name, value in vars(saved).items():
        setattr(tk.TILES, name, value)


@pytest.mark.parametrize("bs, bq, bk, bj", [(16, 16, 16, 16), (64, 16, 64, 32), (16, 64, 32, 64)])
def test_other_tiles_give_the_same_results(tiles, bs, bq, bk, bj):
    tiles.bs, tiles.bq, tiles.bk, tiles.bj = bs, bq, bk, bj
    _check(_weights(SplineKANLayer(3, 5, grid_size=9, spline_order=3, dtype=torch.float64)), "random")
    _check(_weights(RBFKANLayer(3, 5, num_centers=20, trainable_centers=True, dtype=torch.float64)), "random")


def test_a_grid_of_a_thousand_intervals_is_tiled(tiles):
    """grid 1000 (the KAN paper's largest grid extension): the backward walks the features in tiles."""
    tiles.bj = 32
    layer = _weights(SplineKANLayer(1, 2, grid_size=1000, spline_order=3, dtype=torch.float64))
    _check(layer, "random")


def test_non_contiguous_inputs_and_upstream_gradients():
    layer = _weights(SplineKANLayer(3, 4, grid_size=5, dtype=torch.float64))
    a, b, name, order = (t.detach() if isinstance(t, torch.Tensor) else t for t in layer.native_basis())
    x = torch.rand(3, 21, dtype=torch.float64).t()  # (21, 3), strides (1, 21)
    w = layer.weight.detach()
    y, feats = tk.forward(x.to(DEVICE), w.to(DEVICE), None, a.to(DEVICE), b.to(DEVICE), name, order, "silu")
    assert y.is_contiguous() and y.shape == (21, 4)
    expected = reference.forward(x, w, None, a, b, name, order, "silu")
    torch.testing.assert_close(y.cpu(), expected[0])
    gy = torch.rand(4, 21, dtype=torch.float64).t()
    got = tk.backward(
        gy.to(DEVICE), x.to(DEVICE), w.to(DEVICE), feats, a.to(DEVICE), b.to(DEVICE), name, order, "silu", [1, 1, 0, 0, 0]
    )
    want = reference.backward(gy, x, w, None, a, b, name, order, "silu", [1, 1, 0, 0, 0])
    for g, e in zip(got[:2], want[:2]):
        torch.testing.assert_close(g.cpu(), e)


def test_nan_and_inf_propagate_as_in_the_reference():
    for layer in (SplineKANLayer(2, 3, dtype=torch.float64), RBFKANLayer(2, 3, kernel="matern32", dtype=torch.float64)):
        a, b, name, order = (t.detach() if isinstance(t, torch.Tensor) else t for t in layer.native_basis())
        x = torch.tensor([[float("nan"), 0.2], [float("inf"), -float("inf")], [0.3, -0.4]], dtype=torch.float64)
        w = _weights(layer).weight.detach()
        y, _ = tk.forward(x.to(DEVICE), w.to(DEVICE), None, a.to(DEVICE), b.to(DEVICE), name, order, "silu")
        expected, _ = reference.forward(x, w, None, a, b, name, order, "silu")
        torch.testing.assert_close(y.cpu(), expected, equal_nan=True)


def test_launch_grids_are_one_dimensional():
    """Any number of inputs and outputs (a second grid axis stops at 65,535)."""
    source = open(tk.__file__).read()
    assert "_forward_kernel[grid]" in source and "grid = (triton.cdiv(batch, tiles.bs) * triton.cdiv(n_out, tiles.bq),)" in source
    assert "_backward_kernel[(triton.cdiv(batch, tiles.bs) * n_in,)]" in source


def test_the_checks_and_their_messages_are_the_cpu_operators():
    layer = SplineKANLayer(2, 3, dtype=torch.float64)
    a, b, name, order = (t.detach() if isinstance(t, torch.Tensor) else t for t in layer.native_basis())
    w = layer.weight.detach()
    x = torch.rand(4, 2, dtype=torch.float64)
    cases = [
        ((x, w, None, a, b, "cubic", order, "silu"), "unknown basis 'cubic'"),
        ((x, w, None, a, b, name, order, "relu"), "unknown base activation 'relu'"),
        ((x[0], w, None, a, b, name, order, "silu"), r"x must be \(batch, in\)"),
        ((x, w[:, :1], None, a, b, name, order, "silu"), r"weight must be \(out, in, n \+ 1\)"),
        ((x.float(), w, None, a, b, name, order, "silu"), "must share one dtype"),
        ((x, w, torch.zeros(7, dtype=torch.float64), a, b, name, order, "silu"), r"bias must be \(out,\)"),
        ((x, w, None, a[:, :3], b, name, order, "silu"), "a must be"),
    ]
    for args, message in cases:
        with pytest.raises(RuntimeError, match=message):
            tk.forward(*args)


def test_device_guard_is_the_tensors_device():
    assert isinstance(tk.device_guard(torch.device("cpu")), contextlib.nullcontext)
    guard = tk.device_guard(torch.device("cuda", 1))
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1


def test_a_kernel_that_fails_to_compile_falls_back_once_with_one_line(monkeypatch, capsys):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise triton.compiler.errors.CompilationError("kernel.py", None, "out of resources: shared memory")

    monkeypatch.setattr(tk, "_launch_forward", broken)
    monkeypatch.setattr(tk, "FAILED", {})
    monkeypatch.setattr(native.STATUS, "fallbacks", {})
    layer = _weights(SplineKANLayer(2, 3, dtype=torch.float64))
    a, b, name, order = (t.detach() if isinstance(t, torch.Tensor) else t for t in layer.native_basis())
    x, w = torch.rand(5, 2, dtype=torch.float64), layer.weight.detach()
    for _ in range(2):
        y, feats = tk.forward(x.to(DEVICE), w.to(DEVICE), None, a.to(DEVICE), b.to(DEVICE), name, order, "silu")
        expected = reference.forward(x, w, None, a, b, name, order, "silu")
        torch.testing.assert_close(y.cpu(), expected[0])
        torch.testing.assert_close(feats.cpu(), expected[1])
    assert len(calls) == 1  # given up after the first failure
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("better_kan:")]
    assert len(lines) == 1 and "CompilationError" in lines[0] and "PyTorch reference" in lines[0]
    assert "reference path (the Triton kernels failed: CompilationError" in native.STATUS.describe()
