"""The native operator at the edges a user reaches: second derivatives, views, NaN and inf, sizes
past the kernels' blocks and threading thresholds, deep networks, torch.compile, inference mode,
the operator's registration (opcheck), one table of bases for every path, stale and missing builds.

Each check holds the native path (C++ on the CPU) to the PyTorch path or to float64 references;
tests/test_triton_kernels.py holds the Triton kernels to the same under Triton's interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from better_kan import RBFKANLayer, SplineKANLayer, build_kan, native, reference
from better_kan import basis as B

ROOT = Path(__file__).resolve().parents[1]
D = torch.float64
needs_native = pytest.mark.skipif(not native.STATUS.available, reason=native.STATUS.describe())

SPLINES = [(k, path) for k in range(6) for path in ("closed-form", "cox-de-boor")]
KERNELS = list(B.KERNELS)


def _spline(k: int, path: str, n_in=2, n_out=3, **kw) -> SplineKANLayer:
    layer = SplineKANLayer(n_in, n_out, grid_size=4, spline_order=k, dtype=D, **kw)
    if path == "cox-de-boor":
        layer.uniform, layer._cox_tables = False, None
    return _randomize(layer)


def _randomize(layer, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=D))
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=D))
    return layer


def _away_from_knots(n: int, n_in: int, seed=0) -> torch.Tensor:
    """Inputs in (-0.9, 0.9) at least 0.02 from every knot of a grid-4 layer (second derivatives of a
    spline jump on knots: finite differences across one disagree with either side)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, n_in, generator=gen, dtype=D) * 1.8 - 0.9
    knots = torch.linspace(-1, 1, 5, dtype=D)
    near = (x.unsqueeze(-1) - knots).abs().amin(-1) < 0.02
    return torch.where(near, x + 0.05, x)


def _layer_function(layer):
    """(x, weight, bias) -> y through the layer, for gradcheck/gradgradcheck."""

    def fn(x, weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,))

    return fn


def _gradgrad(layer, x):
    fn = _layer_function(layer)
    args = (
        x.clone().requires_grad_(),
        layer.weight.detach().clone().requires_grad_(),
        layer.bias.detach().clone().requires_grad_(),
    )
    assert torch.autograd.gradcheck(fn, args, atol=1e-6, rtol=1e-5)
    assert torch.autograd.gradgradcheck(fn, args, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- second derivatives


PATHS = [pytest.param(True, id="native", marks=needs_native), pytest.param(False, id="pytorch")]


@pytest.mark.parametrize("use_native", PATHS)
@pytest.mark.parametrize("k, path", SPLINES)
def test_spline_second_derivatives_gradgradcheck(k, path, use_native):
    layer = _spline(k, path)
    layer.use_native = use_native
    _gradgrad(layer, _away_from_knots(5, 2))


@pytest.mark.parametrize("use_native", PATHS)
@pytest.mark.parametrize("base", list(reference.BASE_ACTIVATIONS))
@pytest.mark.parametrize("kernel", KERNELS)
def test_rbf_second_derivatives_gradgradcheck_every_kernel_and_base(kernel, base, use_native):
    layer = _randomize(RBFKANLayer(2, 3, num_centers=4, kernel=kernel, base_activation=base, dtype=D))
    layer.use_native = use_native
    x = _away_from_knots(5, 2) + 0.013  # off the centers (|z| = 0 is a kink of the Matern kernels)
    _gradgrad(layer, x)


@pytest.mark.parametrize("use_native", PATHS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_trainable_centers_second_derivatives(kernel, use_native):
    layer = _randomize(RBFKANLayer(2, 2, num_centers=4, kernel=kernel, trainable_centers=True, dtype=D))
    layer.use_native = use_native
    x = (_away_from_knots(4, 2) + 0.013).requires_grad_()

    def fn(x, centers):
        return torch.func.functional_call(layer, {"centers": centers}, (x,))

    assert torch.autograd.gradgradcheck(fn, (x, layer.centers.detach().clone().requires_grad_()), atol=1e-5, rtol=1e-4)


def _pinn_gradients(model, x, use_native: bool):
    """Parameter gradients of a physics-informed loss: mean((dy/dx)^2) + mean(y^2)."""
    for layer in model.layers:
        layer.use_native = use_native
    x = x.clone().requires_grad_()
    y = model(x)
    (dy,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    loss = dy.square().mean() + y.square().mean()
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params)


@needs_native
@pytest.mark.parametrize("kind", ["spline", "spline-cox", "rbf", "rbf-trainable"])
def test_pinn_loss_parameter_gradients_equal_the_pytorch_path(kind):
    torch.manual_seed(0)
    if kind.startswith("spline"):
        model = build_kan([2, 4, 1], layers="spline", dtype=D)
        if kind == "spline-cox":
            for layer in model.layers:
                layer.uniform, layer._cox_tables = False, None
    else:
        model = build_kan([2, 4, 1], layers="rbf", trainable_centers=kind == "rbf-trainable", dtype=D)
    for layer in model.layers:
        _randomize(layer)
    x = _away_from_knots(16, 2)
    native_grads = _pinn_gradients(model, x, True)
    torch_grads = _pinn_gradients(model, x, False)
    for a, b in zip(native_grads, torch_grads):
        assert a.abs().sum() > 0  # never silently zero
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


@needs_native
def test_the_kernels_raise_when_differentiated_directly():
    """Called directly with inputs that need a gradient, the forward kernel raises one clear error
    instead of returning a result whose gradient would be silently zero."""
    layer = _spline(3, "closed-form")
    a, b, basis, order = layer.native_basis()
    w = layer.weight.detach().clone().requires_grad_()
    y, _ = torch.ops.better_kan.kan_linear_forward(torch.rand(4, 2, dtype=D), w, None, a, b, basis, order, "silu")
    with pytest.raises(RuntimeError, match="not implemented|does not require grad|derivative"):
        y.sum().backward()


# ----------------------------------------------------------------------------- what a user does with the output


@needs_native
@pytest.mark.parametrize("batch", [1, 16, 70, 5000])
def test_outputs_are_contiguous_and_behave_like_the_pytorch_path(batch):
    layer = _spline(3, "closed-form", n_in=3, n_out=4)
    x = torch.rand(batch, 3, dtype=D)
    y = layer(x)
    assert y.is_contiguous() and (batch == 1 or y.stride() == (4, 1))
    layer.use_native = False
    expected = layer(x)
    torch.testing.assert_close(y.view(-1), expected.view(-1))
    torch.testing.assert_close(y.view(batch * 2, 2), expected.reshape(batch * 2, 2))
    y.detach().add_(1.0)  # in place on a detached result: allowed, as on the PyTorch path
    assert y.data_ptr() != 0


def _with_specials(n_in: int) -> torch.Tensor:
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.3, -1e3, 1e3, 0.0, -0.7], dtype=D)
    return specials.unsqueeze(1).expand(-1, n_in).clone()


def _paths(layer, x):
    out = {}
    for use in (True, False):
        layer.use_native = use
        xr = x.clone().requires_grad_()
        y = layer(xr)
        grads = torch.autograd.grad(y.sum(), [xr, layer.weight])
        out[use] = (y.detach(), *grads)
    return out


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("base", list(reference.BASE_ACTIVATIONS))
@pytest.mark.parametrize("basis", ["bspline_uniform", "bspline", *KERNELS])
def test_nan_and_inf_propagate_as_on_the_pytorch_path(basis, base, dtype):
    if basis.startswith("bspline"):
        layer = SplineKANLayer(2, 3, grid_size=4, base_activation=base, dtype=dtype)
        if basis == "bspline":
            layer.uniform, layer._cox_tables = False, None
    else:
        layer = RBFKANLayer(2, 3, num_centers=4, kernel=basis, base_activation=base, dtype=dtype)
    x = _with_specials(2).to(dtype)
    got = _paths(layer, x)
    for name, a, b in zip(("y", "grad x", "grad weight"), got[True], got[False]):
        assert torch.equal(a.isnan(), b.isnan()), (name, a, b)
        assert torch.equal(a.isinf(), b.isinf()), (name, a, b)
        torch.testing.assert_close(a, b, equal_nan=True, atol=1e-5, rtol=1e-5, msg=name)


# ----------------------------------------------------------------------------- sizes, depths, layouts


@needs_native
@pytest.mark.parametrize(
    "n_in, n_out, batch, grid, path",
    [
        (3, 4, 200, 5, "closed-form"),  # batch over 64 (the Cox--de Boor block)
        (40, 8, 500, 5, "closed-form"),  # 40 x 8 x 500 = 160k basis values: several threads
        (40, 8, 500, 5, "cox-de-boor"),  # many (input, block) jobs
        (6, 5, 131, 30, "cox-de-boor"),  # 131 rows: three blocks, the last partial
        (2, 3, 40000, 5, "closed-form"),  # x of 80k elements: the ATen transpose branch
    ],
)
def test_sizes_past_the_blocks_and_threading_thresholds(n_in, n_out, batch, grid, path):
    layer = SplineKANLayer(n_in, n_out, grid_size=grid, dtype=torch.float32)
    if path == "cox-de-boor":
        layer.uniform, layer._cox_tables = False, None
    x = torch.rand(batch, n_in) * 2 - 1
    got = _paths(layer, x)
    for a, b in zip(got[True], got[False]):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=2e-4)


@needs_native
def test_a_feature_major_input_takes_the_view_branch():
    """x whose transpose is contiguous (x = z.t()): the kernel reads it without a copy, same numbers."""
    layer = _spline(3, "closed-form", n_in=5, n_out=2)
    x = torch.rand(5, 33, dtype=D).t()
    got = _paths(layer, x)
    for a, b in zip(got[True], got[False]):
        torch.testing.assert_close(a, b)


@needs_native
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("layer_type", ["spline", "rbf"])
def test_deep_networks_equal_the_pytorch_path(depth, layer_type):
    torch.manual_seed(depth)
    widths = [3] + [5] * (depth - 1) + [2]
    model = build_kan(widths, layers=layer_type, dtype=D)
    x = torch.rand(70, 3, dtype=D) * 2 - 1
    results = []
    for use in (True, False):
        for layer in model.layers:
            layer.use_native = use
        xr = x.clone().requires_grad_()
        y = model(xr)
        results.append((y, *torch.autograd.grad(y.square().sum(), [xr, *model.parameters()])))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


@needs_native
def test_inference_mode_and_no_grad():
    layer = _spline(3, "closed-form")
    x = torch.rand(9, 2, dtype=D)
    expected = layer(x).detach()
    with torch.inference_mode():
        y = layer(x)
    assert y.is_contiguous() and torch.allclose(y, expected)
    with torch.no_grad():
        assert torch.allclose(layer(x), expected)


@needs_native
@pytest.mark.parametrize("layer_type", ["spline", "rbf"])
def test_compiled_training_steps_fullgraph(layer_type):
    """A model compiled whole (fullgraph=True: no graph break at the operator), trained three steps
    beside an uncompiled copy: the same losses and parameters (AOT autograd runs the backward operator)."""
    torch.manual_seed(0)
    model = build_kan([2, 5, 1], layers=layer_type)
    eager = build_kan([2, 5, 1], layers=layer_type)
    eager.load_state_dict(model.state_dict())
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x, target = torch.rand(64, 2), torch.rand(64, 1)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (model, eager)]
    for _ in range(3):
        losses = []
        for m, opt in zip((compiled, eager), opts):
            opt.zero_grad()
            loss = (m(x) - target).square().mean()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        torch.testing.assert_close(*losses, atol=1e-6, rtol=1e-5)
    for p, q in zip(model.parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


@needs_native
@pytest.mark.parametrize("basis", ["bspline_uniform", "bspline", "gaussian"])
def test_opcheck_of_both_operators(basis):
    """Schemas, fake (meta) kernels, autograd registration and AOT dispatch of the forward and
    backward operators (torch.library.opcheck)."""
    if basis == "gaussian":
        layer = RBFKANLayer(3, 2, num_centers=4, trainable_centers=True, dtype=D)
    else:
        layer = _spline(2, "closed-form" if basis == "bspline_uniform" else "cox-de-boor", n_in=3, n_out=2)
    a, b, name, order = (t.detach() if isinstance(t, torch.Tensor) else t for t in layer.native_basis())
    x = torch.rand(7, 3, dtype=D)
    w = layer.weight.detach()
    args = (x, w, layer.bias.detach(), a, b, name, order, "silu")
    torch.library.opcheck(torch.ops.better_kan.kan_linear_forward.default, args)
    y, features = torch.ops.better_kan.kan_linear_forward(*args)
    trainable = basis == "gaussian"
    mask = [1, 1, 1, int(trainable), int(trainable)]
    torch.library.opcheck(
        torch.ops.better_kan.kan_linear_backward.default, (torch.rand_like(y), x, w, features, a, b, name, order, "silu", mask)
    )
    torch.library.opcheck(
        torch.ops.better_kan.kan_linear.default,
        (x.requires_grad_(), w.clone().requires_grad_(), None, a, b, name, order, "silu"),
        test_utils=("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"),
    )


# ----------------------------------------------------------------------------- one table, every path


@needs_native
@pytest.mark.parametrize("base", list(reference.BASE_ACTIVATION_CODES))
@pytest.mark.parametrize("basis", list(reference.BASES))
def test_every_entry_of_the_table_on_the_cpu_operator(basis, base):
    """The C++ operator computes what the reference names: a swapped or missing code fails here."""
    if basis == "bspline_uniform":
        layer = _spline(3, "closed-form", base_activation=base)
    elif basis == "bspline":
        layer = _spline(3, "cox-de-boor", base_activation=base)
    else:
        layer = _randomize(RBFKANLayer(2, 3, num_centers=4, kernel=basis, base_activation=base, dtype=D))
    a, b, name, order = layer.native_basis()
    assert name == basis
    x = torch.rand(11, 2, dtype=D) * 2.4 - 1.2
    y = native.kan_linear(x, layer.weight, layer.bias, a, b, name, order, base)
    torch.testing.assert_close(y, reference.kan_linear(x, layer.weight, layer.bias, a, b, name, order, base))


def test_the_table_names_every_basis_the_layers_use():
    assert set(reference.BASES) == {"bspline_uniform", "bspline", *B.KERNELS}
    assert sorted(reference.BASES.values()) == list(range(len(reference.BASES)))
    assert sorted(reference.BASE_ACTIVATION_CODES.values()) == list(range(len(reference.BASE_ACTIVATION_CODES)))
    source = (ROOT / "implementations/better_kan/csrc/kan_ops.cpp").read_text()
    for name in (*reference.BASES, *reference.BASE_ACTIVATION_CODES):
        assert f'"{name}"' in source, name
    basis_enum = re.search(r"enum class Basis \{([^}]*)\}", source).group(1).split(",")
    base_enum = re.search(r"enum class Base \{([^}]*)\}", source).group(1).split(",")
    assert len(basis_enum) == len(reference.BASES) and len(base_enum) == len(reference.BASE_ACTIVATION_CODES)


@needs_native
def test_unknown_names_get_one_clear_error():
    layer = _spline(3, "closed-form")
    a, b, _, order = layer.native_basis()
    x = torch.rand(3, 2, dtype=D)
    with pytest.raises(RuntimeError, match="unknown basis 'cubic'"):
        native.kan_linear(x, layer.weight, layer.bias, a, b, "cubic", order, "silu")
    with pytest.raises(RuntimeError, match="unknown base activation 'relu'"):
        native.kan_linear(x, layer.weight, layer.bias, a, b, "bspline_uniform", order, "relu")
    assert not native.supports(x, "silu", "cubic") and not native.supports(x, "relu")


# ----------------------------------------------------------------------------- builds: stale, missing, required


def _python(code: str, env: dict, cwd=ROOT) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=cwd, timeout=120)


def test_required_native_fails_at_once_with_one_line():
    out = _python("import better_kan", {"BETTER_KAN_NATIVE": "0", "BETTER_KAN_REQUIRE_NATIVE": "1"})
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "NativeBuildError: BETTER_KAN_REQUIRE_NATIVE=1 but better_kan takes its PyTorch path (BETTER_KAN_NATIVE=0)" in last


@needs_native
def test_a_build_from_another_source_is_not_used(tmp_path):
    """A _C built before an edit of csrc/kan_ops.cpp: the package says so and takes its PyTorch path."""
    package = Path(native.__file__).parent
    copy = tmp_path / "better_kan"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = copy / "csrc" / "kan_ops.cpp"
    source.write_text(source.read_text() + "\n// edited after the build\n")
    code = "import better_kan.native as n; print(n.__file__); print(n.STATUS.describe())"
    out = _python(code, {"PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    where, status = out.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(tmp_path))
    assert "built from another version of csrc/kan_ops.cpp" in status
    out = _python(code, {"PYTHONPATH": str(tmp_path), "BETTER_KAN_REQUIRE_NATIVE": "1"}, cwd=tmp_path)
    assert out.returncode != 0 and "built from another version" in out.stderr.strip().splitlines()[-1]


@needs_native
def test_the_loaded_build_embeds_its_source_hash():
    from better_kan import _C

    assert _C.SOURCE_SHA256 == native.source_hash() and len(_C.SOURCE_SHA256) == 64


def test_the_declared_torch_floor_is_the_extensions():
    text = (ROOT / "pyproject.toml").read_text()
    floor = re.search(r'"torch>=([0-9.]+)"', text).group(1)
    assert tuple(int(v) for v in floor.split(".")[:2]) == native.MIN_TORCH


def test_build_flags_for_each_platform(tmp_path):
    from better_kan import build_flags

    source = tmp_path / "k.cpp"
    source.write_text("int x;")
    digest = build_flags.source_sha256(source)
    linux, linux_link = build_flags.compile_args(source, "linux")
    mac, mac_link = build_flags.compile_args(source, "darwin")
    win, _ = build_flags.compile_args(source, "win32")
    assert "-fopenmp" in linux and linux_link == ["-fopenmp"] and not any("fp-contract" in f for f in linux)
    assert "-fopenmp" not in mac and mac_link == []
    assert all(not f.startswith("-") for f in win) and "/std:c++20" in win
    assert f"-DBETTER_KAN_SOURCE_SHA256={digest}" in linux and f"/DBETTER_KAN_SOURCE_SHA256={digest}" in win


def test_setup_fails_when_native_is_required_and_cannot_build(tmp_path):
    """BETTER_KAN_REQUIRE_NATIVE=1 (CI): a build that cannot happen fails the install instead of
    leaving the PyTorch path behind silently."""
    out = _python(
        "import runpy, sys; sys.argv = ['setup.py', '--name']; runpy.run_path('setup.py', run_name='__main__')",
        {"BETTER_KAN_BUILD": "0", "BETTER_KAN_REQUIRE_NATIVE": "1"},
    )
    assert out.returncode != 0
    assert "BETTER_KAN_REQUIRE_NATIVE=1 but the native kernels were not built (BETTER_KAN_BUILD=0)" in out.stderr + out.stdout


# ----------------------------------------------------------------------------- torch.func


@pytest.mark.parametrize("use_native", PATHS)
@pytest.mark.parametrize("layer_type", ["spline", "rbf"])
def test_torch_func_transforms_equal_autograd(layer_type, use_native):
    """torch.func.grad, vmap(jacrev) and hessian (PINN codes use them): the layers route to plain ops
    inside a transform (a C++ autograd node cannot run there) and agree with autograd."""
    torch.manual_seed(0)
    model = build_kan([2, 4, 1], layers=layer_type, dtype=D)
    for layer in model.layers:
        layer.use_native = use_native
    x = _away_from_knots(6, 2)
    xr = x.clone().requires_grad_()
    (expected,) = torch.autograd.grad(model(xr).sum(), xr)
    torch.testing.assert_close(torch.func.grad(lambda v: model(v).sum())(x), expected)
    jac = torch.func.vmap(torch.func.jacrev(lambda v: model(v.unsqueeze(0)).squeeze(0)))(x)
    torch.testing.assert_close(jac[:, 0, :], expected)
    hess = torch.func.hessian(lambda v: model(v.unsqueeze(0)).sum())(x[0])
    x0 = x[:1].clone().requires_grad_()
    (d,) = torch.autograd.grad(model(x0).sum(), x0, create_graph=True)
    rows = [torch.autograd.grad(d[0, i], x0, retain_graph=True)[0][0] for i in range(2)]
    torch.testing.assert_close(hess, torch.stack(rows))


@needs_native
def test_compiled_graphs_hold_the_native_operators():
    """torch.compile traces the operator (not the plain ops that torch.func transforms take), and AOT
    autograd's backward graph holds the backward kernel (not the create_graph reference)."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = []

    def keep(gm, inputs):
        graphs.append(str(gm.code))
        return make_boxed_func(gm.forward)

    model = build_kan([2, 5, 1], layers="spline")
    compiled = torch.compile(model, backend=aot_autograd(fw_compiler=keep, bw_compiler=keep), fullgraph=True)
    compiled(torch.rand(8, 2)).sum().backward()
    forward, backward = graphs
    assert "better_kan.kan_linear_forward" in forward and "aten.pow" not in forward
    assert "better_kan.kan_linear_backward" in backward and "kan_linear_reference" not in backward
