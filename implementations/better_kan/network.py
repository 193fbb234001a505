"""The KAN container: a stack of KAN layers (B-spline, RBF or mixed) with pykan's tools.

model = build_spline_kan([2, 5, 1])                  # or build_rbf_kan, build_kan(..., layers=[...])
y = model(x)                                         # fast path, no per-edge work
with model.tracking():                               # per-edge statistics recorded
    y = model(x)
loss = mse(y, t) + 1e-3 * model.regularization_loss(l1=1.0, entropy=2.0)
model.update_grid(x)                                 # grid follows the data, functions kept
model.extend_grid(10)                                # finer grid, functions kept
small = model.prune(threshold=1e-2, x=x)             # smaller network, same outputs on kept nodes
model.lock(0, [(0, 0), (1, 0)])                      # edges share one function
model.plot("kan.png", x=x)                           # every edge's activation
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Optional, Sequence, Union

import torch
from torch import nn

from . import native, reference
from . import regularization as reg
from .layers import KANLayer
from .rbf_layer import RBFKANLayer
from .spline_layer import SplineKANLayer

LAYER_TYPES = {"spline": SplineKANLayer, "rbf": RBFKANLayer}

_SPLINE_ONLY = {"grid_size", "spline_order"}
_RBF_ONLY = {"num_centers", "kernel", "trainable_centers", "width_scale"}


class KAN(nn.Module):
    """A stack of KAN layers: x (batch, widths[0]) -> (batch, widths[-1]).

    Any mix of :class:`SplineKANLayer` and :class:`RBFKANLayer` whose widths chain.
    Besides the forward it carries pykan's tools, each applied layer by layer:
    per-edge statistics inside :meth:`tracking` and the L1 + entropy
    :meth:`regularization_loss`, :meth:`update_grid` and :meth:`extend_grid`
    (the learned functions are kept by a least-squares refit), :meth:`prune`,
    edge locks, input masks and :meth:`plot`. Build one with :func:`build_kan`,
    :func:`build_spline_kan` or :func:`build_rbf_kan`.
    """

    def __init__(self, layers: Sequence[KANLayer]):
        super().__init__()
        if not layers:
            raise ValueError("a KAN needs at least one layer")
        for a, b in zip(layers[:-1], layers[1:]):
            if a.out_features != b.in_features:
                raise ValueError(f"layer widths do not chain: {a.out_features} -> {b.in_features}")
        self.layers = nn.ModuleList(layers)

    @property
    def widths(self) -> list[int]:
        return [self.layers[0].in_features] + [l.out_features for l in self.layers]

    #: run the whole network as one native operator (``better_kan::kan_network``) when every layer can
    fused: bool = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, widths[0]) -> (batch, widths[-1]): one native operator for the whole network
        (:meth:`network_arguments`) when every layer can take its native path, else layer by layer."""
        if self.fused and native.NETWORK_OP is not None:
            args = self._cached_arguments(x)
            if args is not None:
                return native.NETWORK_OP(x, *args)
        for layer in self.layers:
            x = layer(x)
        return x

    def _cached_arguments(self, x: torch.Tensor) -> Optional[tuple]:
        """:meth:`network_arguments`, kept between calls while nothing they depend on moved: no KAN
        layer had an attribute assigned (:attr:`KANLayer.changes`), the layers and the input's and
        weights' dtype and device are the same, and every tensor in them is a layer's own parameter or
        buffer (so in-place updates, an optimizer's included, are seen). Not while torch.jit traces
        (each trace records its own lookups) or inside torch.func (which takes the layers one by one)."""
        if torch.jit.is_tracing() or reference.functorch_active():
            return self.network_arguments(x)  # None under torch.func
        first = self.layers[0].weight
        key = (
            KANLayer.changes,
            tuple(map(id, self.layers)),
            x.dtype,
            x.device,
            x.dim() == 2 and x.shape[1],
            first.dtype,
            first.device,
        )
        cached = self.__dict__.get("_native_arguments")
        if cached is not None and cached[0] == key:
            return cached[1]
        args = self.network_arguments(x)
        if args is not None and all(_owned(layer, args, i) for i, layer in enumerate(self.layers)):
            self.__dict__["_native_arguments"] = (key, args)
        else:
            self.__dict__.pop("_native_arguments", None)
        return args

    def network_arguments(self, x: torch.Tensor) -> Optional[tuple]:
        """The native network operator's arguments after ``x`` (weights, biases, a, b, bases, orders,
        base activations), or None when a layer cannot run natively on ``x`` (a dtype or device without
        a kernel, statistics being tracked, a torch.func transform, an input of the wrong shape: the
        layers then run one by one and say so themselves)."""
        if x.dim() != 2 or x.shape[1] != self.layers[0].in_features or reference.functorch_active():
            return None
        weights, biases, a, b, bases, orders, base = [], [], [], [], [], [], []
        for layer in self.layers:
            if not layer.use_native or layer._tracking is not None or layer.weight.dtype != x.dtype:
                return None
            tables = layer.native_basis()
            if tables is None or not native.supports(x, layer.base_activation, tables[2]):
                return None
            weights.append(layer.effective_weight())
            biases.append(layer.bias if layer.bias is not None else x.new_empty(0))
            a.append(tables[0])
            b.append(tables[1])
            bases.append(tables[2])
            orders.append(tables[3])
            base.append(layer.base_activation)
        return weights, biases, a, b, ",".join(bases), orders, ",".join(base)

    def compiled(self, dynamic: bool = True, **options):
        """This network under ``torch.compile`` (opt-in): the module returned shares the
        parameters. ``dynamic=True`` compiles for a symbolic batch size, so a new batch size
        reuses the compiled code instead of compiling again. The first call compiles (on a
        2-core CPU, ~15-20 s at [2,150,1]; ``kanbench run --compile`` records it as
        ``first_step_s``); grids, masks and locks changed afterwards recompile on the next call."""
        return torch.compile(self, dynamic=dynamic, **options)

    # ------------------------------------------------------------------ regularization

    @contextlib.contextmanager
    def tracking(self, metric: Optional[str] = None, sample: Optional[int] = None):
        """Inside the block every forward records per-edge statistics (see :mod:`.regularization`)."""
        with contextlib.ExitStack() as stack:
            for layer in self.layers:
                stack.enter_context(layer.tracking(metric, sample))
            yield self

    def regularization_loss(
        self, l1: float = 1.0, entropy: float = 2.0, coef: float = 0.0, coefdiff: float = 0.0
    ) -> torch.Tensor:
        """``sum_l [l1 * |Phi_l|_1 + entropy * S(Phi_l)]`` from the last forward run inside :meth:`tracking`,
        plus pykan's optional coefficient penalties (mean ``|c|`` and mean ``|c_{i+1} - c_i|`` per edge)."""
        total = None
        for i, layer in enumerate(self.layers):
            if layer.stats is None:
                raise RuntimeError("no per-edge statistics yet: run the forward inside `with model.tracking():` first")
            term = reg.layer_penalty(layer.stats["l1"], l1, entropy)
            if coef:
                term = term + coef * layer.coef.abs().mean(-1).sum()
            if coefdiff:
                term = term + coefdiff * layer.coef.diff(dim=-1).abs().mean(-1).sum()
            total = term if total is None else total + term
        return total

    def forward_with_regularization(self, x, l1: float = 1.0, entropy: float = 2.0, metric: Optional[str] = None):
        """(output, regularization) in one forward."""
        with self.tracking(metric):
            y = self(x)
        return y, self.regularization_loss(l1, entropy)

    @torch.no_grad()
    def edge_scores(self, x: torch.Tensor, metric: Optional[str] = None) -> list[torch.Tensor]:
        """``|phi_{q,p}|_1`` of every edge on data x, per layer (out, in)."""
        with self.tracking(metric):
            self(x)
        return [layer.stats["l1"].detach() for layer in self.layers]

    # ------------------------------------------------------------------ grids

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: Optional[float] = None):
        """Refit every layer's grid to the activations that reach it, preserving the functions."""
        x = x.to(self.layers[0].weight.dtype)  # data in another dtype is read in the model's
        for layer in self.layers:
            layer.update_grid(x, grid_eps)
            x = layer(x)

    @torch.no_grad()
    def extend_grid(self, new_size: int, x: Optional[torch.Tensor] = None):
        """Finer grids everywhere (grid intervals for spline layers, centers for RBF layers), the
        functions refitted on each layer's grid range and, when ``x`` is given, on the activations
        that reach it (as pykan's ``refine`` does). Parameters are replaced: build the optimizer
        again afterwards."""
        inputs = []
        if x is not None:
            with torch.no_grad():
                h = x.to(self.layers[0].weight.dtype)
                for layer in self.layers:
                    inputs.append(h)
                    h = layer(h)
        for i, layer in enumerate(self.layers):
            layer.extend_grid(new_size, x=inputs[i] if inputs else None)

    # ------------------------------------------------------------------ pruning

    @torch.no_grad()
    def node_scores(self, x: torch.Tensor) -> list[torch.Tensor]:
        """pykan's hidden-node importance: min(max incoming, max outgoing) edge score, per hidden layer."""
        scores = self.edge_scores(x)
        out = []
        for l in range(len(self.layers) - 1):
            incoming = scores[l].amax(dim=1)  # (out_l,)
            outgoing = scores[l + 1].amax(dim=0)  # (in_{l+1},)
            out.append(torch.minimum(incoming, outgoing))
        return out

    @torch.no_grad()
    def prune(self, threshold: float = 1e-2, x: Optional[torch.Tensor] = None, edges: bool = True) -> "KAN":
        """A smaller KAN without the hidden nodes whose importance (on ``x``) is below
        ``threshold``; with ``edges``, edges scoring below it are masked too. The result
        computes exactly what this network computes with those nodes and edges removed."""
        if x is None:
            raise ValueError("prune needs data x to score nodes and edges (pykan scores on the training inputs)")
        node_scores = self.node_scores(x)
        keep = [list(range(self.widths[0]))]
        for s in node_scores:
            ids = torch.nonzero(s >= threshold).flatten().tolist()
            keep.append(ids)
        keep.append(list(range(self.widths[-1])))
        edge_scores = self.edge_scores(x) if edges else None
        new_layers = []
        for l, layer in enumerate(self.layers):
            sub = layer.subset(keep[l], keep[l + 1])
            mask = layer.edge_mask[keep[l + 1]][:, keep[l]].clone()
            if edges:
                s = edge_scores[l][keep[l + 1]][:, keep[l]]
                mask = mask * (s >= threshold).to(mask.dtype)
            sub.set_edge_mask(mask)
            new_layers.append(sub)
        pruned = KAN(new_layers)
        pruned.kept_nodes = keep
        return pruned

    @torch.no_grad()
    def mask_nodes(self, keep: Sequence[Sequence[int]]):
        """Remove (mask) the hidden nodes not listed in ``keep`` (as returned in ``prune(...).kept_nodes``)
        in place: their incoming and outgoing edges are zeroed."""
        for l in range(1, len(self.layers)):
            kept = set(keep[l])
            dropped = [i for i in range(self.widths[l]) if i not in kept]
            if dropped:
                m = self.layers[l - 1].edge_mask.clone()
                m[dropped, :] = 0
                self.layers[l - 1].set_edge_mask(m)
                m = self.layers[l].edge_mask.clone()
                m[:, dropped] = 0
                self.layers[l].set_edge_mask(m)

    # ------------------------------------------------------------------ locks and input masks

    def lock(self, layer: int, edges: Iterable[Sequence[int]]):
        """Tie edges [(out, in), ...] of ``layer`` to one activation function (pykan's lock)."""
        self.layers[layer].lock(edges)

    def unlock(self, layer: int, edges: Optional[Iterable[Sequence[int]]] = None):
        self.layers[layer].unlock(edges)

    def tie_inputs(self, groups: Sequence[int]):
        """Permutation-invariant inputs (the seed's ``invariant_input``): ``groups[p]`` is 0
        (independent), -1 (discarded) or a group id > 0; inputs of one group share functions."""
        self.layers[0].tie_inputs(groups)

    # ------------------------------------------------------------------ plots

    def plot(self, path, x: Optional[torch.Tensor] = None, **kwargs):
        """Every edge's activation, drawn into ``path`` by :func:`better_kan.plot.plot_kan`."""
        from .plot import plot_kan

        return plot_kan(self, path, x=x, **kwargs)


def _layer_kwargs(kind: str, kwargs: dict) -> dict:
    drop = _RBF_ONLY if kind == "spline" else _SPLINE_ONLY
    out = {k: v for k, v in kwargs.items() if k not in drop}
    if kind == "rbf" and "grid_size" in kwargs and "num_centers" not in kwargs:
        # an RBF layer with the B-spline layer's parameter count: G + k centers
        out["num_centers"] = kwargs["grid_size"] + kwargs.get("spline_order", 3)
    return out


def _owned(layer: KANLayer, args: tuple, i: int) -> bool:
    """True when layer ``i``'s weight, bias and basis tables in ``args`` are its own parameters or
    buffers, not tensors computed from them (locks, masks, a standalone scale, trainable RBF
    centers compute theirs on every call)."""
    own = {id(t) for t in layer.parameters()} | {id(t) for t in layer.buffers()}
    weights, biases, a, b = args[:4]
    return all(t.numel() == 0 or id(t) in own for t in (weights[i], biases[i], a[i], b[i]))


def build_kan(widths: Sequence[int], layers: Union[str, Sequence[str]] = "spline", device=None, dtype=None, **kwargs) -> KAN:
    """A KAN of widths [in, h1, ..., out]; ``layers`` is 'spline', 'rbf' or one kind per layer."""
    widths = list(widths)
    if len(widths) < 2:
        raise ValueError("widths needs at least [in, out]")
    kinds = [layers] * (len(widths) - 1) if isinstance(layers, str) else list(layers)
    if len(kinds) != len(widths) - 1:
        raise ValueError(f"need {len(widths) - 1} layer kinds, got {len(kinds)}")
    built = []
    for kind, a, b in zip(kinds, widths[:-1], widths[1:]):
        if kind not in LAYER_TYPES:
            raise ValueError(f"unknown layer kind {kind!r}; use one of {', '.join(LAYER_TYPES)}")
        built.append(LAYER_TYPES[kind](a, b, device=device, dtype=dtype, **_layer_kwargs(kind, kwargs)))
    return KAN(built)


def build_spline_kan(widths: Sequence[int], **kwargs) -> KAN:
    return build_kan(widths, "spline", **kwargs)


def build_rbf_kan(widths: Sequence[int], **kwargs) -> KAN:
    return build_kan(widths, "rbf", **kwargs)
