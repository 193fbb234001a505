"""Gradients of our KAN layers against finite differences, in float64.

``torch.autograd.gradcheck`` compares the analytic Jacobian (our hand-written
backward functions included) with central finite differences, on the input *and*
on every trainable parameter. Every spline order 0..5 is checked on both
evaluation paths (the closed form on uniform knots and Cox--de Boor), every RBF
kernel, and the layer options that change the forward (bias off, masks, locks,
base activations, a standalone scale, trainable centres, after ``update_grid``).

Inputs are drawn away from the knots (a B-spline of order k is only C^(k-1)
there; the finite difference of a k = 0 step would see the jump).
"""

import pytest
import torch

from better_kan import RBFKANLayer, SplineKANLayer, native
from better_kan import basis as B

D = torch.float64


def _away_from_knots(layer: SplineKANLayer, n: int, seed: int = 0) -> torch.Tensor:
    """(n, in) points in (-1, 1), each at least 1e-3 from every knot of its input."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(4 * n, layer.in_features, generator=gen, dtype=D) * 1.9 - 0.95
    dist = (x.unsqueeze(-1) - layer.grid.unsqueeze(0)).abs().amin(-1).amin(-1)
    return x[dist > 1e-3][:n].clone()


def _check(layer, x):
    with torch.no_grad():
        layer.weight.normal_(generator=torch.Generator().manual_seed(1))
    x = x.detach().requires_grad_()
    params = [p for p in layer.parameters() if p.requires_grad]
    assert params, "a layer without trainable parameters checks nothing"
    assert torch.autograd.gradcheck(lambda x, *ps: layer(x), (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


def _force_cox_de_boor(layer: SplineKANLayer) -> SplineKANLayer:
    layer.uniform = False
    layer._cox_tables = None
    return layer


#: the native operator (better_kan.native), the op-by-op PyTorch path
ENGINES = [
    pytest.param("native", marks=pytest.mark.skipif(not native.STATUS.available, reason=native.STATUS.describe())),
    "general",
]


def _engine(layer, engine: str):
    layer.use_native = engine == "native"
    return layer


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", ["closed-form", "cox-de-boor"])
@pytest.mark.parametrize("k", [0, 1, 2, 3, 4, 5])
def test_spline_layer_gradients_every_order_both_paths(k, path, engine):
    layer = _engine(SplineKANLayer(3, 2, grid_size=4, spline_order=k, dtype=D), engine)
    if path == "cox-de-boor":
        _force_cox_de_boor(layer)
    _check(layer, _away_from_knots(layer, 6))


@pytest.mark.skipif(not native.STATUS.available, reason=native.STATUS.describe())
@pytest.mark.parametrize("setup", ["tracking", "float16-input"])
def test_what_the_native_operator_does_not_handle_takes_the_general_path(setup):
    layer = SplineKANLayer(3, 2, dtype=D)
    x = torch.rand(4, 3, dtype=D, requires_grad=True)
    if setup == "tracking":
        with layer.tracking():
            y = layer(x)
        assert layer.stats is not None
    else:
        layer = layer.to(torch.float16)
        y = layer(x.detach().to(torch.float16))
    assert "KanLinear" not in y.grad_fn.name()
    assert "KanLinear" in SplineKANLayer(3, 2, dtype=D)(x).grad_fn.name()


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_input_gradient_matches_central_differences_of_the_basis(k):
    """The hand-written backward of the closed-form basis, one basis function at a time,
    against central differences of the same basis (the check that catches k = 1's slope).
    k = 0 is piecewise constant and never reaches the hand-written backward."""
    grid = B.uniform_grid(1, 6, k, -1.0, 1.0, dtype=D)
    a, b = B.uniform_affine(grid, k)
    x = torch.linspace(-0.97, 0.97, 41, dtype=D).unsqueeze(1)
    knots = grid[0]
    x = x[(x - knots).abs().amin(1) > 1e-3]
    xg = x.clone().requires_grad_()
    for i in range(a.shape[1]):
        (grad,) = torch.autograd.grad(B._UniformBSpline.apply(xg, a, b, k)[:, 0, i].sum(), xg)
        h = 1e-6
        fd = (B.bspline_uniform(x + h, a, b, k) - B.bspline_uniform(x - h, a, b, k))[:, 0, i] / (2 * h)
        assert torch.allclose(grad[:, 0], fd, atol=1e-6), f"basis function {i}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kernel", list(B.KERNELS))
@pytest.mark.parametrize("trainable", [False, True])
def test_rbf_layer_gradients_every_kernel(kernel, trainable, engine):
    layer = _engine(RBFKANLayer(3, 2, num_centers=5, kernel=kernel, trainable_centers=trainable, dtype=D), engine)
    x = torch.rand(6, 3, generator=torch.Generator().manual_seed(2), dtype=D) * 1.8 - 0.9
    _check(layer, x)


OPTIONS = {
    "bias-off": dict(bias=False),
    "standalone-scale": dict(standalone_scale=True),
    "identity-base": dict(base_activation="identity"),
    "gelu-base": dict(base_activation="gelu"),
    "tanh-base": dict(base_activation="tanh"),
    "zero-base": dict(base_activation="zero"),
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("cls", [SplineKANLayer, RBFKANLayer])
def test_layer_option_gradients(cls, option, engine):
    layer = _engine(cls(3, 2, dtype=D, **OPTIONS[option]), engine)
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(3), dtype=D) * 1.8 - 0.9
    if cls is SplineKANLayer:
        x = _away_from_knots(layer, 5, seed=3)
    _check(layer, x)


@pytest.mark.parametrize("cls", [SplineKANLayer, RBFKANLayer])
def test_gradients_with_masks_and_locks(cls):
    layer = cls(3, 2, dtype=D, standalone_scale=True)
    layer.set_edge_mask(torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.5]]))
    layer.lock([(0, 0), (1, 2)])
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(4), dtype=D) * 1.8 - 0.9
    if cls is SplineKANLayer:
        x = _away_from_knots(layer, 5, seed=4)
    _check(layer, x)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_spline_gradients_after_update_grid(k):
    layer = SplineKANLayer(2, 2, spline_order=k, dtype=D)
    layer.update_grid(torch.randn(200, 2, generator=torch.Generator().manual_seed(5), dtype=D) * 0.4)
    assert not layer.uniform
    _check(layer, _away_from_knots(layer, 5, seed=5) * 0.4)


def test_rbf_gradients_after_update_grid():
    layer = RBFKANLayer(2, 2, kernel="matern32", dtype=D)
    layer.update_grid(torch.randn(200, 2, generator=torch.Generator().manual_seed(6), dtype=D) * 0.4)
    x = torch.rand(5, 2, generator=torch.Generator().manual_seed(6), dtype=D) * 0.8 - 0.4
    _check(layer, x)
