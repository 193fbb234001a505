"""The typed record of one accuracy result: an implementation, a task, a seed, the chosen learning rate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from kanbench.record_base import Record as _Record


@dataclass
class AccuracyResult(_Record):
    """One (implementation, task, seed) trained with the learning rate chosen on validation.

    Metrics are at the validation-best checkpoint; ``final_train_loss`` is the training loss
    at the last step (optimization, as opposed to generalization)."""

    impl: str
    task: str
    seed: int
    device: str = "cpu"
    family: str = ""  #: the implementation's family (B-spline, MLP, ...)
    task_family: str = ""  #: toy, special, feynman, tabular
    kind: str = "regression"  #: regression or classification
    widths: list = field(default_factory=list)  #: the widths actually trained (budget-matched)
    params: Optional[int] = None  #: trainable parameters of the model trained
    flops_per_sample: Optional[float] = None  #: analytic forward FLOPs (specs that declare them)
    budget: Optional[float] = None  #: the parameter budget it was matched to
    budget_scale: float = 1.0  #: the budget relative to the task's reference (full tier: several)
    optimizer: str = "adam"
    lr: Optional[float] = None  #: chosen on validation (among ``lr_grid``, or by the tuning trials)
    lr_grid: list = field(default_factory=list)  #: the learning rates tried
    steps: int = 0  #: the optimizer budget (Adam steps or LBFGS iterations)
    best_step: Optional[int] = None  #: the step of the validation-best checkpoint
    steps_run: Optional[int] = None  #: steps taken (an early stop takes fewer than ``steps``)
    converged: Optional[bool] = None  #: False: the best checkpoint is in the last 5% of ``steps``
    options: dict = field(default_factory=dict)  #: the build options chosen on validation (grid size, activation...)
    trials: Optional[int] = None  #: tuning trials the row got (the same for every row of a run)
    lr_at_edge: Optional[bool] = None  #: the chosen learning rate is at an end of the range searched
    match: str = "params"  #: what ``budget`` counts: "params" or "flops" (forward FLOPs per sample)
    param_error: Optional[float] = None  #: abs(params - budget) / budget of the model trained (match "params")
    flops_error: Optional[float] = None  #: abs(FLOPs - budget) / budget of the model trained (match "flops")
    split_seed: Optional[int] = None  #: the seed that drew this run's data split
    # regression
    test_rmse: Optional[float] = None
    test_nrmse: Optional[float] = None
    test_mae: Optional[float] = None  #: mean absolute error (KANbeFair's reported metric)
    val_nrmse: Optional[float] = None
    # classification
    test_accuracy: Optional[float] = None
    test_macro_f1: Optional[float] = None
    test_cross_entropy: Optional[float] = None
    val_accuracy: Optional[float] = None
    final_train_loss: Optional[float] = None  #: training loss (standardized MSE or cross-entropy) at the last step
    step_ms: Optional[float] = None  #: median wall time of a training step (forward, backward, optimizer)
    step_ms_iqr: Optional[float] = None
    target: Optional[float] = None  #: the validation target (NRMSE at most, or accuracy at least)
    steps_to_target: Optional[int] = None  #: first evaluated step meeting the target
    time_to_target_s: Optional[float] = None  #: training seconds (evaluation excluded) until then
    train_s: Optional[float] = None  #: training seconds of the chosen run
    curve: list = field(default_factory=list)  #: [[step, validation metric], ...] of the chosen run
    error: Optional[str] = None
    error_kind: Optional[str] = None  #: diverged, crash, budget
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.impl

    @property
    def score(self) -> Optional[float]:
        """The task's headline error, lower is better: test NRMSE, or 1 - test accuracy."""
        if self.kind == "regression":
            return self.test_nrmse
        return None if self.test_accuracy is None else 1.0 - self.test_accuracy

    def fail(self, kind: str, message: str) -> "AccuracyResult":
        self.error_kind = kind
        self.error = " ".join(str(message).split())
        return self
