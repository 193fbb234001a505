"""The native operator (better_kan.native: C++ on the CPU) against the PyTorch path and float64 references.

Every spline order on both evaluation paths (closed form on uniform knots, Cox--de Boor), every RBF
kernel with fixed and trainable centers, every base activation, with and without bias, masks, locks
and a standalone scale; float32 and float64; inputs drawn at random, exactly on the knots, outside
the grid. Gradients of the input and of every parameter are compared too. gradcheck in float64
for every order, kernel and option is in tests/test_layer_gradients.py (its "native" engine).
The fallback (extension not built, build disabled, a compile that fails) is tested here as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kan_inputs import layer_inputs

from better_kan import RBFKANLayer, SplineKANLayer, build_spline_kan, native
from better_kan import basis as B

ROOT = Path(__file__).resolve().parents[1]
needs_native = pytest.mark.skipif(not native.STATUS.available, reason=native.STATUS.describe())
TOL = {torch.float32: dict(atol=2e-5, rtol=2e-5), torch.float64: dict(atol=1e-12, rtol=1e-11)}


def _inputs(layer, kind: str, n: int = 24, seed: int = 0) -> torch.Tensor:
    return layer_inputs(layer, kind, n, seed)


def _run(layer, x, use_native: bool):
    """(y, gradients of x and every parameter) on one path."""
    layer.use_native = use_native
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    w = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)  # a fixed, uneven upstream gradient
    params = [p for p in layer.parameters() if p.requires_grad]
    grads = torch.autograd.grad((y * w).sum(), [x, *params])
    return y.detach(), grads


def _assert_paths_agree(layer, x, dtype):
    y_native, g_native = _run(layer, x, True)
    y_torch, g_torch = _run(layer, x, False)
    tol = TOL[dtype]
    assert torch.allclose(y_native, y_torch, **tol), (y_native - y_torch).abs().max()
    for i, (a, b) in enumerate(zip(g_native, g_torch)):
        assert torch.allclose(a, b, **tol), f"gradient {i}: {(a - b).abs().max()}"


def _random_weights(layer, seed=1):
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64))
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=torch.float64))
    return layer


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("inputs", ["random", "knots", "outside"])
@pytest.mark.parametrize("path", ["closed-form", "cox-de-boor", "after-update-grid"])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5])
def test_spline_native_equals_pytorch_path(k, path, inputs, dtype):
    layer = _random_weights(SplineKANLayer(3, 4, grid_size=5, spline_order=k, dtype=dtype))
    if path == "cox-de-boor":
        layer.uniform, layer._cox_tables = False, None
    if path == "after-update-grid":
        layer.update_grid(torch.randn(300, 3, generator=torch.Generator().manual_seed(7), dtype=dtype) * 0.5)
        assert not layer.uniform
    x = _inputs(layer, inputs)
    if path != "closed-form" or inputs != "knots" or k == 0:
        _assert_paths_agree(layer, x, dtype)
    else:
        # on the knots the closed form's |z| = (k+1)/2 - j is exact only to rounding: compare values
        # (continuous there for k >= 1), and gradients off the knots
        y_native, _ = _run(layer, x, True)
        y_torch, _ = _run(layer, x, False)
        assert torch.allclose(y_native, y_torch, **TOL[dtype])


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("kernel", list(B.KERNELS))
def test_rbf_native_equals_pytorch_path(kernel, trainable, dtype):
    layer = _random_weights(RBFKANLayer(3, 4, num_centers=6, kernel=kernel, trainable_centers=trainable, dtype=dtype))
    for inputs in ("random", "knots", "outside"):
        _assert_paths_agree(layer, _inputs(layer, inputs, seed=3), dtype)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("base", native.BASES)
@pytest.mark.parametrize("cls", [SplineKANLayer, RBFKANLayer])
def test_every_base_activation_and_bias_off(cls, base, dtype):
    for bias in (True, False):
        layer = _random_weights(cls(3, 2, base_activation=base, bias=bias, dtype=dtype))
        x = _inputs(layer, "random", seed=5) * 3  # the base activations' tails too
        _assert_paths_agree(layer, x, dtype)


# (in, out, batch): the operator's own loops for small products -- one output (dot products),
# 16+ outputs (dL/dW by rows over the outputs), odd batches and counts -- and BLAS above 2^18
# multiply-adds (40 x 40 x 9 x 80)
PRODUCT_SHAPES = [(1, 1, 1), (3, 1, 5), (5, 17, 3), (1, 16, 33), (7, 3, 31), (6, 20, 1), (40, 40, 80)]


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", PRODUCT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("cls", [SplineKANLayer, RBFKANLayer])
def test_small_and_blas_products_equal_the_pytorch_path(cls, shape, dtype):
    n_in, n_out, batch = shape
    for bias in (True, False):
        layer = _random_weights(cls(n_in, n_out, bias=bias, dtype=dtype))
        _assert_paths_agree(layer, _inputs(layer, "random", n=batch, seed=6), dtype)


@needs_native
def test_threaded_kernels_equal_the_pytorch_path():
    """Every loop split over threads (BETTER_KAN_GRAIN=1: one element per task) gives the same layer."""
    code = (
        "import torch, sys\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import test_native as t\n"
        "torch.set_num_threads(2)\n"
        "for cls in (t.SplineKANLayer, t.RBFKANLayer):\n"
        "    for n_in, n_out, batch in t.PRODUCT_SHAPES:\n"
        "        layer = t._random_weights(cls(n_in, n_out, dtype=torch.float64))\n"
        "        t._assert_paths_agree(layer, t._inputs(layer, 'random', n=batch, seed=6), torch.float64)\n"
        "print('ok')\n"
    )
    env = {**os.environ, "BETTER_KAN_GRAIN": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "tests"), str(ROOT / "implementations")], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@needs_native
@pytest.mark.parametrize("cls", [SplineKANLayer, RBFKANLayer])
def test_masks_locks_and_standalone_scale_on_the_native_path(cls):
    layer = _random_weights(cls(3, 2, standalone_scale=True, dtype=torch.float64))
    with torch.no_grad():
        layer.spline_scale.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(2))
    layer.set_edge_mask(torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.5]]))
    layer.lock([(0, 0), (1, 2)])
    x = _inputs(layer, "random", seed=4)
    layer.use_native = True
    assert layer(x.requires_grad_()).grad_fn.name().endswith("KanLinearFunction>")  # masks and locks stay native
    _assert_paths_agree(layer, x, torch.float64)


@needs_native
def test_a_layer_is_one_autograd_node_and_its_backward_one_operator():
    model = build_spline_kan([2, 5, 1])
    model.fused = False  # layer by layer (the whole network as one node: tests/test_native_network.py)
    x = torch.rand(16, 2, requires_grad=True)
    y = model(x)
    assert y.grad_fn.name().endswith("KanLinearFunction>")
    assert y.grad_fn.next_functions[0][0].name().endswith("KanLinearFunction>")  # x of layer 2 = output of layer 1
    with torch.profiler.profile() as prof:
        y.sum().backward()
    names = {e.name for e in prof.events()}
    assert "better_kan::kan_linear_backward" in names


@needs_native
def test_tracking_and_unsupported_dtypes_take_the_pytorch_path():
    layer = SplineKANLayer(2, 3)
    x = torch.rand(5, 2, requires_grad=True)
    with layer.tracking():
        assert layer(x).grad_fn.name().endswith("KanLinearFunction>") is False
    assert layer.stats is not None
    half = SplineKANLayer(2, 3, dtype=torch.bfloat16)
    assert half(x.detach().to(torch.bfloat16).requires_grad_()).grad_fn.name().endswith("KanLinearFunction>") is False


@needs_native
def test_bad_arguments_are_one_clear_error():
    x, w, a = torch.rand(4, 2), torch.rand(3, 2, 9), torch.rand(2, 8)
    with pytest.raises(RuntimeError, match="unknown basis 'cubic'"):
        native.kan_linear(x, w, None, a, a, "cubic", 3, "silu")
    with pytest.raises(RuntimeError, match="unknown base activation 'relu'"):
        native.kan_linear(x, w, None, a, a, "gaussian", 0, "relu")
    with pytest.raises(RuntimeError, match=r"weight must be \(out, in, n \+ 1\)"):
        native.kan_linear(x, torch.rand(3, 5, 9), None, a, a, "gaussian", 0, "silu")
    with pytest.raises(RuntimeError, match="knots must be"):
        native.kan_linear(x, w, None, torch.rand(2, 5), torch.empty(0), "bspline", 3, "silu")
    with pytest.raises(RuntimeError, match="share one dtype"):
        native.kan_linear(x.double(), w, None, a, a, "gaussian", 0, "silu")


@needs_native
def test_compile_and_trace_see_one_operator_per_layer():
    model = build_spline_kan([2, 4, 1])
    x = torch.rand(8, 2)
    traced = torch.jit.trace(model, x)
    assert str(traced.inlined_graph).count("better_kan::kan_network") == 1
    assert torch.allclose(traced(x), model(x))
    model.fused = False
    traced = torch.jit.trace(model, x)
    assert str(traced.inlined_graph).count("better_kan::kan_linear") == 2
    assert torch.allclose(traced(x), model(x))
    fake = torch.library.opcheck(
        torch.ops.better_kan.kan_linear_forward.default,
        (
            x,
            model.layers[0].weight,
            model.layers[0].bias,
            model.layers[0].affine_a,
            model.layers[0].affine_b,
            "bspline_uniform",
            3,
            "silu",
        ),
        test_utils=("test_schema", "test_faketensor"),
    )
    assert all(v == "SUCCESS" for v in fake.values())


@needs_native
def test_meta_device_layers_give_shapes():
    layer = SplineKANLayer(3, 4, device="meta")
    y = layer(torch.empty(7, 3, device="meta", requires_grad=True))
    assert y.shape == (7, 4) and y.device.type == "meta"
    y.sum().backward()


# ----------------------------------------------------------------------------- the fallback


def _python(code: str, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=ROOT, timeout=120)


@pytest.mark.slow
def test_disabled_native_kernels_fall_back_to_the_pytorch_path():
    code = (
        "import torch; from better_kan import native, build_spline_kan\n"
        "print(native.STATUS.available, native.STATUS.describe())\n"
        "m = build_spline_kan([2, 3, 1]); y = m(torch.rand(4, 2, requires_grad=True)); y.sum().backward()\n"
        "print(y.grad_fn.name())\n"
    )
    out = _python(code, BETTER_KAN_NATIVE="0")
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first == "False PyTorch path (BETTER_KAN_NATIVE=0)"
    assert not second.endswith("KanLinearFunction>")


def _copy_for_build(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "implementations" / "better_kan").mkdir(parents=True)
    shutil.copy(ROOT / "setup.py", src / "setup.py")
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    shutil.copy(ROOT / "README.md", src / "README.md")
    shutil.copytree(ROOT / "implementations" / "better_kan" / "csrc", src / "implementations" / "better_kan" / "csrc")
    shutil.copy(
        ROOT / "implementations" / "better_kan" / "build_flags.py", src / "implementations" / "better_kan" / "build_flags.py"
    )
    return src


@pytest.mark.slow
@pytest.mark.parametrize(
    "env, reason",
    [({"BETTER_KAN_BUILD": "0"}, "BETTER_KAN_BUILD=0"), ({"CXX": "false", "CC": "false"}, "the compile failed")],
)
def test_a_build_without_the_extension_says_so_in_one_line_and_succeeds(tmp_path, env, reason):
    pytest.importorskip("setuptools")
    src = _copy_for_build(tmp_path)
    out = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        capture_output=True,
        text=True,
        cwd=src,
        env={**os.environ, **env},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("better_kan:")]
    assert len(lines) == 1 and reason in lines[0] and lines[0].endswith("the layers use their PyTorch path")
    assert not list(src.rglob("_C*.so"))


# ----------------------------------------------------------------------------- kanbench ab's extracted trees


def test_an_extracted_tree_gets_the_native_build_of_its_own_source(tmp_path):
    """kanbench ab's base side (a git archive: source, no build) gets the working tree's build when its
    C++ source is the same, and says so; a tree from before the native kernels is left alone."""
    from kanbench import native_build

    working = ROOT / "implementations"
    if native_build._built(working / "better_kan") is None:
        pytest.skip("better_kan._C is not built in this tree")
    tree = tmp_path / "implementations"
    shutil.copytree(working, tree, ignore=shutil.ignore_patterns("_C*", "__pycache__"))
    assert native_build.provide(tree, working) == "native kernels: the working tree's build (built from the same C++ source)"
    assert native_build._built(tree / "better_kan") is not None
    # a build older than an edit of the source (the same bytes no longer) is never copied
    stale = tmp_path / "stale" / "implementations"
    shutil.copytree(working, stale, ignore=shutil.ignore_patterns("_C*", "__pycache__"))
    source = stale / native_build.SOURCE
    source.write_text(source.read_text() + "\n// edited\n")
    built = native_build._built(working / "better_kan")
    assert native_build.build_flags.source_sha256(source).encode() not in built.read_bytes()
    old = tmp_path / "old" / "implementations"
    (old / "better_kan").mkdir(parents=True)
    assert native_build.provide(old, working) == "no native kernels in that tree (it predates them)"
