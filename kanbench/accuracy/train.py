"""One training run of the protocol: full-batch, a fixed optimizer budget, the validation-best checkpoint.

- Full-batch Adam (default) for at most ``steps`` steps, or LBFGS as pykan uses it (lr 1, history 10,
  strong Wolfe line search, pykan's tolerances of 1e-32) for at most ``steps`` iterations.
- Early stopping: a run stops once ``patience`` steps have passed without a better validation
  metric (trained until the validation loss stops improving). A run whose best checkpoint sits in
  the last 5% of its step budget (:func:`converged`) may still have been improving: every table
  marks it "not converged".
- Every ``eval_every`` steps (and at the last) the validation metric is computed; the
  parameters with the best validation metric are kept (a copy), and the test metrics are
  computed once, on that checkpoint at the end -- the test split never chooses anything.
- A loss that turns NaN or infinite stops the run and is recorded as diverged (its metrics
  stay empty): a diverged row is reported, never dropped.
- Each step's wall time (forward, backward, optimizer; CUDA synchronized) is measured with
  ``time.perf_counter``; evaluation time is excluded from ``train_s`` and time to target.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from kanbench.accuracy import metrics
from kanbench.accuracy.data import Prepared
from kanbench.accuracy.tasks import Task

OPTIMIZERS = ("adam", "lbfgs")


@dataclass(frozen=True)
class TrainConfig:
    """The optimizer budget, the same for every row of a run."""

    optimizer: str = "adam"
    steps: int = 500
    eval_every: int = 10
    budget_s: Optional[float] = 120.0  #: wall-clock limit of one run (a row over it is reported as such)
    patience: Optional[int] = None  #: stop after this many steps without a better validation metric (None: never)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if self.steps < 1 or self.eval_every < 1:
            raise ValueError("steps and eval_every must be at least 1")
        if self.patience is not None and self.patience < self.eval_every:
            raise ValueError("patience must be at least eval_every steps")


@dataclass
class Outcome:
    """What one run with one learning rate gave (metrics at the validation-best checkpoint)."""

    lr: float
    val: Optional[float] = None  #: validation metric at the checkpoint (NRMSE, or 1 - accuracy): lower is better
    best_step: Optional[int] = None
    steps_run: int = 0  #: steps taken (fewer than the budget after an early stop)
    stopped_early: bool = False
    test: dict = field(default_factory=dict)  #: test metrics at the checkpoint
    val_accuracy: Optional[float] = None
    final_train_loss: Optional[float] = None
    step_ms: list = field(default_factory=list)
    train_s: float = 0.0
    steps_to_target: Optional[int] = None
    time_to_target_s: Optional[float] = None
    curve: list = field(default_factory=list)
    error: Optional[str] = None
    error_kind: Optional[str] = None


def _tensors(prepared: Prepared, task: Task, device, dtype):
    import torch

    x = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in prepared.x.items()}
    if task.kind == "regression":
        y = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in prepared.y.items()}
    else:
        y = {k: torch.as_tensor(v, dtype=torch.long, device=device) for k, v in prepared.y.items()}
    return x, y


def _loss_fn(task: Task):
    import torch.nn.functional as F

    if task.kind == "regression":
        return F.mse_loss
    return F.cross_entropy


def evaluate(model, x, task: Task, prepared: Prepared, part: str) -> dict:
    """Metrics of ``model`` on one part, in the task's units (numpy float64)."""
    import torch

    with torch.no_grad():
        out = model(x[part]).detach().to(torch.float64).cpu().numpy()
    truth = prepared.y_raw[part]
    if task.kind == "regression":
        pred = prepared.target_scaler.invert(out)
        return {"rmse": metrics.rmse(pred, truth), "nrmse": metrics.nrmse(pred, truth), "mae": metrics.mae(pred, truth)}
    return {
        "accuracy": metrics.accuracy(out, truth),
        "macro_f1": metrics.macro_f1(out, truth, task.outputs),
        "cross_entropy": metrics.cross_entropy(out, truth),
    }


def _headline(task: Task, m: dict) -> float:
    """Lower is better: NRMSE, or 1 - accuracy (ties broken by nothing: the earlier checkpoint stays)."""
    value = m["nrmse"] if task.kind == "regression" else 1.0 - m["accuracy"]
    return value if math.isfinite(value) else math.inf


def _meets_target(task: Task, m: dict) -> bool:
    return m["nrmse"] <= task.target if task.kind == "regression" else m["accuracy"] >= task.target


def train_once(model, task: Task, prepared: Prepared, config: TrainConfig, lr: float, device, dtype) -> Outcome:
    """Train ``model`` (freshly built) with ``lr``; never raises for the model's own failures."""
    import torch

    out = Outcome(lr=lr)
    x, y = _tensors(prepared, task, device, dtype)
    loss_fn = _loss_fn(task)
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.LBFGS(
            params, lr=lr, history_size=10, line_search_fn="strong_wolfe", tolerance_grad=1e-32, tolerance_change=1e-32
        )
    cuda = str(device).startswith("cuda")
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    best_state = None
    started = time.monotonic()

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x["train"]), y["train"])
        loss.backward()
        return loss

    def check(step: int) -> None:
        nonlocal best_state
        m = evaluate(model, x, task, prepared, "val")
        value = _headline(task, m)
        out.curve.append([step, round(m["nrmse"] if task.kind == "regression" else m["accuracy"], 6)])
        if out.val is None or value < out.val:
            out.val, out.best_step = value, step
            out.val_accuracy = m.get("accuracy")
            best_state = copy.deepcopy(model.state_dict())
        if out.steps_to_target is None and _meets_target(task, m):
            out.steps_to_target, out.time_to_target_s = step, round(out.train_s, 4)

    model.train()
    check(0)
    loss = None
    for step in range(1, config.steps + 1):
        sync()
        t0 = time.perf_counter()
        if config.optimizer == "adam":
            loss = closure()
            opt.step()
        else:
            loss = opt.step(closure)
        sync()
        dt = time.perf_counter() - t0
        out.step_ms.append(dt * 1e3)
        out.train_s += dt
        value = float(loss.detach())
        if not math.isfinite(value):
            out.error_kind, out.error = "diverged", f"diverged at step {step}: the training loss is {value}"
            break
        out.steps_run = step
        if step % config.eval_every == 0 or step == config.steps:
            check(step)
            if config.patience is not None and step - (out.best_step or 0) >= config.patience and step < config.steps:
                out.stopped_early = True
                break
        if config.budget_s and time.monotonic() - started > config.budget_s:
            out.error_kind = "budget"
            out.error = f"stopped after {step} of {config.steps} steps: over the {config.budget_s:g} s budget"
            break
    if loss is not None and math.isfinite(float(loss.detach())):
        out.final_train_loss = float(loss.detach())
    if out.error_kind == "diverged" or best_state is None:
        out.val = None
        return out
    model.load_state_dict(best_state)
    out.test = evaluate(model, x, task, prepared, "test")
    return out


#: a best checkpoint in the last this share of the step budget means "not converged"
LAST_SHARE = 0.05


def converged(best_step: Optional[int], steps: int) -> Optional[bool]:
    """False when the validation-best checkpoint is in the last 5% of the ``steps`` budget (the run
    may still have been improving when the budget ended); None without a checkpoint."""
    if best_step is None:
        return None
    return best_step <= steps * (1 - LAST_SHARE)


def step_summary(step_ms: list) -> tuple:
    """(median, interquartile range) of the step times in ms; (None, None) when empty."""
    if not step_ms:
        return None, None
    q1, med, q3 = np.percentile(np.asarray(step_ms), [25, 50, 75])
    return float(med), float(q3 - q1)
