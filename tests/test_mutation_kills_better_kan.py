"""Tests written against surviving mutants (make mutate) of better_kan: exact values (hand-computed or
float64 references), knots and boundaries, and the paths no other test runs (non-uniform grids
refined without data, extend_grid after update_grid, tied inputs, pruning with edges, the native
path exactly on knots)."""

import pytest
import torch

from better_kan import KAN, RBFKANLayer, SplineKANLayer, build_kan, build_rbf_kan, build_spline_kan, grids, native
from better_kan import basis as B
from better_kan import network as net

D = torch.float64


def _x(n, d, lo=-1.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=D)


# ----------------------------------------------------------------------------- grids


def test_fit_points_and_covering_range_exactly():
    layer = SplineKANLayer(2, 1, grid_size=4, spline_order=2, grid_range=(-1.0, 3.0), dtype=D)
    assert [t.tolist() for t in layer.grid_range()] == [[-1.0, -1.0], [3.0, 3.0]]
    pts = grids.fit_points(layer, 5)
    assert pts[:, 0].tolist() == [-1.0, 0.0, 1.0, 2.0, 3.0] and pts.shape == (5, 2)
    x = torch.tensor([[-2.0, 0.5], [0.0, 4.0]], dtype=torch.float32)
    pts = grids.fit_points(layer, 2, x)
    assert pts.dtype == D and pts.tolist() == [[-1.0, -1.0], [3.0, 3.0], [-2.0, 0.5], [0.0, 4.0]]
    lo, hi = grids.covering_range(layer, x)
    assert lo.tolist() == [-2.0, -1.0] and hi.tolist() == [3.0, 4.0]
    lo, hi = grids.covering_range(layer, None)
    assert lo.tolist() == [-1.0, -1.0] and hi.tolist() == [3.0, 3.0]


def test_refine_knots_exactly():
    inner = torch.tensor([[0.0, 1.0, 3.0], [-1.0, 0.0, 1.0]], dtype=D)
    assert grids.refine_knots(inner, 4).tolist() == [[0.0, 0.5, 1.0, 2.0, 3.0], [-1.0, -0.5, 0.0, 0.5, 1.0]]
    assert grids.refine_knots(inner, 2).tolist() == inner.tolist()
    assert grids.refine_knots(inner, 1).tolist() == [[0.0, 3.0], [-1.0, 1.0]]
    assert grids.refine_knots(inner, 3)[0].tolist() == pytest.approx([0.0, 2 / 3, 5 / 3, 3.0], rel=1e-15)


def test_blend_and_data_grid_exactly():
    xs = torch.tensor([[0.0], [1.0], [2.0], [10.0]], dtype=D)
    # quantiles at positions 0, 1.5, 3 of the sorted samples: 0, 1.5, 10
    assert grids._blend(xs, 3, 0.0, 0.0).tolist() == [[0.0, 1.5, 10.0]]
    assert grids._blend(xs, 3, 1.0, 0.0).tolist() == [[0.0, 5.0, 10.0]]
    assert grids._blend(xs, 3, 1.0, 1.0).tolist() == [[-1.0, 5.0, 11.0]]
    assert grids._blend(xs, 3, 0.5, 0.0).tolist() == [[0.0, 3.25, 10.0]]
    same = torch.tensor([[2.0], [2.0]], dtype=D)
    assert grids._blend(same, 2, 1.0, 0.0).tolist() == [[2.0, 2.0 + 1e-6]]
    x = torch.tensor([[3.0, 0.0, 5.0], [1.0, 4.0, 6.0], [2.0, 8.0, 7.0]])
    g = grids.data_grid(x, 3, 0.0)
    assert g.dtype == D and g.tolist() == [[1.0, 2.0, 3.0], [0.0, 4.0, 8.0], [5.0, 6.0, 7.0]]
    # inputs 0 and 2 in one group share the grid of their pooled samples 1 2 3 5 6 7
    tied = grids.data_grid(x, 3, 0.0, groups=[1, 0, 1])
    assert tied[0].tolist() == tied[2].tolist() == [1.0, 4.0, 7.0] and tied[1].tolist() == [0.0, 4.0, 8.0]
    assert grids.data_grid(x, 3, 0.0, groups=[0, -1, 0]).tolist() == g.tolist()


def test_widths_from_exactly():
    c = torch.tensor([[0.0, 1.0, 3.0, 6.0]], dtype=D)
    assert grids.widths_from(c, 1.0).tolist() == [[1.0, 1.5, 2.5, 3.0]]
    assert grids.widths_from(c, 2.0).tolist() == [[2.0, 3.0, 5.0, 6.0]]
    assert grids.widths_from(torch.zeros(1, 3, dtype=D), 1.0).tolist() == [[1e-6] * 3]


# ----------------------------------------------------------------------------- basis helpers


def test_uniform_grid_extend_knots_and_affine_exactly():
    g = B.uniform_grid(2, 2, 1, torch.tensor([0.0, -1.0]), torch.tensor([2.0, 1.0]), dtype=D)
    assert g.tolist() == [[-1.0, 0.0, 1.0, 2.0, 3.0], [-2.0, -1.0, 0.0, 1.0, 2.0]]
    assert B.uniform_grid(1, 4, 0, 0.0, 1.0, dtype=D).tolist() == [[0.0, 0.25, 0.5, 0.75, 1.0]]
    a, b = B.uniform_affine(g, 1)
    assert a.tolist() == [[1.0] * 3, [1.0] * 3] and b.tolist() == [[0.0, -1.0, -2.0], [1.0, 0.0, -1.0]]
    inner = torch.tensor([[0.0, 1.0, 3.0]], dtype=D)
    assert B.extend_knots(inner, 2).tolist() == [[-2.0, -1.0, 0.0, 1.0, 3.0, 5.0, 7.0]]
    assert B.cardinal_terms(3) == [(2.0, 1 / 6), (1.0, -4 / 6)]
    assert B.cardinal_terms(2) == [(1.5, 0.5), (0.5, -1.5)]
    assert B.cardinal_terms(1) == [(1.0, 1.0)]


# ----------------------------------------------------------------------------- the closed form and the native path on knots


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_closed_form_spline_basis_on_knots_and_half_knots(k):
    z = torch.arange(-6, 7, dtype=D) / 2  # every knot (integer + (k+1)/2 offsets) and every midpoint
    one, zero = torch.ones(1, 1, dtype=D), torch.zeros(1, 1, dtype=D)
    value = B.bspline_uniform(z.unsqueeze(1), one, zero, k)[:, 0, 0]
    if k == 0:
        assert value.tolist() == [float(-0.5 <= v < 0.5) for v in z.tolist()]
        return
    exact = torch.tensor([_cardinal(k, float(v)) for v in z], dtype=D)
    ref = B.bspline_uniform_plain(z.unsqueeze(1), one, zero, k)[:, 0, 0]
    assert torch.allclose(value, exact, atol=1e-14) and torch.allclose(ref, exact, atol=1e-14)
    # the derivative: one-sided limits agree on knots for k >= 2; for k = 1 the hand-written slope is
    # the (sub)gradient autograd gives the closed form (0 at the peak and outside the support)
    zz = z.clone().requires_grad_(True)
    hand = torch.autograd.grad(B._UniformBSpline.apply(zz.unsqueeze(1), one, zero, k).sum(), zz)[0]
    if k >= 2:  # continuous derivative: autograd through the closed form agrees on knots too
        auto = torch.autograd.grad(B.bspline_uniform_plain(zz.unsqueeze(1), one, zero, k).sum(), zz)[0]
        assert torch.allclose(hand, auto, atol=1e-13)
    h = 1e-6
    fd = torch.tensor([(_cardinal(k, float(v) + h) - _cardinal(k, float(v) - h)) / (2 * h) for v in z], dtype=D)
    if k >= 2:
        assert torch.allclose(hand, fd, atol=1e-6)


def _cardinal(k, z):
    """M_k(z) from the recursion M_k(z) = ((k+1)/2 + z) / k M_{k-1}(z + 1/2) + ((k+1)/2 - z) / k M_{k-1}(z - 1/2)."""
    if k == 0:
        return 1.0 if -0.5 <= z < 0.5 else 0.0
    return (((k + 1) / 2 + z) * _cardinal(k - 1, z + 0.5) + ((k + 1) / 2 - z) * _cardinal(k - 1, z - 0.5)) / k


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_native_layer_on_knots_equals_the_general_path(k, bias):
    torch.manual_seed(0)
    layer = SplineKANLayer(2, 3, grid_size=4, spline_order=k, bias=bias, dtype=D)
    with torch.no_grad():
        layer.weight.normal_()
        if bias:
            layer.bias.normal_()
    knots = layer.grid[0, k:-k]  # the grid's knots inside its range, ends included
    x = torch.stack([knots, knots.flip(0)], dim=1).clone().requires_grad_(True)
    layer.use_native = False
    y_ref = layer(x)
    g_ref = torch.autograd.grad(y_ref.square().sum(), [x, layer.weight] + ([layer.bias] if bias else []))
    layer.use_native = True
    x2 = x.detach().clone().requires_grad_(True)
    y = layer(x2)
    assert "KanLinear" in y.grad_fn.name() or not native.STATUS.available
    g = torch.autograd.grad(y.square().sum(), [x2, layer.weight] + ([layer.bias] if bias else []))
    assert torch.allclose(y, y_ref, atol=1e-13)
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("base", ["silu", "identity", "zero"])
def test_native_base_activations_and_their_derivatives(base):
    torch.manual_seed(1)
    layer = RBFKANLayer(2, 2, num_centers=3, base_activation=base, dtype=D)
    with torch.no_grad():
        layer.weight.normal_()
    x = _x(7, 2, seed=3).requires_grad_(True)
    layer.use_native = False
    ref = torch.autograd.grad(layer(x).sum(), x)[0]
    layer.use_native = True
    y = layer(x)
    assert torch.allclose(torch.autograd.grad(y.sum(), x)[0], ref, atol=1e-12)


def test_native_backward_only_what_is_needed():
    layer = SplineKANLayer(2, 1, dtype=D)
    x = _x(3, 2)
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    xr = x.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad(layer(xr).sum(), xr)
    assert gx.shape == (3, 2)
    layer.weight.requires_grad_(True)
    y = layer(x)
    (gw,) = torch.autograd.grad(y.sum(), layer.weight)
    assert torch.allclose(gw, layer.features(x).sum(0).unsqueeze(0).expand_as(gw))


# ----------------------------------------------------------------------------- spline layer


def test_spline_layer_errors_and_options():
    with pytest.raises(ValueError) as e:
        SplineKANLayer(2, 1, grid_size=0)
    assert str(e.value) == "need grid_size >= 1 and spline_order >= 0, got 0, 3"
    with pytest.raises(ValueError, match="got 5, -1"):
        SplineKANLayer(2, 1, spline_order=-1)
    SplineKANLayer(2, 1, grid_size=1, spline_order=0)
    layer = SplineKANLayer(2, 3, grid_size=4, spline_order=2, grid_eps=0.5)
    assert layer._basis_options() == {"grid_size": 4, "spline_order": 2, "grid_eps": 0.5}
    assert layer.n_basis == 6 and layer.weight.shape == (3, 2, 7) and layer.grid.shape == (2, 9)
    assert layer.extra_repr() == "in_features=2, out_features=3, n_basis=6"
    l2 = SplineKANLayer(2, 3, bias=False, standalone_scale=True)
    assert l2.extra_repr() == "in_features=2, out_features=3, n_basis=8, standalone_scale=True, bias=False"
    with pytest.raises(ValueError) as e:
        SplineKANLayer(2, 1, base_activation="relu")
    assert str(e.value) == "unknown base_activation 'relu'; use one of silu, identity, zero, gelu, tanh"
    with pytest.raises(ValueError) as e:
        SplineKANLayer(0, 1)
    assert str(e.value) == "layer widths must be positive, got in=0, out=1"
    with pytest.raises(ValueError, match="got in=1, out=0"):
        SplineKANLayer(1, 0)
    with pytest.raises(ValueError, match="^unknown l1_metric 'l2'; use one of "):
        SplineKANLayer(1, 1, l1_metric="l2")
    with pytest.raises(ValueError) as e:
        layer(torch.zeros(4, 3))
    assert str(e.value) == "SplineKANLayer expects input (batch, 2), got (4, 3)"
    with pytest.raises(ValueError):
        layer(torch.zeros(2))
    with pytest.raises(ValueError, match="new_grid_size must be at least 1"):
        layer.extend_grid(0)


def test_reset_parameters_ranges():
    torch.manual_seed(0)
    layer = SplineKANLayer(4, 50, grid_size=5, spline_order=3, noise_scale=0.3, scale_base_mu=2.0, scale_base_sigma=0.5, dtype=D)
    spline = layer.weight[..., :-1]
    # uniform(-0.5, 0.5) * 0.3 / (n_basis - 1 = 7) / sqrt(4)
    bound = 0.5 * 0.3 / 7 / 2
    assert spline.abs().max() <= bound and spline.abs().max() > 0.9 * bound
    base = layer.weight[..., -1]
    # uniform(-1, 1) * 0.5 / 2 + 2 / 2
    assert base.min() >= 1.0 - 0.25 and base.max() <= 1.0 + 0.25 and base.min() < 0.8 and base.max() > 1.2
    assert layer.bias.abs().sum() == 0
    one = SplineKANLayer(1, 400, grid_size=1, spline_order=0, dtype=D)  # n_basis 1: grid_count max(0, 1) = 1
    assert one.weight[..., 0].abs().max() <= 0.15 and one.weight[..., 0].abs().max() > 0.13
    s = SplineKANLayer(2, 2, standalone_scale=True)
    with torch.no_grad():
        s.spline_scale.fill_(3.0)
    s.reset_parameters()
    assert s.spline_scale.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_non_uniform_grid_refined_without_data_is_exact_on_nested_knots():
    """extend_grid(x=None) after update_grid: the non-uniform path (refine_knots); G -> 2G keeps every old knot."""
    torch.manual_seed(0)
    layer = SplineKANLayer(2, 2, grid_size=3, spline_order=3, grid_eps=0.0, dtype=D)
    with torch.no_grad():
        layer.weight.normal_()
    x = torch.stack([_x(200, 1, seed=1)[:, 0] ** 3, _x(200, 1, seed=2)[:, 0]], dim=1)
    layer.update_grid(x)
    assert not layer.uniform and layer._cox_tables is not None and layer.affine_a.numel() == 0
    old_inner = layer.grid[:, 3:-3].clone()
    probe = _x(300, 2, seed=5) * 0.9
    probe = torch.minimum(torch.maximum(probe, old_inner[:, :1].T), old_inner[:, -1:].T - 1e-9)
    before = layer(probe)
    layer.extend_grid(6)
    assert not layer.uniform and layer.grid_size == 6 and layer.grid.shape == (2, 6 + 7)
    new_inner = layer.grid[:, 3:-3]
    assert torch.allclose(new_inner[:, ::2], old_inner, atol=1e-12)  # the old knots are kept
    assert torch.allclose(new_inner[:, 1::2], (old_inner[:, :-1] + old_inner[:, 1:]) / 2, atol=1e-12)
    # extended by the end spacings
    assert torch.allclose(layer.grid[:, 2] - layer.grid[:, 3], -(new_inner[:, 1] - new_inner[:, 0]), atol=1e-12)
    assert torch.allclose(layer(probe), before, atol=1e-8)
    # and after that, with data: back to a uniform grid covering the data
    layer.extend_grid(4, x=x)
    assert layer.uniform and layer.grid_size == 4
    assert torch.allclose(layer.grid[:, 3], x.amin(0).clamp_max(old_inner[:, 0])) and torch.allclose(layer.grid[:, -4], x.amax(0))


def test_update_grid_with_eps_one_stays_uniform_and_margin():
    layer = SplineKANLayer(1, 1, grid_size=4, spline_order=2, dtype=D)
    x = torch.tensor([[0.0], [0.3], [2.0]], dtype=D)
    layer.update_grid(x, grid_eps=1.0, margin=0.5)
    assert layer.uniform and layer.grid[0, 2:-2].tolist() == pytest.approx([-0.5, 0.25, 1.0, 1.75, 2.5])
    layer.update_grid(x, grid_eps=0.0)
    assert not layer.uniform and layer.grid[0, 2:-2].tolist() == pytest.approx([0.0, 0.15, 0.3, 1.15, 2.0])
    assert layer.grid_eps == 0.02


def test_grid_state_follows_dtype_and_reload():
    layer = SplineKANLayer(2, 1, grid_size=3, spline_order=2)
    layer.update_grid(torch.tensor([[0.0, 0.0], [0.1, 0.5], [1.0, 0.6]]), grid_eps=0.0)
    assert not layer.uniform
    layer.double()
    assert all(t.dtype == D for tab in layer._cox_tables for t in tab)
    other = SplineKANLayer(2, 1, grid_size=3, spline_order=2, dtype=D)
    other.load_state_dict(layer.state_dict())
    assert not other.uniform and other._cox_tables is not None and torch.equal(other.grid, layer.grid)
    x = _x(5, 2)
    assert torch.allclose(other(x), layer(x))
    back = SplineKANLayer(2, 1, grid_size=3, spline_order=2, dtype=D)
    other.load_state_dict(back.state_dict())
    assert other.uniform and other._cox_tables is None
    other._cox_tables = None
    other.uniform = False
    assert torch.allclose(other.basis(x), back.basis(x), atol=1e-12) and other._cox_tables is not None


def test_tied_inputs_share_grid_and_functions_and_discard():
    torch.manual_seed(0)
    layer = SplineKANLayer(3, 2, grid_size=3, dtype=D)
    with pytest.raises(ValueError) as e:
        layer.tie_inputs([1, 1])
    assert str(e.value) == "need one group entry per input (3), got 2"
    layer.tie_inputs([1, -1, 1])
    assert layer.input_groups == [1, -1, 1]
    assert layer.edge_mask.tolist() == [[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
    x = _x(50, 3)
    y = layer(x)
    swapped = layer(x[:, [2, 1, 0]])
    assert torch.allclose(y, swapped, atol=1e-12)  # permutation invariant in the tied pair
    assert torch.allclose(layer(torch.cat([x[:, :1], 5 * x[:, 1:2], x[:, 2:]], 1)), y)  # input 1 discarded
    layer.update_grid(torch.cat([x[:, :1] * 0.5, x[:, 1:2], x[:, 2:] * 0.9], 1), grid_eps=0.0)
    assert torch.equal(layer.grid[0], layer.grid[2])
    rbf = RBFKANLayer(3, 1, num_centers=4, dtype=D)
    rbf.update_grid(x * torch.tensor([1.0, 0.2, 0.3], dtype=D), grid_eps=1.0)
    rbf.tie_inputs([2, 0, 2])
    assert torch.equal(rbf.centers[0], rbf.centers[2]) and torch.equal(rbf.widths[0], rbf.widths[2])
    assert torch.allclose(rbf(x), rbf(x[:, [2, 1, 0]]), atol=1e-12)


def test_locks_and_unlocks_exactly():
    layer = SplineKANLayer(2, 2, grid_size=2, spline_order=1, standalone_scale=True, dtype=D)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(16, dtype=D).view(2, 2, 4))
        layer.spline_scale.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(ValueError, match="lock needs at least two edges"):
        layer.lock([(0, 0)])
    with pytest.raises(IndexError) as e:
        layer.lock([(0, 0), (2, 0)])
    assert str(e.value) == "edge (2, 0) is outside this 2x2 layer"
    with pytest.raises(IndexError):
        layer.lock([(0, 0), (0, 2)])
    with pytest.raises(IndexError):
        layer.lock([(0, 0), (-1, 0)])
    layer.lock([(1, 1), (0, 0), (0, 1)])
    assert layer.lock_index.tolist() == [3, 3, 2, 3]
    w = layer.effective_weight()
    assert w[0, 0].tolist() == w[1, 1].tolist() == [12 * 4.0, 13 * 4.0, 14 * 4.0, 15.0]
    layer.lock([(1, 0), (0, 0)])  # (0, 0) now follows (1, 0)
    assert layer.lock_index.tolist() == [2, 3, 2, 3]
    layer.unlock([(0, 0)])
    assert layer.lock_index.tolist() == [0, 3, 2, 3]
    assert layer.weight[0, 0].tolist() == [8.0, 9.0, 10.0, 11.0] and layer.spline_scale[0, 0] == 3.0
    layer.unlock()
    assert (
        layer.lock_index is None and layer.weight[0, 1].tolist() == [12.0, 13.0, 14.0, 15.0] and layer.spline_scale[0, 1] == 4.0
    )
    layer.unlock()  # nothing locked: nothing to do
    with pytest.raises(ValueError) as e:
        layer.set_edge_mask(torch.ones(3, 2))
    assert str(e.value) == "edge mask must have shape (2, 2), got (3, 2)"
    layer.set_edge_mask([[1, 1], [1, 1]])
    assert not layer._masked
    layer.set_edge_mask([[1, 0.5], [1, 1]])
    assert layer._masked and layer.effective_weight()[0, 1, -1] == 0.5 * 15.0


def test_subset_keeps_the_functions_exactly():
    torch.manual_seed(0)
    for layer in (SplineKANLayer(3, 4, grid_size=3, standalone_scale=True, dtype=D), RBFKANLayer(3, 4, num_centers=4, dtype=D)):
        with torch.no_grad():
            layer.weight.normal_()
            layer.bias.normal_()
            if layer.spline_scale is not None:
                layer.spline_scale.normal_()
        layer.update_grid(_x(40, 3, seed=4) * 0.7)
        sub = layer.subset([2, 0], [3, 1])
        x = _x(10, 3, seed=6)
        edges = layer.edge_values(x)[:, [3, 1]][:, :, [2, 0]].sum(-1) + layer.bias[[3, 1]]
        assert torch.allclose(sub(x[:, [2, 0]]), edges, atol=1e-12)
        assert sub.in_features == 2 and sub.out_features == 4 - 2 and type(sub) is type(layer)
    nb = SplineKANLayer(2, 2, bias=False, base_activation="tanh", l1_metric="std", dtype=D).subset([0], [1])
    assert nb.bias is None and nb.base_activation == "tanh" and nb.l1_metric == "std" and nb.weight.dtype == D


# ----------------------------------------------------------------------------- rbf layer


def test_rbf_layer_errors_and_grid():
    with pytest.raises(ValueError, match="^unknown kernel 'box'; use one of gaussian, "):
        RBFKANLayer(2, 1, kernel="box")
    with pytest.raises(ValueError, match="num_centers must be at least 2"):
        RBFKANLayer(2, 1, num_centers=1)
    RBFKANLayer(2, 1, num_centers=2)
    layer = RBFKANLayer(2, 1, num_centers=5, grid_range=(0.0, 2.0), width_scale=2.0, dtype=D)
    assert layer.centers[1].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0] and layer.widths[0].tolist() == [1.0] * 5
    assert layer.affine_a[0].tolist() == [1.0] * 5 and layer.affine_b[0].tolist() == [-0.0, -0.5, -1.0, -1.5, -2.0]
    assert [t.tolist() for t in layer.grid_range()] == [[0.0, 0.0], [2.0, 2.0]]
    with pytest.raises(ValueError, match="new_num_centers must be at least 2"):
        layer.extend_grid(1)
    assert layer._basis_options() == {
        "num_centers": 5,
        "kernel": "gaussian",
        "trainable_centers": False,
        "width_scale": 2.0,
        "grid_eps": 0.02,
    }
    t = RBFKANLayer(2, 1, num_centers=3, trainable_centers=True, dtype=D)
    assert isinstance(t.centers, torch.nn.Parameter) and t.affine_a.numel() == 0
    x = _x(4, 2)
    z = (x.unsqueeze(-1) - t.centers) / t.widths
    assert torch.allclose(t.basis(x), torch.exp(-(z**2)))


def test_rbf_update_grid_keeps_centers_increasing():
    layer = RBFKANLayer(1, 1, num_centers=4, dtype=D)
    x = torch.tensor([[0.0], [1.0], [1.0], [1.0], [1.0], [1.0], [2.0]], dtype=D)
    layer.update_grid(x, grid_eps=0.0)
    c = layer.centers[0]
    floor = 1e-3 * 2.0 / 4
    assert c[0] == 0.0 and (torch.diff(c) >= floor - 1e-15).all()
    # quantiles 0, 1, 1, 2; the repeated center is moved up by the floor, and every later one with it
    assert c.tolist() == pytest.approx([0.0, 1.0, 1.0 + floor, 2.0 + floor], rel=1e-14)
    assert layer.widths[0].tolist() == pytest.approx([1.0, (1.0 + floor) / 2, (1.0 + floor) / 2, 1.0], rel=1e-12)


def test_rbf_extend_grid_widens_to_the_data_and_trainable_centers():
    torch.manual_seed(0)
    layer = RBFKANLayer(1, 1, num_centers=4, trainable_centers=True, dtype=D)
    x = torch.tensor([[-3.0], [0.5]], dtype=D)
    layer.extend_grid(7, x=x)
    assert isinstance(layer.centers, torch.nn.Parameter)
    assert layer.centers[0].tolist() == pytest.approx([-3.0 + 4 * i / 6 for i in range(7)], rel=1e-14, abs=1e-15)
    assert layer.num_centers == 7 and layer.weight.shape == (1, 1, 8)


def test_rbf_extend_grid_exact_spacing():
    layer = RBFKANLayer(1, 1, num_centers=4, dtype=D)
    layer.extend_grid(5, x=torch.tensor([[-3.0], [0.5]], dtype=D))
    assert layer.centers[0].tolist() == [-3.0, -2.0, -1.0, 0.0, 1.0]
    layer.extend_grid(3)
    assert layer.centers[0].tolist() == [-3.0, -1.0, 1.0] and layer.widths[0].tolist() == [2.0, 2.0, 2.0]


# ----------------------------------------------------------------------------- network


def test_network_errors_and_builders():
    with pytest.raises(ValueError, match="a KAN needs at least one layer"):
        KAN([])
    with pytest.raises(ValueError) as e:
        KAN([SplineKANLayer(2, 3), SplineKANLayer(4, 1)])
    assert str(e.value) == "layer widths do not chain: 3 -> 4"
    with pytest.raises(ValueError, match=r"widths needs at least \[in, out\]"):
        build_kan([2])
    with pytest.raises(ValueError, match="need 2 layer kinds, got 1"):
        build_kan([2, 3, 1], ["spline"])
    with pytest.raises(ValueError, match="^unknown layer kind 'mlp'; use one of spline, rbf$"):
        build_kan([2, 1], "mlp")
    m = build_kan([2, 3, 1], ["rbf", "spline"], grid_size=4, spline_order=2, kernel="matern32")
    assert m.widths == [2, 3, 1] and m.layers[0].num_centers == 6 and m.layers[0].kernel == "matern32"
    assert m.layers[1].grid_size == 4 and m.layers[1].spline_order == 2
    assert net._layer_kwargs("rbf", {"grid_size": 4}) == {"num_centers": 7}
    assert net._layer_kwargs("rbf", {"grid_size": 4, "spline_order": 1}) == {"num_centers": 5}
    assert net._layer_kwargs("rbf", {"grid_size": 4, "num_centers": 3}) == {"num_centers": 3}
    assert net._layer_kwargs("spline", {"num_centers": 3, "kernel": "x", "grid_size": 2}) == {"grid_size": 2}
    assert net._layer_kwargs("rbf", {"spline_order": 2, "width_scale": 2.0}) == {"width_scale": 2.0}
    assert build_rbf_kan([1, 1], dtype=D).layers[0].weight.dtype == D


def test_regularization_loss_with_coefficient_penalties_exactly():
    torch.manual_seed(0)
    m = build_spline_kan([2, 2, 1], dtype=D)
    with pytest.raises(
        RuntimeError, match=r"^no per-edge statistics yet: run the forward inside `with model.tracking\(\):` first$"
    ):
        m.regularization_loss()
    x = _x(20, 2)
    y, base = m.forward_with_regularization(x, l1=0.5, entropy=0.25)
    assert torch.allclose(y, m(x))
    from better_kan import regularization as reg

    expected = sum(reg.layer_penalty(l.stats["l1"], 0.5, 0.25) for l in m.layers)
    assert torch.allclose(base, expected)
    full = m.regularization_loss(0.5, 0.25, coef=2.0, coefdiff=3.0)
    extra = sum(
        2.0 * l.coef.abs().mean(-1).sum() + 3.0 * (l.coef[..., 1:] - l.coef[..., :-1]).abs().mean(-1).sum() for l in m.layers
    )
    assert torch.allclose(full, expected + extra)
    scores = m.edge_scores(x)
    assert [s.shape for s in scores] == [(2, 2), (1, 2)]


def test_node_scores_prune_with_edges_and_mask_nodes():
    torch.manual_seed(0)
    m = build_spline_kan([2, 3, 1], dtype=D)
    with torch.no_grad():
        m.layers[0].weight[1].mul_(1e-6)  # hidden node 1: tiny incoming edges
        m.layers[1].weight[0, 2].mul_(1e-6)  # hidden node 2: a tiny outgoing edge
        m.layers[0].weight[0, 1].mul_(1e-6)  # edge (0, 1) of layer 0 tiny, node 0 kept
    x = _x(100, 2)
    scores = m.edge_scores(x)
    ns = m.node_scores(x)
    assert torch.allclose(ns[0], torch.minimum(scores[0].amax(1), scores[1].amax(0)))
    threshold = float(ns[0][[0]].min()) / 2
    with pytest.raises(ValueError, match="prune needs data x"):
        m.prune()
    small = m.prune(threshold=threshold, x=x, edges=True)
    assert small.kept_nodes == [[0, 1], [0], [0]]
    assert small.layers[0].edge_mask.tolist() == [[1.0, float(scores[0][0, 1] >= threshold)]]
    assert small.layers[0].edge_mask[0, 1] == 0.0
    masked = build_spline_kan([2, 3, 1], dtype=D)
    masked.load_state_dict(m.state_dict())
    masked.mask_nodes(small.kept_nodes)
    mask0 = masked.layers[0].edge_mask.clone()
    mask0[0, 1] = 0.0
    masked.layers[0].set_edge_mask(mask0)
    assert masked.layers[0].edge_mask.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    assert masked.layers[1].edge_mask.tolist() == [[1.0, 0.0, 0.0]]
    assert torch.allclose(small(x), masked(x), atol=1e-12)
    keep_edges = m.prune(threshold=threshold, x=x, edges=False)
    assert keep_edges.layers[0].edge_mask.tolist() == [[1.0, 1.0]]
    m.mask_nodes([[0, 1], [0, 1, 2], [0]])
    assert not m.layers[0]._masked


def test_network_grid_tools_follow_the_activations():
    torch.manual_seed(0)
    m = build_kan([2, 2, 1], ["spline", "rbf"], dtype=D)
    x = _x(64, 2, -2.0, 2.0).float()
    m.update_grid(x, grid_eps=1.0)
    h = m.layers[0](x.to(D))
    assert torch.allclose(m.layers[0].grid[:, 3], x.to(D).amin(0)) and torch.allclose(m.layers[1].centers[:, 0], h.amin(0))
    before = m(x.to(D))
    m.extend_grid(10, x=x)
    assert m.layers[0].grid_size == 10 and m.layers[1].num_centers == 10
    assert torch.allclose(m(x.to(D)), before, atol=1e-2)
    m.extend_grid(12)
    assert m.layers[0].grid_size == 12 and m.layers[1].num_centers == 12
    m.lock(0, [(0, 0), (1, 0)])
    assert m.layers[0].lock_index is not None
    m.unlock(0)
    assert m.layers[0].lock_index is None
    m.tie_inputs([1, 1])
    assert m.layers[0].input_groups == [1, 1]


def test_network_unlock_only_the_named_edges():
    m = build_spline_kan([2, 2], dtype=D)
    m.lock(0, [(0, 0), (1, 0), (1, 1)])
    m.unlock(0, [(1, 0)])
    assert m.layers[0].lock_index.tolist() == [0, 1, 2, 0]
    m.unlock(0)
    assert m.layers[0].lock_index is None


def test_grid_helpers_compute_in_float64():
    xs = torch.arange(11, dtype=D).unsqueeze(1)
    exact = [0.0, 10 / 3, 20 / 3, 10.0]
    assert grids._blend(xs, 4, 0.0, 0.0)[0].tolist() == pytest.approx(exact, rel=1e-15, abs=0)
    assert grids._blend(xs, 4, 1.0, 0.0)[0].tolist() == pytest.approx(exact, rel=1e-15, abs=0)
    x32 = torch.tensor([[0.3], [1.7], [2.9]], dtype=torch.float32)
    g = grids.data_grid(x32, 2, 1.0, margin=0.1)
    lo, hi = float(x32[0, 0]) - 0.1, float(x32[2, 0]) + 0.1
    assert g[0].tolist() == [lo, hi]
    # the default margin is 0
    assert grids.data_grid(x32, 2, 1.0)[0].tolist() == [float(x32[0, 0]), float(x32[2, 0])]
    layer = SplineKANLayer(1, 1, grid_size=3, spline_order=1, grid_range=(0.0, 1.0), dtype=D)
    assert grids.fit_points(layer, 7)[:, 0].tolist() == pytest.approx([i / 6 for i in range(7)], rel=1e-15, abs=0)


def test_data_grid_pools_each_group_separately():
    x = torch.tensor([[1.0, 10.0, 5.0, 20.0], [2.0, 11.0, 6.0, 21.0], [3.0, 12.0, 7.0, 22.0]])
    g = grids.data_grid(x, 4, 0.0, groups=[1, 2, 1, 2])
    # group 1 pools inputs 0 and 2: 1 2 3 5 6 7 at positions 0, 5/3, 10/3, 5
    assert g[0].tolist() == pytest.approx([1.0, 2 + 2 / 3, 5 + 1 / 3, 7.0]) and torch.equal(g[0], g[2])
    assert g[1].tolist() == pytest.approx([10.0, 11 + 2 / 3, 20 + 1 / 3, 22.0]) and torch.equal(g[1], g[3])


def test_native_basis_follows_a_changed_kernel_and_order():
    torch.manual_seed(0)
    layer = RBFKANLayer(2, 1, num_centers=4, dtype=D)
    x = _x(5, 2)
    first = layer(x)
    layer.kernel = "matern32"
    layer.use_native = False
    expected = layer(x)
    layer.use_native = True
    assert torch.allclose(layer(x), expected) and not torch.allclose(first, expected)
    assert layer.native_basis()[2] == "matern32"


def test_extend_grid_resizes_the_basis_count():
    layer = SplineKANLayer(2, 1, grid_size=3, spline_order=2, dtype=D)
    layer.extend_grid(6)
    assert layer.n_basis == 8 and layer.weight.shape == (1, 2, 9)
    rbf = RBFKANLayer(2, 1, num_centers=4, dtype=D)
    rbf.extend_grid(6)
    assert rbf.n_basis == 6 and rbf.weight.shape == (1, 2, 7)


def test_regularization_defaults_and_metric():
    torch.manual_seed(0)
    m = build_spline_kan([2, 2, 1], dtype=D)
    x = _x(20, 2)
    _, default = m.forward_with_regularization(x)
    _, explicit = m.forward_with_regularization(x, l1=1.0, entropy=2.0)
    assert torch.equal(default, explicit)
    assert torch.equal(m.regularization_loss(), m.regularization_loss(1.0, 2.0, 0.0, 0.0))
    _, std = m.forward_with_regularization(x, metric="std")
    with m.tracking("std"):
        m(x)
    assert torch.equal(std, m.regularization_loss())
    assert not torch.equal(std, default)


def test_initial_knots_and_centers_are_exact_in_float64():
    layer = SplineKANLayer(2, 1, grid_size=3, spline_order=1, grid_range=(0.0, 1.0), dtype=D)
    assert layer.grid[1].tolist() == pytest.approx([(i - 1) / 3 for i in range(6)], rel=1e-14, abs=1e-300)
    assert layer.grid.dtype == D
    rbf = RBFKANLayer(2, 1, num_centers=4, grid_range=(0.0, 1.0), dtype=D)
    assert rbf.centers[0].tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0], rel=1e-14, abs=0)  # not float32's 1/3


def test_default_base_weights_are_pykans_centred_uniform():
    """pykan's initialization by default: base weights ~ sigma * U(-1, 1) / sqrt(in) with mu = 0, sigma = 1."""
    torch.manual_seed(0)
    layer = SplineKANLayer(4, 500)
    base = layer.base_weight.detach()
    assert base.abs().max() <= 0.5  # 1 / sqrt(4): a larger sigma or a non-zero mu leaves this range
    assert base.abs().max() > 0.45 and abs(float(base.mean())) < 0.03  # spread over it, centred


def test_a_one_basis_function_uniform_grid_reloads_as_uniform():
    """The smallest uniform layer (one input, G = 1, k = 0: affine tables of one element) stays on the
    closed form after load_state_dict."""
    layer = SplineKANLayer(1, 1, grid_size=1, spline_order=0, dtype=D)
    assert layer.uniform and layer.affine_a.numel() == 1
    fresh = SplineKANLayer(1, 1, grid_size=1, spline_order=0, dtype=D)
    fresh.load_state_dict(layer.state_dict())
    assert fresh.uniform and fresh._cox_tables is None


def test_build_kan_defaults_to_spline_layers_and_a_kan_checks_every_junction():
    assert all(isinstance(layer, SplineKANLayer) for layer in build_kan([2, 3, 1]).layers)
    with pytest.raises(ValueError, match="do not chain: 4 -> 5"):
        KAN([SplineKANLayer(2, 3), SplineKANLayer(3, 4), SplineKANLayer(5, 1)])
