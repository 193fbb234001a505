"""Fit quality: does a fast layer still learn? Every implementation trains with the
same budget (steps, optimizer, learning rate, full-batch data, seeds) on a few
KAN toy tasks, and reports test RMSE, time per step and time to reach a target.

Tasks (from the KAN paper's toy examples, Liu et al. 2024, section 3.1), inputs
uniform in [-1, 1]^d, 1000 training and 1000 test points:

- ``seed``   exp(sin(pi x1) + x2^2)                                 widths [2, 5, 1]
- ``xy``     x1 * x2                                                widths [2, 5, 1]
- ``bessel`` J0(20 x)                                               widths [1, 5, 1]
- ``exp4d``  exp((sin(pi (x1^2 + x2^2)) + sin(pi (x3^2 + x4^2))) / 2)  widths [4, 4, 2, 1]

The target error of a task is 2% of the standard deviation of its test targets; "time
to target" is the training time (steps only, evaluation excluded) until the test RMSE
first reaches it. A loss that becomes NaN or infinite stops that fit and is recorded
as diverged.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from kanbench.records import FitResult


@dataclass(frozen=True)
class Task:
    """A toy regression task of the KAN paper: target function, input dimension, network widths."""

    name: str
    dim: int
    widths: tuple
    fn: Callable
    formula: str


def _seed(x):
    import torch

    return torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2)


def _xy(x):
    return x[:, :1] * x[:, 1:2]


def _bessel(x):
    import torch
    from scipy.special import j0

    return torch.from_numpy(j0(20 * x[:, :1].double().cpu().numpy())).to(x)


def _exp4d(x):
    import torch

    a = torch.sin(math.pi * (x[:, :1] ** 2 + x[:, 1:2] ** 2))
    b = torch.sin(math.pi * (x[:, 2:3] ** 2 + x[:, 3:4] ** 2))
    return torch.exp((a + b) / 2)


TASKS = {
    t.name: t
    for t in (
        Task("seed", 2, (2, 5, 1), _seed, "exp(sin(pi x1) + x2^2)"),
        Task("xy", 2, (2, 5, 1), _xy, "x1 x2"),
        Task("bessel", 1, (1, 5, 1), _bessel, "J0(20 x)"),
        Task("exp4d", 4, (4, 4, 2, 1), _exp4d, "exp((sin(pi(x1^2+x2^2)) + sin(pi(x3^2+x4^2)))/2)"),
    )
}


@dataclass
class FitConfig:
    """The training budget of a fit run: steps, optimizer, learning rate, seed, time budget."""

    steps: int = 1000
    lr: float = 1e-2
    optimizer: str = "adam"
    train: int = 1000
    test: int = 1000
    seed: int = 0
    eval_every: int = 10
    target_fraction: float = 0.02
    budget_s: Optional[float] = 300.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def make_data(task: Task, config: FitConfig, device, dtype):
    import torch

    gen = torch.Generator().manual_seed(config.seed + 1000)
    xtr = torch.rand(config.train, task.dim, generator=gen, dtype=torch.float64) * 2 - 1
    xte = torch.rand(config.test, task.dim, generator=gen, dtype=torch.float64) * 2 - 1
    ytr, yte = task.fn(xtr), task.fn(xte)
    cast = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    return cast(xtr), cast(ytr), cast(xte), cast(yte)


def fit_one(spec, task: Task, config: FitConfig, device, dtype) -> dict:
    """Train one implementation on one task; never raises for the implementation's own failures."""
    import torch

    record = FitResult(
        impl=spec.name,
        device=str(device),
        task=task.name,
        formula=task.formula,
        widths=list(task.widths),
        steps=config.steps,
        optimizer=config.optimizer,
        lr=config.lr,
    )
    xtr, ytr, xte, yte = make_data(task, config, device, dtype)
    target = config.target_fraction * float(yte.std())
    record.target_rmse = target
    torch.manual_seed(config.seed)
    try:
        model = spec.build(task.widths, device=torch.device(device), dtype=dtype).train()
        record.params = sum(p.numel() for p in model.parameters())
        params = [p for p in model.parameters() if p.requires_grad]
        if config.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=config.lr)
        elif config.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=config.lr, momentum=0.9)
        else:
            raise ValueError(f"unknown optimizer {config.optimizer!r}")
        sync = (lambda: torch.cuda.synchronize(device)) if str(device).startswith("cuda") else (lambda: None)
        step_times = []
        trained = 0.0
        started = time.monotonic()

        def evaluate(step):
            with torch.no_grad():
                rmse = float(torch.sqrt(torch.mean((model(xte) - yte) ** 2)))
            record.curve.append([step, rmse])
            if record.time_to_target_s is None and rmse <= target:
                record.time_to_target_s = round(trained, 4)
            return rmse

        evaluate(0)
        for step in range(1, config.steps + 1):
            sync()
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = torch.mean((model(xtr) - ytr) ** 2)
            loss.backward()
            opt.step()
            sync()
            dt = time.perf_counter() - t0
            step_times.append(dt)
            trained += dt
            if not math.isfinite(loss.item()):
                record.fail("diverged", f"diverged at step {step}: the loss is {loss.item()}")
                break
            if step % config.eval_every == 0 or step == config.steps:
                evaluate(step)
            if config.budget_s and time.monotonic() - started > config.budget_s:
                record.fail("budget", f"stopped after {step} of {config.steps} steps: exceeded the {config.budget_s:g} s budget")
                break
        step_times.sort()
        record.step_ms = step_times[len(step_times) // 2] * 1e3 if step_times else None
        with torch.no_grad():
            record.train_rmse = float(torch.sqrt(torch.mean((model(xtr) - ytr) ** 2)))
        finite = [c[1] for c in record.curve if math.isfinite(c[1])]
        record.test_rmse = record.curve[-1][1] if record.curve else None
        record.best_test_rmse = min(finite) if finite else None
        if record.test_rmse is not None and not math.isfinite(record.test_rmse) and not record.error:
            record.fail("diverged", "diverged: the test error is not finite")
    except Exception as exc:
        record.fail("crash", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return record


def run(
    specs: Sequence,
    tasks: Sequence[Task],
    config: FitConfig,
    devices: Sequence[str],
    dtype,
    progress: Optional[Callable[[FitResult], None]] = None,
) -> list[FitResult]:
    out = []
    for spec in specs:
        for device in devices:
            for task in tasks:
                rec = fit_one(spec, task, config, device, dtype)
                out.append(rec)
                if progress:
                    progress(rec)
    return out
