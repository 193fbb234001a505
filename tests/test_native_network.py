"""A whole KAN as one native operator (``better_kan::kan_network``) against its layers one by one.

The network operator runs every layer's forward in one call and every layer's backward in one
call. It must be the same function as the per-layer path in everything a user can do with the
result: outputs, the gradients of the input and of every parameter, second derivatives (a loss on
dy/dx), at depths 1-4, every spline order on both evaluation paths, every RBF kernel, trainable
centers, mixed layer kinds, with and without bias -- in float64, to rounding. Where a layer cannot
run natively the network runs its layers one by one.
"""

from __future__ import annotations

import pytest
import torch

from better_kan import RBFKANLayer, SplineKANLayer, build_kan, native, reference
from better_kan.network import KAN

D = torch.float64
needs_native = pytest.mark.skipif(not native.STATUS.available, reason=native.STATUS.describe())
pytestmark = needs_native
KERNELS = list(reference.BASES)[2:]  # the RBF kernels (after the two B-spline evaluations)


def _randomize(model: KAN, seed: int = 0) -> KAN:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def _network(kinds, depth: int, seed: int = 0, **kwargs) -> KAN:
    torch.manual_seed(seed)
    widths = [3] + [4] * (depth - 1) + [2]
    kinds = [kinds] * depth if isinstance(kinds, str) else list(kinds)
    layers = []
    for i, kind in enumerate(kinds):
        if kind == "spline-cox":
            layer = SplineKANLayer(widths[i], widths[i + 1], dtype=D, **kwargs.get("spline", {}))
            with torch.no_grad():  # an uneven grid: the Cox-de Boor evaluation
                grid = layer.grid.clone()
                grid[:, 1:-1] += 0.05 * torch.sin(torch.arange(1, grid.shape[1] - 1, dtype=D))
                layer._set_grid(grid, uniform=False)
        elif kind == "spline":
            layer = SplineKANLayer(widths[i], widths[i + 1], dtype=D, **kwargs.get("spline", {}))
        else:
            layer = RBFKANLayer(widths[i], widths[i + 1], dtype=D, **kwargs.get("rbf", {}))
        layers.append(layer)
    return _randomize(KAN(layers), seed)


def _outputs(model: KAN, x: torch.Tensor, fused: bool):
    """(y, dy/dx summed, gradients of x and every parameter of a loss on y and on dy/dx)."""
    model.fused = fused
    x = x.clone().requires_grad_()
    y = model(x)
    w = torch.linspace(-1, 1, y.numel(), dtype=D).view_as(y)
    (dy,) = torch.autograd.grad((y * w).sum(), x, create_graph=True)
    loss = (y * w).sum() + dy.square().sum()
    params = [p for p in model.parameters() if p.requires_grad]
    return (y.detach(), dy.detach(), *torch.autograd.grad(loss, [x, *params]))


def _assert_same(model: KAN, x: torch.Tensor) -> None:
    fused, layered = _outputs(model, x, True), _outputs(model, x, False)
    for i, (a, b) in enumerate(zip(fused, layered)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10, msg=f"entry {i}")


def _x(n: int = 37, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, generator=gen, dtype=D) * 2.4 - 1.2  # inside and a little outside the grid


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("order", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["spline", "spline-cox"])
def test_spline_networks_equal_their_layers(kind, order, depth):
    model = _network(kind, depth, spline={"spline_order": order, "grid_size": 4})
    assert model.network_arguments(_x()) is not None
    _assert_same(model, _x())


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("kernel", KERNELS)
def test_rbf_networks_equal_their_layers(kernel, depth):
    model = _network("rbf", depth, rbf={"kernel": kernel, "num_centers": 5})
    _assert_same(model, _x() + 0.013)  # off the centers (a Matern kernel's kink)


@pytest.mark.parametrize("bias", [True, False])
def test_mixed_layers_trainable_centers_and_bias(bias):
    model = _network(
        ["spline", "rbf", "spline-cox", "rbf"],
        4,
        spline={"bias": bias},
        rbf={"trainable_centers": True, "bias": bias, "num_centers": 4},
    )
    assert any("centers" in n for n, p in model.named_parameters() if p.requires_grad)
    _assert_same(model, _x() + 0.013)


def test_second_derivatives_gradgradcheck():
    model = _network(["spline", "rbf"], 2, rbf={"trainable_centers": True, "num_centers": 3})
    params = dict(model.named_parameters())
    x = (_x(6) + 0.013).requires_grad_()

    def fn(x, *values):
        return torch.func.functional_call(model, dict(zip(params, values)), (x,))

    assert model.network_arguments(x) is not None
    assert torch.autograd.gradgradcheck(fn, (x, *[p.detach().clone().requires_grad_() for p in params.values()]), atol=1e-6)


def test_the_network_is_one_node_and_its_backward_one_call():
    model = _network("spline", 3)
    x = _x().requires_grad_()
    y = model(x)
    assert y.grad_fn.name().endswith("KanNetworkFunction>")
    assert y.grad_fn.next_functions[0][0].name() == "torch::autograd::AccumulateGrad"  # straight back to x
    with torch.profiler.profile() as prof:
        y.sum().backward()
    counts = {}
    for e in prof.events():
        counts[e.name] = counts.get(e.name, 0) + 1
    assert counts.get("better_kan::kan_linear_backward") == 3  # the node runs every layer's backward
    traced = torch.jit.trace(model, x.detach())
    assert str(traced.inlined_graph).count("better_kan::kan_network") == 1
    assert "better_kan::kan_linear(" not in str(traced.inlined_graph)


def test_every_layers_features_are_held_in_one_workspace():
    """On the CPU the node keeps each layer's features (in, n + 1, batch) as a slice of one allocation."""
    model = build_kan([3, 5, 4, 2])
    x = torch.rand(7, 3, requires_grad=True)
    features = []

    def pack(t):
        if t.dim() == 3 and t.shape[-1] == 7:  # (in, n + 1, batch): the weights end in n + 1 = 9
            features.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = model(x)
    assert y.grad_fn.name().endswith("KanNetworkFunction>")
    assert [tuple(f.shape[:2]) for f in features] == [(3, 9), (5, 9), (4, 9)]
    assert len({f.untyped_storage().data_ptr() for f in features}) == 1
    y.sum().backward()  # and the backward reads them there
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("widths", [[3, 9, 2, 5, 1], [6, 1, 7], [2, 40, 40, 1]])
def test_without_autograd_the_layers_share_one_buffer_and_agree(widths):
    """No graph (inference mode, no_grad): one buffer of the largest layer's size serves every layer
    in turn; the output equals the recorded path's, whatever the layers' sizes."""
    model = build_kan(widths, layers=(["spline", "rbf"] * 2)[: len(widths) - 1])
    x = torch.rand(9, widths[0]) * 2 - 1
    expected = model(x.requires_grad_()).detach()
    for context in (torch.inference_mode, torch.no_grad):
        with context():
            assert torch.equal(model(x.detach()), expected)


def test_layers_that_cannot_run_natively_run_one_by_one():
    model = _network("spline", 2)
    x = _x()
    assert model(x).grad_fn.name().endswith("KanNetworkFunction>")
    with model.tracking():  # per-edge statistics: the PyTorch path, every layer
        y = model(x)
    assert not y.grad_fn.name().endswith("KanNetworkFunction>") and model.layers[1].stats is not None
    model.layers[1].use_native = False
    assert model.network_arguments(x) is None
    torch.testing.assert_close(model(x), (_outputs(model, x, False)[0]))
    model.layers[1].use_native = True
    assert model.network_arguments(x.float()) is None  # a dtype the layers are not in
    half = build_kan([3, 4, 2], dtype=torch.bfloat16)
    assert half.network_arguments(x.to(torch.bfloat16)) is None  # no kernel for bfloat16
    assert model.network_arguments(x[:, :2]) is None  # the first layer raises its own error
    with pytest.raises(ValueError, match=r"expects input \(batch, 3\)"):
        model(x[:, :2])


def test_torch_func_and_inference_mode_and_meta():
    model = _network("rbf", 2)
    x = _x(5)
    jac = torch.func.jacrev(lambda v: model(v).sum(0))(x)
    model.fused = False
    assert torch.allclose(jac, torch.func.jacrev(lambda v: model(v).sum(0))(x))
    expected = model(x)
    model.fused = True
    with torch.inference_mode():
        assert torch.allclose(model(x), expected, atol=1e-12)
    meta = build_kan([3, 4, 2], device="meta")
    y = meta(torch.empty(7, 3, device="meta", requires_grad=True))
    assert y.shape == (7, 2) and y.device.type == "meta"


def test_opcheck_of_the_network_operator():
    model = _network(["spline", "rbf"], 2)
    x = _x(8).requires_grad_()
    args = model.network_arguments(x)
    result = torch.library.opcheck(
        torch.ops.better_kan.kan_network.default,
        (x, *args),
        test_utils=("test_schema", "test_faketensor", "test_autograd_registration"),
    )
    assert all(v == "SUCCESS" for v in result.values())


def test_bad_arguments_are_one_clear_error():
    model = _network("spline", 2)
    x = _x(4)
    weights, biases, a, b, bases, orders, base = model.network_arguments(x)
    with pytest.raises(RuntimeError, match="one basis per layer"):
        native.NETWORK_OP(x, weights, biases, a, b, "bspline_uniform", orders, base)
    with pytest.raises(RuntimeError, match="do not chain at layer 1"):
        native.NETWORK_OP(x, [weights[1], weights[0]], biases, a, b, bases, orders, base)
    with pytest.raises(RuntimeError, match="one bias, a, b and order per layer"):
        native.NETWORK_OP(x, weights, biases[:1], a, b, bases, orders, base)


def test_a_compiled_training_step_equals_eager():
    model = _network("spline", 2)
    x = _x(16)
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    torch.testing.assert_close(compiled(x), model(x), atol=1e-12, rtol=1e-10)


def _same_as_layers(model: KAN, x: torch.Tensor) -> None:
    model.fused = True
    fused = model(x)
    model.fused = False
    torch.testing.assert_close(fused, model(x), atol=1e-12, rtol=1e-10)
    model.fused = True


def test_the_arguments_are_kept_between_calls_and_rebuilt_when_the_network_changes():
    """The network's operator arguments are built once and reused; any change to a layer (grids,
    locks, masks, flags, dtype, a replaced layer) rebuilds them, and in-place updates are seen."""
    model = _network("spline", 2)
    x = _x()
    model(x)
    kept = model.__dict__["_native_arguments"]
    model(x)
    assert model.__dict__["_native_arguments"] is kept  # nothing moved: the same arguments
    with torch.no_grad():
        model.layers[0].weight.add_(0.1)  # an optimizer step: in place, seen through the kept tensors
    _same_as_layers(model, x)
    assert model.__dict__["_native_arguments"] is kept
    model.update_grid(x)
    _same_as_layers(model, x)
    model.extend_grid(7, x=x)
    _same_as_layers(model, x)
    model.lock(0, [(0, 0), (1, 0)])  # a lock computes its weight on every call: not kept
    _same_as_layers(model, x)
    assert "_native_arguments" not in model.__dict__
    model.layers[0].unlock()
    mask = torch.ones(4, 3, dtype=D)
    mask[0, 1] = 0
    model.layers[0].set_edge_mask(mask)
    _same_as_layers(model, x)
    model.layers[0].set_edge_mask(torch.ones(4, 3, dtype=D))
    _same_as_layers(model, x)
    model.layers[1] = _network("rbf", 2).layers[1]  # a layer from elsewhere
    _same_as_layers(model, x)
    model.float()  # the weights' dtype moved; the input follows
    _same_as_layers(model, x.float())
    model.layers[1].use_native = False  # one layer off the native path: layers one by one
    assert model.network_arguments(x.float()) is None
    _same_as_layers(model, x.float())


def test_trainable_centers_are_recomputed_every_call():
    model = _network("rbf", 2, rbf={"trainable_centers": True})
    x = _x()
    model(x)
    assert "_native_arguments" not in model.__dict__  # a = 1/widths, b = -centers/widths: computed
    with torch.no_grad():
        model.layers[0].centers.add_(0.05)
    _same_as_layers(model, x)


@pytest.mark.parametrize("kind", ["spline", "spline-cox", "rbf"])
def test_nan_inf_views_and_strided_inputs_behave_as_layer_by_layer(kind):
    """What a user does with the result: NaN and inf propagate to the same places, a strided input
    (a transposed view, a column slice) gives the same output, and the output is an ordinary
    contiguous (batch, out) tensor that views and in-place ops accept -- as layer by layer."""
    model = _network(kind, 3)
    x = _x(9)
    x[2, 0], x[5, 1] = float("nan"), float("inf")
    outs = []
    for fused in (True, False):
        model.fused = fused
        outs.append(model(x))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-12, rtol=1e-10, equal_nan=True)
    assert torch.equal(outs[0].isnan(), outs[1].isnan())
    model.fused = True
    strided = torch.cat([_x(9), _x(9, seed=2)], 1)[:, ::2]  # (9, 3), stride 2 along the columns
    transposed = _x(9).t().contiguous().t()  # (9, 3), feature-major storage
    for view in (strided, transposed):
        assert not view.is_contiguous()
        torch.testing.assert_close(model(view), model(view.contiguous()), atol=1e-12, rtol=1e-10)
    y = model(_x(9))
    assert y.is_contiguous() and y.shape == (9, 2)
    y.view(-1).add_(1.0)  # a view and an in-place op, as on any tensor
    assert y.reshape(2, 9).shape == (2, 9)
