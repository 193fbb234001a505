"""Per-edge statistics and the KAN paper's L1 + entropy regularization.

The KAN paper (Liu et al. 2024, section 2.5.1) defines the L1 norm of an
activation function as its mean magnitude over the N inputs of a batch,

    ``|phi|_1 = (1/N) sum_s |phi(x_s)|``,

the L1 norm of a layer as the sum over its edges, ``|Phi|_1 = sum_{q,p} |phi_{q,p}|_1``,
and its entropy as ``S(Phi) = - sum_{q,p} (|phi_{q,p}|_1 / |Phi|_1) log(|phi_{q,p}|_1 / |Phi|_1)``.
The training objective adds  ``mu_1 * sum_l |Phi_l|_1 + mu_2 * sum_l S(Phi_l)``.

Metrics for ``|phi_{q,p}|`` (``l1_metric``):

``mean_abs`` (default) -- exactly the paper's ``(1/N) sum_s |phi_{q,p}(x_sp)|``, on the
  whole edge function (base + spline), not normalized. Computed without the
  (batch, out, in) tensor of edge values living at once: inputs are processed
  in chunks, and for each chunk the forward also forms
  G[q,p,:] = (1/N) sum_s sign(phi_{q,p}(x_sp)) F[s,p,:], the exact (sub)gradient
  with respect to that edge's weights. Since ``|phi| = sign(phi) * phi`` and phi is
  linear in the weights, the statistic itself is sum_j w[q,p,j] G[q,p,j]; the
  backward is then a product with G (and a chunked recomputation of the signs
  only when the layer's input needs a gradient, i.e. not for the first layer).

``std`` -- pykan 0.2's ``edge_forward_spline_n``: std_s(phi_{q,p}) / (std_s(x_p) + 0.1),
  pykan's normalization by the input's spread. Exact and cheap here: the
  variance of a linear function of the features is the quadratic form
  w^T Cov(F_p) w, so only an (in, n+1, n+1) covariance per layer is formed.

``coef`` -- efficient-kan's *approximation*: the mean ``|c|`` of each edge's spline
  coefficients, no data involved. Cheapest, but not the paper's L1.

The entropy follows the paper (over all edges of a layer); pykan 0.2's code
uses row and column entropies instead.
"""

from __future__ import annotations

from typing import Optional

import torch

METRICS = ("mean_abs", "std", "coef")

#: elements of the (chunk, batch, out) edge-value block held at once by ``mean_abs``
#: (4M floats; blocks of 3.2M-6.4M were fastest among 1.6M..25.6M on 2 CPU threads at
#: [1000,1000,1], batch 100)
CHUNK_ELEMENTS = 1 << 22


def _chunks(total: int, per_item: int):
    step = max(1, CHUNK_ELEMENTS // max(per_item, 1))
    for start in range(0, total, step):
        yield start, min(total, start + step)


class EdgeMeanAbs(torch.autograd.Function):
    """``L[q,p] = (1/N) sum_s |sum_j F[s,p,j] W[q,p,j]|`` without materializing (N, out, in) at once.

    Works on input-major copies, F_t (in, N, J) and W_t (in, J, out), so that every chunk of
    inputs is two contiguous batched matmuls: Phi = F_t W_t (signs taken in place) and
    G = F_t^T sign(Phi) / N, the exact gradient of L with respect to W (L = sum_j W G).
    """

    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n = feats.shape[0]
        out_f = weight.shape[0]
        f_t = feats.transpose(0, 1).contiguous()  # (P, N, J)
        w_t = weight.permute(1, 2, 0).contiguous()  # (P, J, Q)
        g_t = torch.empty_like(w_t)
        for a, b in _chunks(f_t.shape[0], n * out_f):
            signs = torch.bmm(f_t[a:b], w_t[a:b]).sign_()  # (P', N, Q)
            torch.bmm(f_t[a:b].transpose(1, 2), signs, out=g_t[a:b])
        g_t.div_(n)
        stat = torch.linalg.vecdot(w_t, g_t, dim=1).T  # (Q, P)
        ctx.save_for_backward(f_t, w_t, g_t)
        return stat

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        f_t, w_t, g_t = ctx.saved_tensors
        g_weight = None
        if ctx.needs_input_grad[1]:
            g_weight = (g_t * grad_out.T.unsqueeze(1)).permute(2, 0, 1)  # (Q, P, J)
        g_feats = None
        if ctx.needs_input_grad[0]:
            n = f_t.shape[1]
            out_f = w_t.shape[2]
            g_ft = torch.empty_like(f_t)
            scale = grad_out.T.unsqueeze(1) / n  # (P, 1, Q)
            for a, b in _chunks(f_t.shape[0], n * out_f):
                signs = torch.bmm(f_t[a:b], w_t[a:b]).sign_().mul_(scale[a:b])
                torch.bmm(signs, w_t[a:b].transpose(1, 2), out=g_ft[a:b])
            g_feats = g_ft.transpose(0, 1)
        return g_feats, g_weight


def mean_abs(feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return EdgeMeanAbs.apply(feats, weight)


class EdgeQuadraticForm(torch.autograd.Function):
    """var[q,p] = w_qp^T C_p w_qp for weight (out, in, J) and per-input matrices C (in, J, J),
    with the gradients 2 C w and sum_q g w w^T written out (autograd's version makes several
    strided passes over the weight-sized tensors)."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        w_t = weight.transpose(0, 1).contiguous()  # (in, out, J)
        wc = torch.bmm(w_t, cov)  # (in, out, J)
        ctx.save_for_backward(w_t, wc)
        return torch.linalg.vecdot(wc, w_t).T

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        w_t, wc = ctx.saved_tensors
        g = grad_out.T.unsqueeze(-1)  # (in, out, 1)
        g_weight = (wc * (2 * g)).transpose(0, 1) if ctx.needs_input_grad[0] else None
        g_cov = torch.bmm((w_t * g).transpose(1, 2), w_t) if ctx.needs_input_grad[1] else None
        return g_weight, g_cov


def std_ratio(x: torch.Tensor, feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    n = feats.shape[0]
    centered = feats - feats.mean(0, keepdim=True)
    cov = torch.bmm(centered.permute(1, 2, 0), centered.permute(1, 0, 2)) / max(n - 1, 1)  # (in, J, J)
    std = EdgeQuadraticForm.apply(weight, cov).clamp_min(1e-30).sqrt()  # sqrt(w^T Cov w): (out, in)
    return std / (x.std(0) + 0.1).unsqueeze(0)


class CoefL1(torch.autograd.Function):
    """Mean ``|c|`` over each edge's basis coefficients (the base weight, stored last, excluded).

    Hand-written because autograd's version walks the (out, in, n+1) weight five times
    (abs, select, sum, and zeros + sign in the backward); this one twice each way.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor) -> torch.Tensor:
        j = weight.shape[-1]
        pick = torch.ones(j, dtype=weight.dtype, device=weight.device)
        pick[-1] = 0.0
        ctx.save_for_backward(weight)
        return torch.matmul(weight.abs(), pick).div_(j - 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        (weight,) = ctx.saved_tensors
        grad = torch.sign(weight).mul_(grad_out.unsqueeze(-1) / (weight.shape[-1] - 1))
        grad[..., -1] = 0.0
        return grad


def coef_l1(weight: torch.Tensor) -> torch.Tensor:
    return CoefL1.apply(weight)


def edge_statistics(
    x: torch.Tensor, feats: torch.Tensor, weight: torch.Tensor, metric: str = "mean_abs", sample: Optional[int] = None
) -> dict:
    """Per-edge ``|phi_{q,p}|`` (out, in) by ``metric``; differentiable. ``sample`` uses only that many
    rows of the batch (an estimate of the same expectation, at a fraction of the cost)."""
    if sample is not None and sample < x.shape[0]:
        idx = torch.randperm(x.shape[0], device=x.device)[:sample]
        x, feats = x[idx], feats[idx]
    if metric == "mean_abs":
        l1 = mean_abs(feats, weight)
    elif metric == "std":
        l1 = std_ratio(x, feats, weight)
    elif metric == "coef":
        l1 = coef_l1(weight)
    else:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    return {"l1": l1, "metric": metric, "x_min": x.detach().amin(0), "x_max": x.detach().amax(0)}


def entropy(l1: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The paper's layer entropy ``S = -sum p log p``, ``p = |phi|_1 / |Phi|_1`` over all edges."""
    p = l1 / (l1.sum() + eps)
    return -(p * torch.log(p + eps)).sum()


def layer_penalty(l1: torch.Tensor, lam_l1: float, lam_entropy: float) -> torch.Tensor:
    return lam_l1 * l1.sum() + lam_entropy * entropy(l1)
