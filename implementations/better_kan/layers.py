"""KAN layers: B-spline and RBF, one matmul per layer.

Every edge (q, p) -- from input p to output q -- carries a learnable univariate
function

    phi_{q,p}(x) = w_b[q,p] * silu(x) + w_s[q,p] * sum_i c[q,p,i] * B_i(x)

with B_i the layer's basis (B-splines or RBFs on input p's own grid), and the
layer computes y_q = sum_p phi_{q,p}(x_p) + bias_q.

The fast path never builds the (batch, out, in) tensor of edge values. The
basis values and the base activation of each input are laid side by side,
``F[s, p, :] = [B_0(x_sp) .. B_{n-1}(x_sp), silu(x_sp)]``, and the parameters
are stored in the same order, ``weight[q, p, :] = [c[q,p,0] .. c[q,p,n-1], w_b[q,p]]``,
so the whole layer is one ``F.linear`` of the flattened (batch, in*(n+1))
features with the (out, in*(n+1)) weight, plus the bias.

``w_s`` is folded into ``c`` by default (the set of functions is the same, and
folding saves forming the product ``w_s*c`` -- a pass over all spline
weights -- on every step). ``standalone_scale=True`` keeps pykan's and
efficient-kan's separate trainable ``w_s``.

Per-edge statistics (for pykan's L1 + entropy regularization, pruning and
plots) are computed only inside :meth:`KANLayer.tracking` (see
:mod:`.regularization`); masks and locks cost nothing unless used.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import basis as basis_mod
from . import regularization as reg

BASE_ACTIVATIONS = {
    "silu": F.silu,
    "identity": lambda x: x,
    "zero": torch.zeros_like,
    "gelu": F.gelu,
    "tanh": torch.tanh,
}


class KANLayer(nn.Module):
    """Common machinery; subclasses define :meth:`basis` and their grids."""

    n_basis: int

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_basis: int,
        *,
        bias: bool = True,
        base_activation: str = "silu",
        standalone_scale: bool = False,
        noise_scale: float = 0.3,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        l1_metric: str = "mean_abs",
        device=None,
        dtype=None,
    ):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"layer widths must be positive, got in={in_features}, out={out_features}")
        if base_activation not in BASE_ACTIVATIONS:
            raise ValueError(f"unknown base_activation {base_activation!r}; use one of {', '.join(BASE_ACTIVATIONS)}")
        if l1_metric not in reg.METRICS:
            raise ValueError(f"unknown l1_metric {l1_metric!r}; use one of {', '.join(reg.METRICS)}")
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.n_basis = n_basis
        self.base_activation = base_activation
        self.l1_metric = l1_metric
        self.weight = nn.Parameter(torch.empty(out_features, in_features, n_basis + 1, **factory))
        self.spline_scale = nn.Parameter(torch.empty(out_features, in_features, **factory)) if standalone_scale else None
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        # edge mask (pruned / discarded edges) and lock map; both inactive by default
        self.register_buffer("edge_mask", torch.ones(out_features, in_features, **factory))
        self.register_buffer("lock_index", None)
        self._masked = False
        self._tracking: Optional[dict] = None
        #: per-edge statistics of the last tracked forward (see :meth:`tracking`)
        self.stats: Optional[dict] = None
        self.reset_parameters(noise_scale, scale_base_mu, scale_base_sigma)

    # ------------------------------------------------------------------ parameters

    @torch.no_grad()
    def reset_parameters(self, noise_scale: float = 0.3, scale_base_mu: float = 0.0, scale_base_sigma: float = 1.0):
        """pykan's initialization: small random splines, base weights ~ mu/sqrt(in) + sigma*U(-1,1)/sqrt(in)."""
        fan = math.sqrt(self.in_features)
        grid_count = max(self.n_basis - 1, 1)
        self.weight[..., :-1].uniform_(-0.5, 0.5).mul_(noise_scale / grid_count / fan)
        self.weight[..., -1].uniform_(-1.0, 1.0).mul_(scale_base_sigma / fan).add_(scale_base_mu / fan)
        if self.spline_scale is not None:
            self.spline_scale.fill_(1.0)
        if self.bias is not None:
            self.bias.zero_()

    @property
    def coef(self) -> torch.Tensor:
        """Basis coefficients c[q, p, i] (a view into ``weight``)."""
        return self.weight[..., :-1]

    @property
    def base_weight(self) -> torch.Tensor:
        """Base-branch weights w_b[q, p] (a view into ``weight``)."""
        return self.weight[..., -1]

    # ------------------------------------------------------------------ forward

    def basis(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def base(self, x: torch.Tensor) -> torch.Tensor:
        return BASE_ACTIVATIONS[self.base_activation](x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """F (batch, in, n_basis + 1): the basis values and the base activation of every input."""
        return torch.cat([self.basis(x), self.base(x).unsqueeze(-1)], dim=-1)

    def effective_weight(self) -> torch.Tensor:
        """(out, in, n_basis + 1): ``weight`` with locks, the standalone scale and masks applied."""
        w = self.weight
        if self.lock_index is not None:
            w = w.reshape(-1, w.shape[-1]).index_select(0, self.lock_index).view_as(w)
        if self.spline_scale is not None:
            scale = self.spline_scale
            if self.lock_index is not None:
                scale = scale.reshape(-1).index_select(0, self.lock_index).view_as(scale)
            w = torch.cat([w[..., :-1] * scale.unsqueeze(-1), w[..., -1:]], dim=-1)
        if self._masked:
            w = w * self.edge_mask.unsqueeze(-1)
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects input (batch, {self.in_features}), got {tuple(x.shape)}")
        feats = self.features(x)
        w = self.effective_weight()
        y = F.linear(feats.reshape(x.shape[0], -1), w.reshape(self.out_features, -1), self.bias)
        if self._tracking is not None:
            self.stats = reg.edge_statistics(x, feats, w, **self._tracking)
        return y

    def edge_values(self, x: torch.Tensor) -> torch.Tensor:
        """phi_{q,p}(x_p) for every edge: (batch, out, in). The slow per-edge path, for tests and plots."""
        feats = self.features(x)
        return torch.einsum("spj,qpj->sqp", feats, self.effective_weight())

    @contextlib.contextmanager
    def tracking(self, metric: Optional[str] = None, sample: Optional[int] = None):
        """Record per-edge statistics (``self.stats``) on every forward inside the block."""
        previous = self._tracking
        self._tracking = {"metric": metric or self.l1_metric, "sample": sample}
        try:
            yield self
        finally:
            self._tracking = previous

    # ------------------------------------------------------------------ masks and locks

    def _refresh_mask_flag(self):
        self._masked = bool((self.edge_mask != 1).any())

    @torch.no_grad()
    def set_edge_mask(self, mask: torch.Tensor):
        """Multiply every edge's function by ``mask[q, p]`` (0 removes an edge)."""
        mask = torch.as_tensor(mask, dtype=self.edge_mask.dtype, device=self.edge_mask.device)
        if mask.shape != self.edge_mask.shape:
            raise ValueError(f"edge mask must have shape {tuple(self.edge_mask.shape)}, got {tuple(mask.shape)}")
        self.edge_mask.copy_(mask)
        self._refresh_mask_flag()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "lock_index"
        if key in state_dict and self.lock_index is None:
            self.lock_index = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_mask_flag()

    def _flat(self, q: int, p: int) -> int:
        if not (0 <= q < self.out_features and 0 <= p < self.in_features):
            raise IndexError(f"edge ({q}, {p}) is outside this {self.out_features}x{self.in_features} layer")
        return q * self.in_features + p

    @torch.no_grad()
    def lock(self, edges: Iterable[Sequence[int]]):
        """Tie edges [(q, p), ...] to share one activation function: the first edge's.

        The tied edges read the first edge's parameters (a gather on the weight
        in the forward), so they stay equal through any optimizer step; their
        gradients add up on the shared parameters.
        """
        edges = [tuple(int(v) for v in e) for e in edges]
        if len(edges) < 2:
            raise ValueError("lock needs at least two edges")
        index = self.lock_index.clone() if self.lock_index is not None else torch.arange(
            self.out_features * self.in_features, device=self.weight.device
        )
        target = int(index[self._flat(*edges[0])])
        for e in edges[1:]:
            index[self._flat(*e)] = target
        self.lock_index = index

    @torch.no_grad()
    def unlock(self, edges: Optional[Iterable[Sequence[int]]] = None):
        """Give edges (default: all) their own copy of the function they share."""
        if self.lock_index is None:
            return
        w = self.weight.view(-1, self.weight.shape[-1])
        flat = range(self.lock_index.numel()) if edges is None else [self._flat(*e) for e in edges]
        for i in flat:
            src = int(self.lock_index[i])
            if src != i:
                w[i].copy_(w[src])
                if self.spline_scale is not None:
                    self.spline_scale.view(-1)[i] = self.spline_scale.view(-1)[src]
                self.lock_index[i] = i
        if bool((self.lock_index == torch.arange(self.lock_index.numel(), device=self.lock_index.device)).all()):
            self.lock_index = None

    @torch.no_grad()
    def tie_inputs(self, groups: Sequence[int]):
        """Permutation-invariant inputs: ``groups[p]`` is 0 (independent), -1 (discarded) or a
        group number g > 0; inputs of one group share their functions (for every output) and
        their grid; discarded inputs contribute nothing."""
        groups = [int(g) for g in groups]
        if len(groups) != self.in_features:
            raise ValueError(f"need one group entry per input ({self.in_features}), got {len(groups)}")
        first: dict[int, int] = {}
        for p, g in enumerate(groups):
            if g > 0:
                rep = first.setdefault(g, p)
                if rep != p:
                    for q in range(self.out_features):
                        self.lock([(q, rep), (q, p)])
                    self._copy_input_grid(rep, p)
        mask = self.edge_mask.clone()
        for p, g in enumerate(groups):
            if g < 0:
                mask[:, p] = 0
        self.set_edge_mask(mask)
        self.input_groups = groups

    def _copy_input_grid(self, src: int, dst: int):  # pragma: no cover - per subclass
        raise NotImplementedError

    # ------------------------------------------------------------------ sub-layers (pruning)

    @torch.no_grad()
    def subset(self, in_ids: Sequence[int], out_ids: Sequence[int]) -> "KANLayer":
        """A layer over the kept inputs/outputs computing the same functions on them."""
        new = self._empty_like(len(in_ids), len(out_ids))
        in_ids_t = torch.as_tensor(list(in_ids), dtype=torch.long, device=self.weight.device)
        out_ids_t = torch.as_tensor(list(out_ids), dtype=torch.long, device=self.weight.device)
        w = self.effective_weight()
        if self.spline_scale is not None:
            # the effective weight already holds w_s * c; keep w_s = 1 in the copy
            new.spline_scale.fill_(1.0)
        new.weight.copy_(w[out_ids_t][:, in_ids_t])
        if self.bias is not None:
            new.bias.copy_(self.bias[out_ids_t])
        self._copy_grid_to(new, in_ids_t)
        return new

    def _empty_like(self, in_features: int, out_features: int) -> "KANLayer":  # pragma: no cover
        raise NotImplementedError

    def _copy_grid_to(self, new: "KANLayer", in_ids: torch.Tensor):  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ grids

    def grid_range(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """(lo, hi) per input: where the basis lives."""
        raise NotImplementedError

    @torch.no_grad()
    def _refit(self, x_fit: torch.Tensor, old_values: torch.Tensor, ridge: float = 0.0):
        """Least-squares coefficients so that, on the sample ``x_fit`` (N, in), the spline part
        of every edge reproduces ``old_values`` (N, out, in) in the (new) basis."""
        A = self.basis(x_fit).permute(1, 0, 2).to(torch.float64)  # (in, N, n)
        Y = old_values.permute(2, 0, 1).to(torch.float64)  # (in, N, out)
        if ridge > 0:
            n = A.shape[-1]
            eye = math.sqrt(ridge) * torch.eye(n, dtype=A.dtype, device=A.device).expand(A.shape[0], n, n)
            A = torch.cat([A, eye], dim=1)
            Y = torch.cat([Y, torch.zeros(Y.shape[0], n, Y.shape[2], dtype=Y.dtype, device=Y.device)], dim=1)
        sol = torch.linalg.lstsq(A, Y, driver="gelsd" if A.device.type == "cpu" else None).solution  # (in, n, out)
        # the fit is of the effective coefficients w_s * c: store them in c and reset w_s to 1
        if self.spline_scale is not None:
            self.spline_scale.fill_(1.0)
        self.weight[..., :-1].copy_(sol.permute(2, 0, 1).to(self.weight.dtype))

    @torch.no_grad()
    def _spline_values(self, x: torch.Tensor) -> torch.Tensor:
        """The basis part of every edge, sum_i w_s c_i B_i(x_p): (N, out, in)."""
        w = self.effective_weight()
        return torch.einsum("spi,qpi->sqp", self.basis(x), w[..., :-1])

    def extra_repr(self) -> str:
        parts = [f"in_features={self.in_features}", f"out_features={self.out_features}", f"n_basis={self.n_basis}"]
        if self.spline_scale is not None:
            parts.append("standalone_scale=True")
        if self.bias is None:
            parts.append("bias=False")
        return ", ".join(parts)


def _fit_points(layer: KANLayer, n: int, x: Optional[torch.Tensor] = None) -> torch.Tensor:
    """n points per input spread uniformly over the layer's grid range, plus the data ``x``
    when given: (n [+ N], in)."""
    lo, hi = layer.grid_range()
    t = torch.linspace(0, 1, n, dtype=lo.dtype, device=lo.device).unsqueeze(1)
    pts = lo.unsqueeze(0) + t * (hi - lo).unsqueeze(0)
    if x is not None:
        pts = torch.cat([pts, x.detach().to(pts.dtype)], dim=0)
    return pts


def _covering_range(layer: KANLayer, x: Optional[torch.Tensor]):
    """The layer's grid range per input, widened to cover ``x`` when given."""
    lo, hi = layer.grid_range()
    if x is not None:
        lo = torch.minimum(lo, x.detach().amin(0).to(lo.dtype))
        hi = torch.maximum(hi, x.detach().amax(0).to(hi.dtype))
    return lo, hi


class SplineKANLayer(KANLayer):
    """B-spline KAN layer (pykan's KANLayer, on the one-matmul fast path).

    Args:
        grid_size: G, the number of grid intervals (default 5).
        spline_order: k, the spline degree (default 3).
        grid_range: (lo, hi) of the initial uniform grid (default (-1, 1)).
        grid_eps: blend of uniform (1) and data-adaptive (0) grids in :meth:`update_grid` (pykan's 0.02).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        grid_eps: float = 0.02,
        **kwargs,
    ):
        if grid_size < 1 or spline_order < 0:
            raise ValueError(f"need grid_size >= 1 and spline_order >= 0, got {grid_size}, {spline_order}")
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.grid_eps = grid_eps
        super().__init__(in_features, out_features, grid_size + spline_order, **kwargs)
        device, dtype = self.weight.device, self.weight.dtype
        grid = basis_mod.uniform_grid(in_features, grid_size, spline_order, grid_range[0], grid_range[1], device, dtype)
        self.register_buffer("grid", grid)
        self.register_buffer("affine_a", torch.empty(0, device=device, dtype=dtype))
        self.register_buffer("affine_b", torch.empty(0, device=device, dtype=dtype))
        self._set_grid(grid)

    @torch.no_grad()
    def _set_grid(self, grid: torch.Tensor):
        self.grid = grid.to(self.weight.dtype)
        self.uniform = basis_mod.is_uniform(grid.to(torch.float64))
        if self.uniform:
            a, b = basis_mod.uniform_affine(grid.to(torch.float64), self.spline_order)
            self.affine_a = a.to(self.weight.dtype)
            self.affine_b = b.to(self.weight.dtype)
        else:
            self.affine_a = self.affine_a.new_empty(0)
            self.affine_b = self.affine_b.new_empty(0)
        self._cox_tables = None if self.uniform else basis_mod.cox_de_boor_tables(self.grid, self.spline_order)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("affine_a", "affine_b"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.uniform = self.affine_a.numel() > 0
        self._cox_tables = None if self.uniform else basis_mod.cox_de_boor_tables(self.grid, self.spline_order)

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if getattr(self, "_cox_tables", None) is not None:  # follow .to(device/dtype)
            self._cox_tables = basis_mod.cox_de_boor_tables(self.grid, self.spline_order)
        return out

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        if self.uniform:
            return basis_mod.bspline_uniform(x, self.affine_a, self.affine_b, self.spline_order)
        if self._cox_tables is None:
            self._cox_tables = basis_mod.cox_de_boor_tables(self.grid, self.spline_order)
        return basis_mod.bspline_cox_de_boor(x, self.grid, self.spline_order, self._cox_tables)

    def grid_range(self):
        k = self.spline_order
        return self.grid[:, k], self.grid[:, -k - 1]

    def _copy_input_grid(self, src: int, dst: int):
        grid = self.grid.clone()
        grid[dst] = grid[src]
        self._set_grid(grid)

    def _empty_like(self, in_features: int, out_features: int) -> "SplineKANLayer":
        return SplineKANLayer(
            in_features, out_features, self.grid_size, self.spline_order, grid_eps=self.grid_eps,
            bias=self.bias is not None, base_activation=self.base_activation,
            standalone_scale=self.spline_scale is not None, l1_metric=self.l1_metric,
            device=self.weight.device, dtype=self.weight.dtype,
        )

    def _copy_grid_to(self, new: "SplineKANLayer", in_ids: torch.Tensor):
        new._set_grid(self.grid[in_ids].clone())

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: Optional[float] = None, margin: float = 0.0):
        """Refit the grid to the data ``x`` (N, in) keeping the learned functions (least squares).

        New knots per input = eps * uniform(min, max) + (1 - eps) * sample quantiles (pykan and
        efficient-kan's blend), extended by k knots on each side.
        """
        eps = self.grid_eps if grid_eps is None else grid_eps
        old = self._spline_values(x)
        inner = data_grid(x, self.grid_size + 1, eps, margin, getattr(self, "input_groups", None))
        self._set_grid(basis_mod.extend_knots(inner, self.spline_order))
        self._refit(x, old)

    @torch.no_grad()
    def extend_grid(self, new_grid_size: int, x: Optional[torch.Tensor] = None, samples: int = 0):
        """Move to a uniform grid of ``new_grid_size`` intervals, refitting the functions on points
        spread over the grid and on ``x`` when given. The range stays the same unless ``x`` reaches
        beyond it (then it is widened to cover ``x``). Exact when the old knots are a subset of the
        new ones (same range, e.g. G -> 2G)."""
        if new_grid_size < 1:
            raise ValueError("new_grid_size must be at least 1")
        n = samples or max(4 * (new_grid_size + self.spline_order), 64)
        xs = _fit_points(self, n, x)
        lo, hi = _covering_range(self, x)
        old = self._spline_values(xs)
        w = self.weight.detach()
        self.grid_size = new_grid_size
        self.n_basis = new_grid_size + self.spline_order
        weight = torch.empty(self.out_features, self.in_features, self.n_basis + 1, device=w.device, dtype=w.dtype)
        weight[..., -1] = w[..., -1]
        self.weight = nn.Parameter(weight)
        if self.uniform or x is not None:
            grid = basis_mod.uniform_grid(self.in_features, new_grid_size, self.spline_order, lo, hi, w.device, w.dtype)
        else:
            old_inner = self.grid[:, self.spline_order : -self.spline_order].to(torch.float64)
            inner = _refine_knots(old_inner, new_grid_size)
            grid = basis_mod.extend_knots(inner, self.spline_order)
        self._set_grid(grid)
        self._refit(xs, old)


def _refine_knots(inner: torch.Tensor, new_intervals: int) -> torch.Tensor:
    """Piecewise-linear resampling of per-input knots (in, G+1) to (in, G'+1) keeping the ends."""
    G = inner.shape[1] - 1
    pos = torch.linspace(0, G, new_intervals + 1, dtype=inner.dtype, device=inner.device)
    lo = pos.floor().long().clamp(max=G - 1)
    frac = pos - lo
    return inner[:, lo] * (1 - frac) + inner[:, lo + 1] * frac


def _blend(xs: torch.Tensor, points: int, eps: float, margin: float) -> torch.Tensor:
    """eps * uniform(min, max) + (1 - eps) * sample quantiles of sorted samples xs (N, C): (C, points)."""
    n = xs.shape[0]
    idx = torch.linspace(0, n - 1, points, dtype=torch.float64, device=xs.device)
    lo_i, hi_i = idx.floor().long(), idx.ceil().long()
    frac = (idx - lo_i).unsqueeze(1)
    adaptive = (xs[lo_i] * (1 - frac) + xs[hi_i] * frac).T
    lo, hi = xs[0] - margin, xs[-1] + margin
    steps = torch.linspace(0, 1, points, dtype=torch.float64, device=xs.device)
    uniform = lo.unsqueeze(1) + steps * (hi - lo).clamp_min(1e-6).unsqueeze(1)
    return eps * uniform + (1 - eps) * adaptive


def data_grid(x: torch.Tensor, points: int, eps: float, margin: float = 0.0, groups=None) -> torch.Tensor:
    """Per-input grid points (in, points) following the data x (N, in), as pykan's and
    efficient-kan's ``update_grid`` do. Inputs of one group (``tie_inputs``) share the grid
    of their pooled samples."""
    xs = torch.sort(x.detach().to(torch.float64), dim=0).values
    grid = _blend(xs, points, eps, margin)
    members: dict[int, list[int]] = {}
    for p, g in enumerate(groups or ()):
        if g > 0:
            members.setdefault(g, []).append(p)
    for ids in members.values():
        pooled = torch.sort(xs[:, ids].reshape(-1, 1), dim=0).values
        grid[ids] = _blend(pooled, points, eps, margin)[0]
    return grid


class RBFKANLayer(KANLayer):
    """RBF KAN layer: phi_{q,p}(x) = w_b silu(x) + sum_i c[q,p,i] phi(|x - g_{p,i}| / h_{p,i}).

    Centres g_{p,i} are per input (the KAN paper's sum of univariate functions);
    widths h_{p,i} come from the grid spacing (times ``width_scale``).

    Args:
        num_centers: centres per input (default 8: with the base weight, 9 parameters per edge,
            as the default B-spline layer's G + k + 1).
        grid_range: (lo, hi) of the initial uniform centres (default (-1, 1)); centres include both ends.
        kernel: gaussian (default), inverse_quadratic, multiquadric, inverse_multiquadric, matern32, matern52.
        trainable_centers: learn the centres (and keep widths from their spacing at init).
        width_scale: h = width_scale * spacing (default 1).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_centers: int = 8,
        grid_range: Sequence[float] = (-1.0, 1.0),
        kernel: str = "gaussian",
        trainable_centers: bool = False,
        width_scale: float = 1.0,
        grid_eps: float = 0.02,
        **kwargs,
    ):
        if kernel not in basis_mod.KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; use one of {', '.join(basis_mod.KERNELS)}")
        if num_centers < 2:
            raise ValueError("num_centers must be at least 2")
        self.kernel = kernel
        self.num_centers = num_centers
        self.width_scale = width_scale
        self.grid_eps = grid_eps
        super().__init__(in_features, out_features, num_centers, **kwargs)
        device, dtype = self.weight.device, self.weight.dtype
        lo, hi = float(grid_range[0]), float(grid_range[1])
        centres = torch.linspace(lo, hi, num_centers, device=device, dtype=torch.float64).expand(in_features, -1)
        self.trainable_centers = trainable_centers
        if trainable_centers:
            self.centers = nn.Parameter(centres.to(dtype).clone())
        else:
            self.register_buffer("centers", centres.to(dtype).clone())
        self.register_buffer("widths", _widths_from(centres, width_scale).to(dtype))
        self.register_buffer("affine_a", torch.empty(0, device=device, dtype=dtype))
        self.register_buffer("affine_b", torch.empty(0, device=device, dtype=dtype))
        self._refresh_affine()

    @torch.no_grad()
    def _refresh_affine(self):
        if not self.trainable_centers:
            self.affine_a = (1.0 / self.widths).contiguous()
            self.affine_b = (-self.centers / self.widths).contiguous()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_affine()

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        if self.trainable_centers:
            a = 1.0 / self.widths
            return basis_mod.rbf_basis(x, a, -self.centers * a, self.kernel)
        return basis_mod.rbf_basis(x, self.affine_a, self.affine_b, self.kernel)

    def grid_range(self):
        return self.centers[:, 0].detach(), self.centers[:, -1].detach()

    @torch.no_grad()
    def _set_centers(self, centres: torch.Tensor):
        centres = centres.to(self.weight.dtype)
        if self.trainable_centers:
            self.centers.copy_(centres) if self.centers.shape == centres.shape else setattr(
                self, "centers", nn.Parameter(centres.clone())
            )
        else:
            self.centers = centres.clone()
        self.widths = _widths_from(centres.to(torch.float64), self.width_scale).to(self.weight.dtype)
        self._refresh_affine()

    def _copy_input_grid(self, src: int, dst: int):
        c = self.centers.detach().clone()
        c[dst] = c[src]
        self._set_centers(c)

    def _empty_like(self, in_features: int, out_features: int) -> "RBFKANLayer":
        return RBFKANLayer(
            in_features, out_features, self.num_centers, kernel=self.kernel,
            trainable_centers=self.trainable_centers, width_scale=self.width_scale, grid_eps=self.grid_eps,
            bias=self.bias is not None, base_activation=self.base_activation,
            standalone_scale=self.spline_scale is not None, l1_metric=self.l1_metric,
            device=self.weight.device, dtype=self.weight.dtype,
        )

    def _copy_grid_to(self, new: "RBFKANLayer", in_ids: torch.Tensor):
        new._set_centers(self.centers.detach()[in_ids].clone())
        new.widths = self.widths[in_ids].clone()
        new._refresh_affine()

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: Optional[float] = None, margin: float = 0.0):
        """Move the centres to the data (uniform/quantile blend), refit the coefficients."""
        eps = self.grid_eps if grid_eps is None else grid_eps
        old = self._spline_values(x)
        m = self.num_centers
        centres = data_grid(x, m, eps, margin, getattr(self, "input_groups", None))
        # keep centres strictly increasing so widths stay positive
        centres = torch.maximum(centres, torch.cummax(centres, dim=1).values)
        gaps = torch.diff(centres, dim=1)
        floor = 1e-3 * (centres[:, -1:] - centres[:, :1]).clamp_min(1e-6) / m
        centres = torch.cat([centres[:, :1], centres[:, :1] + torch.cumsum(torch.maximum(gaps, floor), dim=1)], dim=1)
        self._set_centers(centres)
        self._refit(x, old)

    @torch.no_grad()
    def extend_grid(self, new_num_centers: int, x: Optional[torch.Tensor] = None, samples: int = 0):
        """Use ``new_num_centers`` centres, refitting the functions (least squares) on points spread
        over the centres' range and on ``x`` when given. The centres span the old range, widened to
        cover ``x``: narrower kernels have shorter tails, so data beyond the outer centres could
        not be fitted otherwise."""
        if new_num_centers < 2:
            raise ValueError("new_num_centers must be at least 2")
        n = samples or max(8 * new_num_centers, 128)
        xs = _fit_points(self, n, x)
        old = self._spline_values(xs)
        lo, hi = _covering_range(self, x)
        w = self.weight.detach()
        self.num_centers = self.n_basis = new_num_centers
        weight = torch.empty(self.out_features, self.in_features, new_num_centers + 1, device=w.device, dtype=w.dtype)
        weight[..., -1] = w[..., -1]
        self.weight = nn.Parameter(weight)
        t = torch.linspace(0, 1, new_num_centers, dtype=torch.float64, device=w.device)
        centres = lo.to(torch.float64).unsqueeze(1) + t * (hi - lo).to(torch.float64).unsqueeze(1)
        if self.trainable_centers:
            self.centers = nn.Parameter(centres.to(w.dtype))
        self._set_centers(centres)
        self._refit(xs, old, ridge=1e-10)


def _widths_from(centres: torch.Tensor, scale: float) -> torch.Tensor:
    """h_{p,i}: the mean distance to the neighbouring centres (the spacing, on a uniform grid)."""
    gaps = torch.diff(centres, dim=1)
    left = torch.cat([gaps[:, :1], gaps], dim=1)
    right = torch.cat([gaps, gaps[:, -1:]], dim=1)
    return ((left + right) / 2 * scale).clamp_min(1e-6)
