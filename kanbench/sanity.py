"""The sanity gate: cheap checks that a built model computes something trainable, before timing.

A benchmark of a broken layer is worthless and misleads, so every row is checked once,
right after ``build`` (a few forward/backward passes on one batch of the workload's data):

failures (the row is not timed unless ``--time-broken``):
- a gradient is NaN or infinite;
- the output is constant across the batch ("LayerNorm over out=1?");
- the backward disagrees with the forward: the directional derivative of
  ``sum(output * w)`` along a random input direction, by central differences in float64,
  differs from what autograd returns by more than 1% (checked on a float64 copy of the
  model, in the mode it is timed in, with every forward of the check under the same random
  state, so dropout draws one mask for all of them; skipped, with a note, when the model
  cannot run in float64);

loud failures (recorded, then left to the timing, which reports them with their own error
kind: crash, oom, nonfinite, bad-output-shape): the forward raises, the output has the wrong
shape ``(batch, out)``, the output is NaN or infinite;

warnings (timed, flagged in the table):
- trainable parameters that get no gradient (unused parameters inflate the count);
- the output does not change when every input is doubled (a normalization over the
  inputs: with 2 inputs, LayerNorm leaves about sign(x1 - x2)).

The gate leaves the global random state (CPU, and the model's CUDA devices) as it found it.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Optional

#: relative disagreement between autograd's and the finite-difference directional derivative
GRADIENT_TOLERANCE = 0.01
#: relative spread below which an output counts as constant across the batch
CONSTANT_TOLERANCE = 1e-6
#: median change of the output, relative to its spread over the batch, below which doubling
#: the inputs "changes nothing" (median, not max: LayerNorm's eps keeps the few samples with
#: x1 ~ x2 scale-dependent; the spread, not the size: a large constant bias must not hide a change)
SCALE_TOLERANCE = 1e-3


@dataclass
class SanityReport:
    """The outcome of :func:`check`: ``status`` is ``ok``, ``warn`` or ``fail``; reasons say why."""

    status: str = "ok"
    #: the failure is loud (the forward raised, NaN output, wrong shape): timing reports it
    #: with its own error kind (crash, oom, nonfinite, bad-output-shape), so the gate lets it through
    loud: bool = False
    failures: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)  #: checks that could not run, and why

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def reason(self) -> str:
        """One line: the failures, else the warnings ("" when ok)."""
        return "; ".join(self.failures or self.warnings)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SanityReport":
        return cls(**{k: d.get(k, v) for k, v in asdict(cls()).items()})

    def _finish(self) -> "SanityReport":
        self.status = "fail" if self.failures else ("warn" if self.warnings else "ok")
        return self


def _relative_spread(y) -> float:
    scale = float(y.abs().max()) + 1e-12
    return float((y - y.mean(dim=0, keepdim=True)).abs().max()) / scale


def _dead_parameters(model) -> list[str]:
    dead = []
    for name, p in model.named_parameters():
        if p.requires_grad and (p.grad is None or not bool(p.grad.ne(0).any())):
            dead.append(name)
    return dead


def _short_names(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


#: central-difference steps; the smallest error counts. A step that carries some inputs across a
#: kink (ReLU, a spline knot) errs by about the step times the kink's slope change: the MLP at
#: batch 512 of the seed pool was 1.5% off at 1e-5 -- a gate failure for a correct model --
#: and agrees at 1e-7. A wrong backward is off at every step alike.
GRADIENT_STEPS = (1e-5, 1e-7)
#: largest change of the output, relative to its size, between two forwards under the same
#: random state that still counts as "the same function" (float64 atomics reorder sums by ~1e-16)
DETERMINISM_TOLERANCE = 1e-9


def _cuda_devices(model, x) -> list[int]:
    """The CUDA device indices the model's tensors and ``x`` live on (whose random state to fork)."""
    import torch

    tensors = [x, *model.parameters(), *model.buffers()]
    return sorted({t.device.index or 0 for t in tensors if isinstance(t, torch.Tensor) and t.device.type == "cuda"})


def _reseed(seed: int, devices: list[int]) -> None:
    """Seed the CPU generator and those of ``devices`` alone (torch.manual_seed would seed every
    CUDA device, including ones outside the caller's fork_rng)."""
    import torch

    torch.random.default_generator.manual_seed(seed)
    for d in devices:
        with torch.cuda.device(d):
            torch.cuda.manual_seed(seed)


def gradient_error(model, x, seed: int = 0) -> Optional[float]:
    """Relative error of autograd's directional derivative against central differences, in float64
    (the smallest over :data:`GRADIENT_STEPS`).

    ``model``: any module taking ``x`` (batch, in); it is copied, not changed, and checked in its
    own mode (train or eval). Every forward of the comparison runs from the same random state
    (reseeded to ``seed``), so randomness in the forward (dropout) is the same in each (a forward
    that reseeding does not make repeatable is checked in eval mode); the global random state is
    restored afterwards. None when the copy cannot run in float64 (a model that
    hard-codes float32 tensors in its forward).
    """
    import torch

    try:
        m = copy.deepcopy(model).to(torch.float64)
    except Exception:
        return None
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x64 = x.detach().to(torch.float64)
    v = torch.randn(x64.shape, generator=gen, dtype=torch.float64).to(x.device)
    devices = _cuda_devices(m, x64)

    def f(inputs):
        _reseed(seed, devices)
        return m(inputs)

    try:
        with torch.random.fork_rng(devices=devices):
            with torch.no_grad():
                y = f(x64)
                again = f(x64)
            if float((again - y).abs().max()) > DETERMINISM_TOLERANCE * (float(y.abs().max()) + 1e-300):
                # randomness that reseeding the torch generators does not fix (Python's or numpy's
                # random, a generator of the model's own): fall back to eval mode for the check,
                # which turns dropout off (it may still fail if the forward stays random)
                m.eval()
                with torch.no_grad():
                    y = f(x64)
            w = torch.randn(y.shape, generator=gen, dtype=torch.float64).to(x.device)
            xr = x64.clone().requires_grad_(True)
            # allow_unused: an output that does not depend on the inputs has a zero derivative,
            # which is no reason to skip the check (that is reported as "does not run in float64")
            (grad,) = torch.autograd.grad((f(xr) * w).sum(), xr, allow_unused=True)
            analytic = float((grad * v).sum()) if grad is not None else 0.0
            errors = []
            for h in GRADIENT_STEPS:
                with torch.no_grad():
                    numeric = float(((f(x64 + h * v) * w).sum() - (f(x64 - h * v) * w).sum()) / (2 * h))
                errors.append(abs(analytic - numeric) / max(abs(numeric), abs(analytic), 1e-8))
    except Exception:
        return None
    return min(errors)


def check(model, x, out_features: int, target=None) -> SanityReport:
    """Run the gate on ``model`` with inputs ``x`` (batch, in); ``target`` (batch, out) for the loss.

    The model's parameter gradients are cleared again afterwards, and the global random state
    (CPU, and the CUDA devices of the model and ``x``) is restored: the gate's forwards through
    dropout do not shift what the timing draws.
    """
    import torch

    with torch.random.fork_rng(devices=_cuda_devices(model, x)):
        return _check(model, x, out_features, target)


def _check(model, x, out_features: int, target) -> SanityReport:
    """:func:`check`, without restoring the random state."""
    import torch

    report = SanityReport()
    batch = x.shape[0]
    model.zero_grad(set_to_none=True)
    try:
        y = model(x)
    except Exception as exc:
        report.failures.append(f"forward raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        report.loud = True
        return report._finish()
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (batch, out_features):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        report.failures.append(f"output shape {shape}, expected ({batch}, {out_features})")
        report.loud = True
        return report._finish()
    if not bool(torch.isfinite(y).all()):
        report.failures.append("output has NaN or inf")
        report.loud = True
        return report._finish()
    if batch > 1 and _relative_spread(y.detach().float()) < CONSTANT_TOLERANCE:
        report.failures.append("output constant across inputs (a LayerNorm over out=1?)")
    loss = ((y - target) ** 2).mean() if target is not None else (y**2).mean()
    if loss.requires_grad:  # an output that no parameter reaches: every parameter is reported without a gradient
        loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    if any(not bool(torch.isfinite(g).all()) for g in grads):
        report.failures.append("gradients have NaN or inf")
    dead = _dead_parameters(model)
    if dead and len(dead) == sum(1 for p in model.parameters() if p.requires_grad):
        report.failures.append("no trainable parameter gets a gradient")
    elif dead:
        report.warnings.append(f"zero or no gradient for {_short_names(dead)}")
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        y2 = model(2 * x)
    change = (y2 - y.detach()).abs().flatten().median()
    spread = float(y.detach().std()) if batch > 1 else 0.0
    if batch > 1 and not report.failures and float(change) <= SCALE_TOLERANCE * (spread + 1e-12):
        report.warnings.append("output unchanged when the inputs are doubled (a normalization over the inputs?)")
    if not report.failures:
        err = gradient_error(model, x)
        if err is None:
            report.notes.append("float64 gradient check skipped: the model does not run in float64")
        elif err > GRADIENT_TOLERANCE:
            report.failures.append(
                f"backward disagrees with the forward: directional derivative off by {100 * err:.0f}% (finite differences, float64)"
            )
    model.zero_grad(set_to_none=True)
    return report._finish()
