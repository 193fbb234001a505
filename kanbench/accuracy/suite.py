"""The accuracy suite's plan and its execution: tasks x implementations x budgets, then seeds x learning rates.

The unit of work is one (task, implementation, parameter budget). Inside it every seed is
trained with every learning rate of the grid; the learning rate is chosen once per unit, as
the one with the lowest median validation error over the seeds (a diverged run counts as
infinitely bad), and the unit's records are the chosen learning rate's runs, one per seed.
The test split is looked at only after that choice.

Budgets: the unit's parameter budget is our B-spline KAN's trainable count at the task's
reference widths (:data:`kanbench.matching.DEFAULT_REFERENCE`), times ``budget_scale``
(the full tier uses several scales for error-versus-parameters curves); every implementation,
the MLP included, gets the hidden width whose count is nearest (:func:`kanbench.matching.match`).

A unit that raises ends only itself (its records carry the error); Slurm shards split the
units (``shard`` = (i, n): units i, i+n, ...).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from kanbench.accuracy import data as data_mod
from kanbench.accuracy import tasks as tasks_mod
from kanbench.accuracy.records import AccuracyResult
from kanbench.accuracy.train import Outcome, TrainConfig, step_summary, train_once

#: the tiers' defaults: seeds, learning-rate grid, parameter-budget scales
TIER_DEFAULTS = {
    "default": {"seeds": 2, "lrs": (3e-2, 1e-2, 3e-3), "budgets": (1.0,)},
    "full": {"seeds": 5, "lrs": (3e-2, 1e-2, 3e-3, 1e-3), "budgets": (0.5, 1.0, 2.0, 4.0)},
}
DATA_SEED = 0
#: rows that compute the same function as another row, faster or slower (pykan's speed() drops
#: the symbolic branch, whose output is zero until a formula is fixed; inkan's compiled basis):
#: trained only when named, since they learn what the other row learns
SAME_FUNCTION = {"pykan": "pykan-speed", "inkan": "inkan-eager"}


def default_implementations(available: Sequence[str]) -> tuple:
    """(kept, [(left out, the row it duplicates)]) for a run that named no implementation."""
    left = [(n, SAME_FUNCTION[n]) for n in available if SAME_FUNCTION.get(n) in available]
    dropped = {n for n, _ in left}
    return [n for n in available if n not in dropped], left


@dataclass(frozen=True)
class SuiteConfig:
    """Everything that is the same for every row of one run."""

    seeds: tuple = (0, 1)
    lrs: tuple = (1e-2, 3e-3)
    budgets: tuple = (1.0,)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: str = "minmax"
    device: str = "cpu"
    dtype: str = "float32"
    data_seed: int = DATA_SEED

    def to_dict(self) -> dict:
        return {
            "seeds": list(self.seeds),
            "lrs": list(self.lrs),
            "budgets": list(self.budgets),
            "optimizer": self.train.optimizer,
            "steps": self.train.steps,
            "eval_every": self.train.eval_every,
            "budget_s": self.train.budget_s,
            "scaling": self.scaling,
            "device": self.device,
            "dtype": self.dtype,
            "data_seed": self.data_seed,
        }


@dataclass(frozen=True)
class Unit:
    """One (task, implementation, budget scale): trained for every seed and learning rate."""

    task: tasks_mod.Task
    impl: str
    budget_scale: float = 1.0


def plan(tasks: Sequence[tasks_mod.Task], impls: Sequence[str], config: SuiteConfig, shard=(0, 1)) -> list[Unit]:
    """Every unit, task-major (every implementation of a task, then the next task); a shard's share."""
    units = [Unit(t, impl, b) for t in tasks for b in config.budgets for impl in impls]
    i, n = shard
    return units[i::n]


def _budget(registry, task: tasks_mod.Task, scale: float, cache: dict) -> float:
    """Our B-spline KAN's trainable count at the task's widths, times ``scale``."""
    from kanbench import matching

    key = task.widths
    if key not in cache:
        cache[key] = matching.default_target(registry, task.widths, "params")
    return cache[key] * scale


def _choose(outcomes_by_lr: dict) -> float:
    """The learning rate with the lowest median validation error over seeds (failures: +inf)."""

    def badness(lr):
        vals = [o.val if (o.val is not None and not o.error_kind) else math.inf for o in outcomes_by_lr[lr]]
        return (statistics.median(vals), lr)

    return min(outcomes_by_lr, key=badness)


def _record(unit: Unit, seed: int, spec, widths, params, budget, config: SuiteConfig, lr, outcome: Outcome) -> AccuracyResult:
    task = unit.task
    rec = AccuracyResult(
        impl=unit.impl,
        task=task.name,
        seed=seed,
        device=config.device,
        family=getattr(spec, "family", "") or "",
        task_family=task.family,
        kind=task.kind,
        widths=list(widths),
        params=params,
        budget=budget,
        budget_scale=unit.budget_scale,
        optimizer=config.train.optimizer,
        lr=lr,
        lr_grid=list(config.lrs),
        steps=config.train.steps,
        target=task.target,
    )
    if spec is not None and getattr(spec, "flops", None) is not None:
        try:
            rec.flops_per_sample = float(spec.flops(tuple(widths)))
        except Exception:
            pass
    if outcome is None:
        return rec
    rec.best_step = outcome.best_step
    rec.final_train_loss = outcome.final_train_loss
    rec.step_ms, rec.step_ms_iqr = step_summary(outcome.step_ms)
    rec.steps_to_target, rec.time_to_target_s = outcome.steps_to_target, outcome.time_to_target_s
    rec.train_s = round(outcome.train_s, 4)
    rec.curve = outcome.curve
    if task.kind == "regression":
        rec.val_nrmse = outcome.val
        rec.test_rmse, rec.test_nrmse = outcome.test.get("rmse"), outcome.test.get("nrmse")
    else:
        rec.val_accuracy = outcome.val_accuracy
        rec.test_accuracy = outcome.test.get("accuracy")
        rec.test_macro_f1 = outcome.test.get("macro_f1")
        rec.test_cross_entropy = outcome.test.get("cross_entropy")
    if outcome.error_kind:
        rec.fail(outcome.error_kind, outcome.error)
    return rec


def run_unit(unit: Unit, registry, config: SuiteConfig, prepared, budget_cache: dict) -> list[AccuracyResult]:
    """Train one unit (every seed x learning rate); its records, one per seed. Never raises."""
    import torch

    from kanbench import matching
    from kanbench.runner import count_parameters
    from kanbench.workload import torch_dtype

    spec = registry.get(unit.impl).spec
    widths, params, budget = unit.task.widths, None, None
    try:
        budget = _budget(registry, unit.task, unit.budget_scale, budget_cache)
        widths = matching.match(spec, unit.task.widths, budget, "params").widths
        dtype = torch_dtype(config.dtype)
        device = torch.device(config.device)
        outcomes: dict = {lr: [] for lr in config.lrs}
        for lr in config.lrs:
            for seed in config.seeds:
                torch.manual_seed(seed)
                model = spec.build(tuple(widths), device=device, dtype=dtype)
                params = count_parameters(model)[1]
                outcomes[lr].append(train_once(model, unit.task, prepared, config.train, lr, device, dtype))
        lr = _choose(outcomes)
        return [_record(unit, s, spec, widths, params, budget, config, lr, o) for s, o in zip(config.seeds, outcomes[lr])]
    except Exception as exc:  # the implementation's failure ends this unit only
        text = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {text[0] if text else ''}"
        return [_record(unit, s, spec, widths, params, budget, config, None, None).fail("crash", message) for s in config.seeds]


def run(
    units: Sequence[Unit],
    registry,
    config: SuiteConfig,
    progress: Optional[Callable[[int, int, Unit, list, float], None]] = None,
) -> list[AccuracyResult]:
    """Every unit in order; ``progress(done, total, unit, records, elapsed_s)`` after each."""
    prepared: dict = {}
    budget_cache: dict = {}
    out: list[AccuracyResult] = []
    started = time.monotonic()
    for i, unit in enumerate(units):
        name = unit.task.name
        if name not in prepared:
            raw = unit.task.make(config.data_seed)
            prepared[name] = data_mod.prepare(unit.task, raw, config.data_seed, config.scaling)
        records = run_unit(unit, registry, config, prepared[name], budget_cache)
        out.extend(records)
        if progress:
            progress(i + 1, len(units), unit, records, time.monotonic() - started)
    return out
