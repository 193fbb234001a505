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


@dataclass(frozen=True)
class Task:
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

    record = {
        "impl": spec.name, "device": str(device), "task": task.name, "formula": task.formula,
        "widths": list(task.widths), "steps": config.steps, "optimizer": config.optimizer, "lr": config.lr,
        "train_rmse": None, "test_rmse": None, "best_test_rmse": None, "step_ms": None,
        "time_to_target_s": None, "target_rmse": None, "curve": [], "params": None, "error": None, "error_kind": None,
    }
    xtr, ytr, xte, yte = make_data(task, config, device, dtype)
    target = config.target_fraction * float(yte.std())
    record["target_rmse"] = target
    torch.manual_seed(config.seed)
    try:
        model = spec.build(task.widths, device=torch.device(device), dtype=dtype).train()
        record["params"] = sum(p.numel() for p in model.parameters())
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
            record["curve"].append([step, rmse])
            if record["time_to_target_s"] is None and rmse <= target:
                record["time_to_target_s"] = round(trained, 4)
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
                record["error_kind"] = "diverged"
                record["error"] = f"diverged at step {step}: the loss is {loss.item()}"
                break
            if step % config.eval_every == 0 or step == config.steps:
                evaluate(step)
            if config.budget_s and time.monotonic() - started > config.budget_s:
                record["error_kind"] = "budget"
                record["error"] = f"stopped after {step} of {config.steps} steps: exceeded the {config.budget_s:g} s budget"
                break
        step_times.sort()
        record["step_ms"] = step_times[len(step_times) // 2] * 1e3 if step_times else None
        with torch.no_grad():
            record["train_rmse"] = float(torch.sqrt(torch.mean((model(xtr) - ytr) ** 2)))
        finite = [c[1] for c in record["curve"] if math.isfinite(c[1])]
        record["test_rmse"] = record["curve"][-1][1] if record["curve"] else None
        record["best_test_rmse"] = min(finite) if finite else None
        if record["test_rmse"] is not None and not math.isfinite(record["test_rmse"]) and not record["error"]:
            record["error_kind"] = "diverged"
            record["error"] = "diverged: the test error is not finite"
    except Exception as exc:
        record["error_kind"] = "crash"
        record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return record


def fit_table(records: list[dict]) -> str:
    from tabulate import tabulate

    tasks = list(dict.fromkeys(r["task"] for r in records))
    impls = sorted(dict.fromkeys((r["impl"], r["device"]) for r in records), key=lambda k: (k[0] != "mlp", k))
    headers = ["", *[f"{t} RMSE" for t in tasks], *[f"{t} ms/step" for t in tasks], *[f"{t} to target (s)" for t in tasks]]
    body = []
    cells = {(r["impl"], r["device"], r["task"]): r for r in records}
    for impl, device in impls:
        line = [f"{impl}-{'gpu' if device.startswith('cuda') else 'cpu'}"]
        for what in ("rmse", "ms", "target"):
            for t in tasks:
                r = cells.get((impl, device, t))
                if r is None:
                    line.append("")
                elif r.get("error") and what == "rmse":
                    line.append(r["error_kind"] + (f" ({r['test_rmse']:.3g})" if r.get("test_rmse") is not None and math.isfinite(r["test_rmse"]) else ""))
                elif what == "rmse":
                    line.append(f"{r['test_rmse']:.3g}")
                elif what == "ms":
                    line.append("-" if r.get("step_ms") is None else f"{r['step_ms']:.3g}")
                else:
                    line.append("not reached" if r.get("time_to_target_s") is None else f"{r['time_to_target_s']:.3g}")
        body.append(line)
    text = tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True)
    errors = [f"- {r['impl']}-{r['device']} on {r['task']}: {r['error']}" for r in records if r.get("error")]
    targets = ", ".join(f"{t} {next(r['target_rmse'] for r in records if r['task'] == t):.3g}" for t in tasks)
    return "\n".join([text, "", f"Targets (2% of the test targets' std): {targets}.", *errors])


def run(specs: Sequence, tasks: Sequence[Task], config: FitConfig, devices: Sequence[str], dtype,
        progress: Optional[Callable[[dict], None]] = None) -> list[dict]:
    out = []
    for spec in specs:
        for device in devices:
            for task in tasks:
                rec = fit_one(spec, task, config, device, dtype)
                out.append(rec)
                if progress:
                    progress(rec)
    return out
