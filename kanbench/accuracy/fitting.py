"""Full-batch least-squares fits of a model's trainable parameters: pykan's LBFGS and Levenberg-Marquardt.

Both minimise the mean squared error of ``model(x)`` (x (N, d)) against y (N, 1) over every
parameter that requires a gradient. :func:`lbfgs` is the KAN paper's optimizer (history 10, strong
Wolfe line search). :func:`levenberg_marquardt` takes the damped Gauss-Newton step on the model's
(N, P) Jacobian (:func:`jacobian`, per-sample gradients), which solves a fit whose optimum LBFGS
only approaches: used by :mod:`kanbench.accuracy.grid_scaling` after LBFGS at each grid.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def lbfgs(model, x, y, steps: int) -> None:
    """pykan's LBFGS (history 10, strong Wolfe, tolerances 1e-32), ``steps`` iterations, full batch."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params, lr=1.0, history_size=10, line_search_fn="strong_wolfe", tolerance_grad=1e-32, tolerance_change=1e-32
    )

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        return loss

    for _ in range(steps):
        loss = float(opt.step(closure).detach())
        if not math.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss}")


def jacobian(model, x) -> "torch.Tensor":
    """(N, P): the derivative of each of the N outputs of ``model(x)`` (x (N, d), one output per
    sample) by each trainable parameter, in ``model.parameters()`` order. Per-sample gradients under
    ``torch.func`` (vmap of grad, memory N x P); a model that torch.func cannot run gets one
    backward pass per output instead."""
    import torch

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    try:
        values = {n: p.detach() for n, p in named}

        def one(values, xi):
            return torch.func.functional_call(model, values, (xi.unsqueeze(0),)).reshape(())

        per = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0))(values, x)
        return torch.cat([per[n].reshape(x.shape[0], -1) for n, _ in named], 1)
    except Exception:  # noqa: BLE001 - a model outside torch.func's reach: the plain loop below
        out = model(x).reshape(-1)
        rows = []
        for i in range(out.shape[0]):
            grads = torch.autograd.grad(out[i], params, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]))
        return torch.stack(rows)


def levenberg_marquardt(model, x, y, steps: int, damping: float = 1e-3) -> float:
    """Levenberg-Marquardt on the mean squared error of ``model(x)`` (x (N, d)) against y (N, 1):
    ``steps`` accepted-or-not iterations of the damped Gauss-Newton step with Marquardt's scaling,
    (J^T J + lambda diag(J^T J)) delta = -J^T r, J the (N, P) Jacobian of the N outputs by the P
    trainable parameters (:func:`jacobian`).
    Solved in the parameter space when P <= N and through the N x N system otherwise (the same
    step). A step that does not lower the loss is undone and the damping raised. Returns the
    final loss; stops early when a step gains less than 1e-12 of it."""
    import torch
    from torch.nn.utils import parameters_to_vector, vector_to_parameters

    params = [p for p in model.parameters() if p.requires_grad]

    def assign(theta) -> None:
        with torch.no_grad():
            vector_to_parameters(theta, params)

    def residual() -> "torch.Tensor":
        with torch.no_grad():
            return (model(x) - y).reshape(-1)

    theta, r = parameters_to_vector(params).detach(), residual()
    loss = float(r @ r)
    for _ in range(steps):
        jac = jacobian(model, x)
        scale = (jac * jac).sum(0).clamp_min(1e-12).sqrt()  # Marquardt: damp each parameter by its own curvature
        js = jac / scale
        gained = None
        while damping < 1e12:
            if js.shape[1] <= js.shape[0]:
                u = torch.linalg.solve(js.T @ js + damping * torch.eye(js.shape[1], dtype=js.dtype), -(js.T @ r))
            else:
                u = -js.T @ torch.linalg.solve(js @ js.T + damping * torch.eye(js.shape[0], dtype=js.dtype), r)
            candidate = theta + u / scale
            assign(candidate)
            r_new = residual()
            new = float(r_new @ r_new)
            if math.isfinite(new) and new < loss:
                gained = (loss - new) / loss
                theta, r, loss = candidate, r_new, new
                damping = max(damping / 3, 1e-12)
                break
            damping *= 4
        if gained is None:
            assign(theta)
            break
        if gained < 1e-12:
            break
    return loss / max(1, r.numel())


__all__ = ["jacobian", "lbfgs", "levenberg_marquardt"]
