"""Per-edge statistics and the KAN paper's L1 + entropy regularization.

The KAN paper (Liu et al. 2024, section 2.5.1) defines the L1 norm of an
activation function as its mean magnitude over the N inputs of a batch,

    |phi|_1 = (1/N) sum_s |phi(x_s)|,

the L1 norm of a layer as the sum over its edges, |Phi|_1 = sum_{q,p} |phi_{q,p}|_1,
and its entropy as S(Phi) = - sum_{q,p} (|phi_{q,p}|_1 / |Phi|_1) log(|phi_{q,p}|_1 / |Phi|_1).
The training objective adds  mu_1 * sum_l |Phi_l|_1 + mu_2 * sum_l S(Phi_l).

Metrics for |phi_{q,p}| (``l1_metric``):

``mean_abs`` (default) -- exactly the paper's (1/N) sum_s |phi_{q,p}(x_sp)|, on the
  whole edge function (base + spline), not normalized. Computed without the
  (batch, out, in) tensor of edge values living at once: inputs are processed
  in chunks, and for each chunk the forward also forms
  G[q,p,:] = (1/N) sum_s sign(phi_{q,p}(x_sp)) F[s,p,:], the exact (sub)gradient
  with respect to that edge's weights. Since |phi| = sign(phi) * phi and phi is
  linear in the weights, the statistic itself is sum_j w[q,p,j] G[q,p,j]; the
  backward is then a product with G (and a chunked recomputation of the signs
  only when the layer's input needs a gradient, i.e. not for the first layer).

``std`` -- pykan 0.2's ``edge_forward_spline_n``: std_s(phi_{q,p}) / (std_s(x_p) + 0.1),
  pykan's normalization by the input's spread. Exact and cheap here: the
  variance of a linear function of the features is the quadratic form
  w^T Cov(F_p) w, so only an (in, n+1, n+1) covariance per layer is formed.

``coef`` -- efficient-kan's *approximation*: the mean |c| of each edge's spline
  coefficients, no data involved. Cheapest, but not the paper's L1.

The entropy follows the paper (over all edges of a layer); pykan 0.2's code
uses row and column entropies instead.
"""

from __future__ import annotations

from typing import Optional

import torch

METRICS = ("mean_abs", "std", "coef")

#: elements of the (chunk, batch, out) edge-value block held at once by ``mean_abs``
CHUNK_ELEMENTS = 1 << 23


def _chunks(total: int, per_item: int):
    step = max(1, CHUNK_ELEMENTS // max(per_item, 1))
    for start in range(0, total, step):
        yield start, min(total, start + step)


class EdgeMeanAbs(torch.autograd.Function):
    """L[q,p] = (1/N) sum_s |sum_j F[s,p,j] W[q,p,j]| without materializing (N, out, in) at once."""

    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        n, in_f, _ = feats.shape
        out_f = weight.shape[0]
        grad_w = torch.empty_like(weight)  # G, (out, in, J)
        for a, b in _chunks(in_f, n * out_f):
            f = feats[:, a:b].permute(1, 0, 2)  # (P, N, J)
            w = weight[:, a:b].permute(1, 2, 0)  # (P, J, Q)
            signs = torch.bmm(f, w).sign_()  # (P, N, Q)
            grad_w[:, a:b] = torch.bmm(f.transpose(1, 2), signs).permute(2, 0, 1).div_(n)
        stat = (weight * grad_w).sum(-1)
        ctx.save_for_backward(feats, weight, grad_w)
        return stat

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        feats, weight, grad_w = ctx.saved_tensors
        g_weight = grad_out.unsqueeze(-1) * grad_w if ctx.needs_input_grad[1] else None
        g_feats = None
        if ctx.needs_input_grad[0]:
            n, in_f, _ = feats.shape
            out_f = weight.shape[0]
            g_feats = torch.empty_like(feats)
            for a, b in _chunks(in_f, n * out_f):
                f = feats[:, a:b].permute(1, 0, 2)
                w = weight[:, a:b].permute(1, 2, 0)
                signs = torch.bmm(f, w).sign_()  # (P, N, Q)
                signs.mul_(grad_out[:, a:b].T.unsqueeze(1))
                g_feats[:, a:b] = torch.bmm(signs, w.transpose(1, 2)).permute(1, 0, 2).div_(n)
        return g_feats, g_weight


def mean_abs(feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return EdgeMeanAbs.apply(feats, weight)


def std_ratio(x: torch.Tensor, feats: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    n = feats.shape[0]
    centred = feats - feats.mean(0, keepdim=True)
    cov = torch.bmm(centred.permute(1, 2, 0), centred.permute(1, 0, 2)) / max(n - 1, 1)  # (in, J, J)
    var = torch.einsum("qpi,pij,qpj->qp", weight, cov, weight)
    std = var.clamp_min(1e-30).sqrt()
    return std / (x.std(0) + 0.1).unsqueeze(0)


def edge_statistics(
    x: torch.Tensor, feats: torch.Tensor, weight: torch.Tensor, metric: str = "mean_abs", sample: Optional[int] = None
) -> dict:
    """Per-edge |phi_{q,p}| (out, in) by ``metric``; differentiable. ``sample`` uses only that many
    rows of the batch (an estimate of the same expectation, at a fraction of the cost)."""
    if sample is not None and sample < x.shape[0]:
        idx = torch.randperm(x.shape[0], device=x.device)[:sample]
        x, feats = x[idx], feats[idx]
    if metric == "mean_abs":
        l1 = mean_abs(feats, weight)
    elif metric == "std":
        l1 = std_ratio(x, feats, weight)
    elif metric == "coef":
        l1 = weight[..., :-1].abs().mean(-1)
    else:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    return {"l1": l1, "metric": metric, "x_min": x.detach().amin(0), "x_max": x.detach().amax(0)}


def entropy(l1: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The paper's layer entropy S = -sum p log p, p = |phi|_1 / |Phi|_1 over all edges."""
    p = l1 / (l1.sum() + eps)
    return -(p * torch.log(p + eps)).sum()


def layer_penalty(l1: torch.Tensor, lam_l1: float, lam_entropy: float) -> torch.Tensor:
    return lam_l1 * l1.sum() + lam_entropy * entropy(l1)
