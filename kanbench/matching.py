"""``--match params|flops``: choose each implementation's hidden widths for an equal budget.

A fair comparison of KAN layers fixes the parameter count (KANbeFair, arXiv 2407.16674,
does it by hand). Because every spec's ``build`` takes the widths, this works for any
plugin: for a workload ``[in, h1, ..., out]`` we keep ``in`` and ``out``, scale every hidden
width with the first (``h_i = round(h1' * h_i / h1)``), and search ``h1'`` for the count
closest to the target:

- ``params``: trainable parameters of the built model (built once per candidate on the
  CPU, in float32; counts are cached);
- ``flops``: the spec's analytic forward FLOPs per sample (specs without a FLOPs model are
  not matched, and say so).

The default target is our B-spline KAN (G=5, k=3) at the workload's widths. The search
assumes the count grows with the width (true for every adapter here) and takes the
nearer of the two widths around the target. A spec's ``match_options`` are used for the
search and recorded on the match, and the matched row is built with them: the MLP's are
``hidden_factor=1``, so its hidden width moves one unit at a time (it used to move in steps of
10, which left 2-input MLPs at 121 parameters against a budget of 141). What remains is each
family's own granularity (one hidden unit of a KAN costs (in + out) (G + k + 1) parameters),
recorded as the match's error; where that is over :data:`TOLERANCE` and the spec takes a grid
size, the matcher also moves the grid by up to two (``GRID_STEPS``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

#: what "within tolerance" means in the table (granularity may not allow it)
TOLERANCE = 0.02
#: the implementation whose count at the workload's widths is the default target
DEFAULT_REFERENCE = "splines-better_kan"
MAX_HIDDEN = 1 << 17
#: the narrowest hidden layer tried (fast-kan refuses a LayerNorm over one input)
MIN_HIDDEN = 2


class MatchError(ValueError):
    """A --match argument or target that cannot be used."""


@dataclass(frozen=True)
class MatchRequest:
    """What --match asked for: the metric and, optionally, an explicit target."""

    metric: str  #: "params" or "flops"
    target: Optional[float] = None  #: None: the reference implementation's count at the workload

    @classmethod
    def parse(cls, text: str) -> "MatchRequest":
        metric, _, value = text.partition("=")
        metric = metric.strip().lower()
        if metric not in ("params", "flops"):
            raise MatchError(f"--match takes params, params=N, flops or flops=N, not {text!r}")
        if not value:
            return cls(metric)
        try:
            target = float(value)
        except ValueError:
            raise MatchError(f"--match {metric}=N needs a number, not {value!r}") from None
        if target <= 0:
            raise MatchError(f"--match target must be positive, got {value}")
        return cls(metric, target)


@dataclass
class Match:
    """What the search chose for one implementation."""

    impl: str
    metric: str
    target: float
    widths: tuple
    value: float
    options: dict = field(default_factory=dict)  #: the build options searched with (and to build with)

    @property
    def error(self) -> float:
        """Relative distance from the target (0.01 = 1%)."""
        return abs(self.value - self.target) / self.target

    @property
    def within_tolerance(self) -> bool:
        return self.error <= TOLERANCE

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["error"] = round(self.error, 5)
        return d


def scaled_widths(nominal: Sequence[int], first_hidden: int) -> tuple:
    """``nominal`` with its hidden widths scaled so the first is ``first_hidden`` (in/out kept)."""
    nominal = tuple(int(w) for w in nominal)
    if len(nominal) < 3:
        return nominal
    h1 = nominal[1]
    hidden = [max(1, round(first_hidden * w / h1)) for w in nominal[1:-1]]
    return (nominal[0], *hidden, nominal[-1])


def trainable_parameters(spec, widths: Sequence[int], options: Optional[dict] = None) -> int:
    """Trainable parameters of ``spec.build(widths)`` on the CPU in float32."""
    import torch

    from kanbench.measure import count_parameters

    model = spec.build(tuple(widths), device=torch.device("cpu"), dtype=torch.float32, **(options or {}))
    return count_parameters(model)[1]


def counter(spec, metric: str, options: Optional[dict] = None) -> Callable[[Sequence[int]], float]:
    """The function a search minimizes the distance of: params (built) or FLOPs (analytic)."""
    if metric == "flops":
        if spec.flops is None:
            raise MatchError(f"{spec.name} has no FLOPs model")
        return lambda widths: float(spec.flops(tuple(widths), **(options or {})))
    return lambda widths: float(trainable_parameters(spec, widths, options))


def search(nominal: Sequence[int], target: float, count: Callable[[Sequence[int]], float]) -> tuple:
    """The scaled widths whose count is nearest ``target``; returns (widths, count)."""
    cache: dict = {}

    def at(h: int) -> float:
        if h not in cache:
            cache[h] = count(scaled_widths(nominal, h))
        return cache[h]

    if len(tuple(nominal)) < 3:
        widths = tuple(nominal)
        return widths, count(widths)
    lo, hi = MIN_HIDDEN, MIN_HIDDEN
    while at(hi) < target:
        lo, hi = hi, hi * 2
        if hi > MAX_HIDDEN:
            raise MatchError(f"no width up to {MAX_HIDDEN} reaches {target:g}")
    # smallest h in [lo, hi] with at(h) >= target
    while lo < hi:
        mid = (lo + hi) // 2
        if at(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    best = min((h for h in (lo - 1, lo) if h >= MIN_HIDDEN), key=lambda h: (abs(at(h) - target), h))
    widths, value = scaled_widths(nominal, best), at(best)
    # deeper shapes: the later hidden widths move in coarse steps with the first; try each one unit off
    for i in range(2, len(widths) - 1):
        for delta in (-1, 1):
            other = list(widths)
            other[i] = max(MIN_HIDDEN, other[i] + delta)
            n = count(tuple(other))
            if abs(n - target) < abs(value - target):
                widths, value = tuple(other), n
    return widths, value


#: grid-like options (their spec's name -> the value a build takes by default) the matcher may move by
#: up to GRID_STEPS when the width alone cannot come within TOLERANCE (small networks: one hidden unit
#: of a [1, h, 1] KAN at grid 5 is 18 parameters, 19% of a 96-parameter budget)
GRID_OPTIONS = {"grid_size": 5, "gridsize": 5, "num_grids": 8, "grid": 5, "num_wavelets": 5, "degree": 3}
GRID_STEPS = 2


def _default_option(spec, name: str) -> int:
    """The value ``spec.build`` takes for ``name`` when none is given (its signature's default)."""
    import inspect

    try:
        default = inspect.signature(spec.build).parameters[name].default
    except (KeyError, TypeError, ValueError):
        default = inspect.Parameter.empty
    return int(default) if isinstance(default, int) and not isinstance(default, bool) else GRID_OPTIONS[name]


def _expand_depth(nominal: Sequence[int], options: dict) -> tuple:
    """With a ``hidden_layers`` option (the MLP's depth), the nominal shape with that many hidden layers
    of its first hidden width, so that the search can move each later one by a unit."""
    depth = options.get("hidden_layers")
    nominal = tuple(nominal)
    if not depth or len(nominal) < 3 or len(nominal) - 2 == int(depth):
        return nominal
    return (nominal[0], *[nominal[1]] * int(depth), nominal[-1])


def match(spec, nominal: Sequence[int], target: float, metric: str, options: Optional[dict] = None) -> Match:
    """Search ``spec``'s widths for ``target`` (see :func:`search`), built with ``spec.match_options``
    and ``options`` (the latter win). Where the nearest width is still off by more than
    :data:`TOLERANCE` and the spec takes a grid size (or another basis size), sizes within
    ``GRID_STEPS`` of the asked one are tried, nearest first, then smaller ones down to 2 while the
    narrowest network is still over the budget; the first within tolerance, or else the closest,
    wins (the match records the size it used)."""
    merged = {**dict(getattr(spec, "match_options", {}) or {}), **(options or {})}
    nominal = _expand_depth(nominal, merged)
    widths, value = search(nominal, target, counter(spec, metric, merged))
    best = Match(spec.name, metric, float(target), tuple(widths), float(value), merged)
    grid = next((name for name in GRID_OPTIONS if name in getattr(spec, "options", ())), None)
    if best.within_tolerance or grid is None:
        return best
    asked = int(merged.get(grid, _default_option(spec, grid)))
    # the nearest sizes first; smaller ones as far as 2 when even the narrowest network overshoots the
    # budget (a trial's grid 20 at a 96-parameter budget), so every trial trains near the budget
    for g in sorted(range(2, asked + GRID_STEPS + 1), key=lambda g: (abs(g - asked), g)):
        if g == asked:
            continue
        if abs(g - asked) > GRID_STEPS and best.value < target:
            break  # under budget already: a smaller basis only moves further away
        tried = {**merged, grid: g}
        try:
            widths, value = search(nominal, target, counter(spec, metric, tried))
        except MatchError:
            continue
        candidate = Match(spec.name, metric, float(target), tuple(widths), float(value), tried)
        if candidate.error < best.error - 1e-12:
            best = candidate
        if best.within_tolerance:
            break
    return best


def default_target(registry, nominal: Sequence[int], metric: str) -> float:
    """The reference implementation's count (params or FLOPs) at the workload's widths."""
    spec = registry.get(DEFAULT_REFERENCE).spec
    if spec is None:
        raise MatchError(f"the reference implementation {DEFAULT_REFERENCE} could not be loaded")
    return counter(spec, metric)(tuple(nominal))


def match_all(registry, impls: Sequence[str], nominal: Sequence[int], request: MatchRequest, options=None):
    """Match every implementation; returns ({impl: Match}, {impl: reason it was not matched})."""
    target = request.target or default_target(registry, nominal, request.metric)
    matches: dict = {}
    unmatched: dict = {}
    for impl in impls:
        spec = registry.get(impl).spec
        try:
            matches[impl] = match(spec, nominal, target, request.metric, options)
        except MatchError as exc:
            unmatched[impl] = str(exc)
        except Exception as exc:  # a build that fails at some width: that row is measured as given
            unmatched[impl] = f"matching failed ({type(exc).__name__}: {exc})"
    return matches, unmatched
