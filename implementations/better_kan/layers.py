"""KAN layers: the machinery shared by the B-spline and RBF layers, one matmul per layer.

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

from . import native, reference
from . import regularization as reg
from .reference import BASE_ACTIVATIONS


class KANLayer(nn.Module):
    """Common machinery; subclasses define :meth:`~KANLayer.basis` and their grids."""

    n_basis: int
    #: take the native operator (:mod:`better_kan.native`: C++ on the CPU, Triton on CUDA) where it has a
    #: kernel for the input's device and dtype: one operator forward and one backward per layer
    use_native: bool = True
    #: attribute assignments to any KAN layer so far (parameters, buffers, grids, flags, locks, masks):
    #: a network's cached native-operator arguments (:meth:`better_kan.KAN.forward`) are rebuilt when it moves
    changes: int = 0

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        KANLayer.changes += 1

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

    def native_basis(self) -> Optional[tuple[torch.Tensor, torch.Tensor, str, int]]:
        """(a, b, basis name, order) for :func:`better_kan.native.kan_linear`, or None."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, in) -> (batch, out): one ``F.linear`` of the (batch, in * (n_basis + 1)) features."""
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects input (batch, {self.in_features}), got {tuple(x.shape)}")
        if self.use_native and self._tracking is None and x.dtype == self.weight.dtype:
            args = self.native_basis()
            if args is not None and native.supports(x, self.base_activation, args[2]):
                if reference.functorch_active():  # torch.func cannot run a C++ autograd node: the plain ops can
                    return reference.kan_linear(x, self.effective_weight(), self.bias, *args, self.base_activation)
                return native.OP(x, self.effective_weight(), self.bias, *args, self.base_activation)
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
        # a mask on the meta device has no values: apply it (shapes stay right)
        self._masked = self.edge_mask.is_meta or bool((self.edge_mask != 1).any())

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
            saved = state_dict[key]  # its shape; this module's device (values are copied in, converted)
            self.lock_index = torch.empty(saved.shape, dtype=torch.long, device=self.weight.device)
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
        index = (
            self.lock_index.clone()
            if self.lock_index is not None
            else torch.arange(self.out_features * self.in_features, device=self.weight.device)
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

    def _empty_like(self, in_features: int, out_features: int) -> "KANLayer":
        """A fresh layer of this type and options with other widths (for :meth:`subset`)."""
        return type(self)(
            in_features,
            out_features,
            **self._basis_options(),
            bias=self.bias is not None,
            base_activation=self.base_activation,
            standalone_scale=self.spline_scale is not None,
            l1_metric=self.l1_metric,
            device=self.weight.device,
            dtype=self.weight.dtype,
        )

    def _basis_options(self) -> dict:  # pragma: no cover - per subclass
        """The subclass's constructor arguments that describe its basis."""
        raise NotImplementedError

    def _resize_basis(self, n_basis: int) -> None:
        """A new (uninitialized) weight for ``n_basis`` basis functions per edge, keeping the base weights."""
        w = self.weight.detach()
        self.n_basis = n_basis
        weight = torch.empty(self.out_features, self.in_features, n_basis + 1, device=w.device, dtype=w.dtype)
        weight[..., -1] = w[..., -1]
        self.weight = nn.Parameter(weight)

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
        A = self.basis(x_fit.to(self.weight.dtype)).permute(1, 0, 2).to(torch.float64)  # (in, N, n)
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
        return torch.einsum("spi,qpi->sqp", self.basis(x.to(w.dtype)), w[..., :-1])

    def extra_repr(self) -> str:
        parts = [f"in_features={self.in_features}", f"out_features={self.out_features}", f"n_basis={self.n_basis}"]
        if self.spline_scale is not None:
            parts.append("standalone_scale=True")
        if self.bias is None:
            parts.append("bias=False")
        return ", ".join(parts)
