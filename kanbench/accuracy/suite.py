"""The accuracy suite's plan and its execution: tasks x implementations x budgets, then seeds x learning rates.

The unit of work is one (task, implementation, parameter budget). Two ways to choose its
hyperparameters, both on validation only (the test split is looked at after the choice):

- **tuning** (the tiers' default, ``trials``): every row gets the same number of trials
  (:mod:`kanbench.accuracy.tuning`: random search over its own hyperparameters and the learning
  rate), each trained on the first seed's split; the trial with the lowest validation error wins,
  and its configuration is then trained on every other seed's split too;
- **a learning-rate grid** (``--lr``, or LBFGS): every seed is trained with every rate, and the
  rate with the lowest median validation error over the seeds is chosen.

Every seed draws its own data split (and, for generated tasks, its own sample): the spread over
seeds covers the split as well as the initialization.

Budgets: the unit's parameter budget is our B-spline KAN's trainable count at the task's
reference widths (:data:`kanbench.matching.DEFAULT_REFERENCE`), times ``budget_scale``
(the full tier uses several scales for error-versus-parameters curves), or absolute counts
(``absolute_budgets``: the same for every task, e.g. 10^2 to 10^4); every implementation,
the MLP included, gets the hidden width whose count is nearest (:func:`kanbench.matching.match`),
for each trial's own options (a grid of 20 leaves fewer hidden units than a grid of 3).

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
from kanbench.accuracy import tuning
from kanbench.accuracy.records import AccuracyResult
from kanbench.accuracy.train import Outcome, TrainConfig, converged, step_summary, train_once

#: the tiers' defaults: seeds, tuning trials per row, parameter-budget scales, step budget and
#: early-stopping patience (steps without a better validation metric)
TIER_DEFAULTS = {
    "default": {"seeds": 5, "trials": 4, "lrs": (3e-2, 1e-2, 3e-3), "budgets": (1.0,), "steps": 800, "patience": 150},
    # every task at 10^2, 10^2.5, 10^3 and 10^3.5 parameters (absolute: the same for every task); three
    # seeds and six trials keep it near an hour for three implementations on a 2-core machine
    "full": {
        "seeds": 3,
        "trials": 6,
        "lrs": (3e-2, 1e-2, 3e-3, 1e-3),
        "budgets": (100.0, 316.0, 1000.0, 3162.0),
        "absolute_budgets": True,
        "steps": 1000,
        "patience": 150,
    },
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
    trials: Optional[int] = None  #: tuning trials per row (None: the learning-rate grid ``lrs``)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: str = "minmax"
    device: str = "cpu"
    dtype: str = "float32"
    data_seed: int = DATA_SEED
    match: str = "params"  #: what the budget counts: "params" (trainable parameters) or "flops" (forward FLOPs per sample)
    absolute_budgets: bool = False  #: ``budgets`` are counts (the same for every task), not multiples of each task's reference

    def to_dict(self) -> dict:
        return {
            "seeds": list(self.seeds),
            "lrs": list(self.lrs),
            "trials": self.trials,
            "lr_range": list(tuning.LR_RANGE) if self.trials else None,
            "patience": self.train.patience,
            "budgets": list(self.budgets),
            "optimizer": self.train.optimizer,
            "steps": self.train.steps,
            "eval_every": self.train.eval_every,
            "budget_s": self.train.budget_s,
            "scaling": self.scaling,
            "device": self.device,
            "dtype": self.dtype,
            "data_seed": self.data_seed,
            "match": self.match,
            "absolute_budgets": self.absolute_budgets,
        }


@dataclass(frozen=True)
class Unit:
    """One (task, implementation, budget scale): trained for every seed and learning rate."""

    task: tasks_mod.Task
    impl: str
    budget_scale: float = 1.0


def prepare_split(task: tasks_mod.Task, config: SuiteConfig, seed: int):
    """The data of ``seed``'s run: its own sample (generated tasks) and its own train / validation /
    test split (stratified for classification), scaled on its training part."""
    data_seed = config.data_seed + seed
    return data_mod.prepare(task, task.make(data_seed), data_seed, config.scaling)


def plan(tasks: Sequence[tasks_mod.Task], impls: Sequence[str], config: SuiteConfig, shard=(0, 1)) -> list[Unit]:
    """Every unit, task-major (every implementation of a task, then the next task); a shard's share."""
    units = [Unit(t, impl, b) for t in tasks for b in config.budgets for impl in impls]
    i, n = shard
    return units[i::n]


def _budget(registry, task: tasks_mod.Task, scale: float, cache: dict, metric: str = "params", absolute: bool = False) -> float:
    """Our B-spline KAN's count (trainable parameters, or forward FLOPs per sample) at the task's
    widths, times ``scale``; ``scale`` itself when ``absolute``."""
    from kanbench import matching

    if absolute:
        return float(scale)
    key = (task.widths, metric)
    if key not in cache:
        cache[key] = matching.default_target(registry, task.widths, metric)
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
    rec.match = config.match
    if params is not None and budget and config.match == "params":
        rec.param_error = round(abs(params - budget) / budget, 5)
    if outcome is None:
        return rec
    rec.best_step = outcome.best_step
    rec.steps_run = outcome.steps_run
    rec.converged = converged(outcome.best_step, config.train.steps)
    rec.final_train_loss = outcome.final_train_loss
    rec.step_ms, rec.step_ms_iqr = step_summary(outcome.step_ms)
    rec.steps_to_target, rec.time_to_target_s = outcome.steps_to_target, outcome.time_to_target_s
    rec.train_s = round(outcome.train_s, 4)
    rec.curve = outcome.curve
    if task.kind == "regression":
        rec.val_nrmse = outcome.val
        rec.test_rmse, rec.test_nrmse = outcome.test.get("rmse"), outcome.test.get("nrmse")
        rec.test_mae = outcome.test.get("mae")
    else:
        rec.val_accuracy = outcome.val_accuracy
        rec.test_accuracy = outcome.test.get("accuracy")
        rec.test_macro_f1 = outcome.test.get("macro_f1")
        rec.test_cross_entropy = outcome.test.get("cross_entropy")
    if outcome.error_kind:
        rec.fail(outcome.error_kind, outcome.error)
    return rec


@dataclass
class _Trained:
    """One trained model of a unit: its configuration, size and outcome."""

    options: dict  #: the trial's options
    lr: float
    widths: tuple
    params: Optional[int]
    outcome: Outcome
    built: dict = field(default_factory=dict)  #: the options it was built with (the match may move a grid)


def _train(
    unit: Unit, spec, config: SuiteConfig, data_for, budget: float, seed: int, lr: float, options: dict, last: dict
) -> _Trained:
    """Match, build and train one model; ``last`` keeps the widths and parameters as soon as they are
    known (a crash's record reports them)."""
    import torch

    from kanbench import matching
    from kanbench.runner import count_parameters
    from kanbench.workload import torch_dtype

    key = tuple(sorted(options.items()))
    cache = last.setdefault("matches", {})
    if key not in cache:  # the other seeds of a trial's options reuse its match
        cache[key] = matching.match(spec, unit.task.widths, budget, config.match, options)
    m = cache[key]
    last["widths"] = tuple(m.widths)
    dtype, device = torch_dtype(config.dtype), torch.device(config.device)
    torch.manual_seed(seed)
    model = spec.build(tuple(m.widths), device=device, dtype=dtype, **(m.options or {}))
    params = last["params"] = count_parameters(model)[1]
    outcome = train_once(model, unit.task, data_for(seed), config.train, lr, device, dtype)
    return _Trained(dict(options), lr, tuple(m.widths), params, outcome, dict(m.options or {}))


def _badness(outcome: Outcome) -> float:
    return outcome.val if (outcome.val is not None and not outcome.error_kind) else math.inf


def run_unit(unit: Unit, registry, config: SuiteConfig, data_for, budget_cache: dict) -> list[AccuracyResult]:
    """Train one unit (see the module docstring); its records, one per seed. Never raises.

    ``data_for(seed)`` gives the prepared data of that seed's split."""
    spec = registry.get(unit.impl).spec
    budget = None
    last: dict = {"widths": unit.task.widths, "params": None}
    try:
        budget = _budget(registry, unit.task, unit.budget_scale, budget_cache, config.match, config.absolute_budgets)

        def train(seed, lr, options):
            return _train(unit, spec, config, data_for, budget, seed, lr, options, last)

        if config.trials:
            first, rest = config.seeds[0], config.seeds[1:]
            trials = tuning.draw(unit.impl, getattr(spec, "options", ()), config.trials)
            tried = [train(first, t.lr, t.options) for t in trials]
            best = min(tried, key=lambda t: (_badness(t.outcome), t.lr))
            runs = [best] + [train(s, best.lr, best.options) for s in rest]
            lr_grid = [t.lr for t in trials]
        else:
            by_lr = {lr: [train(s, lr, {}) for s in config.seeds] for lr in config.lrs}
            chosen = _choose({lr: [t.outcome for t in runs] for lr, runs in by_lr.items()})
            runs, lr_grid = by_lr[chosen], list(config.lrs)
        records = []
        for seed, run in zip(config.seeds, runs):
            rec = _record(unit, seed, spec, run.widths, run.params, budget, config, run.lr, run.outcome)
            rec.options, rec.lr_grid, rec.split_seed = dict(run.built), lr_grid, seed
            rec.trials = config.trials
            if getattr(spec, "flops", None) is not None:
                try:
                    rec.flops_per_sample = float(spec.flops(tuple(run.widths), **run.built))
                except Exception:
                    rec.flops_per_sample = None
            if config.match == "flops" and rec.flops_per_sample and budget:
                rec.flops_error = round(abs(rec.flops_per_sample - budget) / budget, 5)
            rec.lr_at_edge = (
                tuning.at_edge(run.lr) if config.trials else run.lr in (min(lr_grid), max(lr_grid)) and len(lr_grid) > 1
            )
            records.append(rec)
        return records
    except Exception as exc:  # the implementation's failure ends this unit only
        text = str(exc).strip().splitlines()
        message = f"{type(exc).__name__}: {text[0] if text else ''}"
        widths, params = last["widths"], last["params"]
        return [_record(unit, s, spec, widths, params, budget, config, None, None).fail("crash", message) for s in config.seeds]


def failed_records(unit: Unit, config: SuiteConfig, kind: str, message: str) -> list[AccuracyResult]:
    """One failed record per seed for a unit that produced nothing (e.g. its worker process died)."""
    return [_record(unit, s, None, unit.task.widths, None, None, config, None, None).fail(kind, message) for s in config.seeds]


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

        def data_for(seed: int, task=unit.task):
            key = (task.name, seed)
            if key not in prepared:
                prepared[key] = prepare_split(task, config, seed)
            return prepared[key]

        records = run_unit(unit, registry, config, data_for, budget_cache)
        out.extend(records)
        if progress:
            progress(i + 1, len(units), unit, records, time.monotonic() - started)
    return out
