"""Published speed claims of public KAN implementations, checked against what a run measured.

Each :class:`Claim` quotes its upstream (the sentence, where it is written), names what it compares
against, the phase it speaks of, and the device it was measured on. :func:`check` finds both
implementations in a results document and reports the measured factor (the other row's time over
the claimant's, paired by interleaved round like every ratio of the tables, with a 95% interval
from the rounds) next to the claimed one. A claim about GPUs is "not measurable here" unless the
document has GPU rows of both. A claim holds when its factor lies within the interval or below it
(the measured speed-up is at least the claimed one) -- read "holds" as "not contradicted here".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from kanbench.records import ResultsDocument, RowResult


@dataclass(frozen=True)
class Claim:
    """One published speed claim: ``impl`` is ``factor`` times faster than ``versus``."""

    impl: str
    versus: str
    factor: float  #: claimed speed-up (versus's time over impl's)
    phase: str  #: "forward" or "training step" (forward + backward)
    device: str  #: "gpu", "cpu" or "any" (as the claim was measured)
    quote: str  #: the sentence, verbatim
    where: str  #: the file (and line) it is written in, at the pinned revision
    setting: str = ""  #: the shape or benchmark the claim was measured at, when stated


#: claims quoted from the pinned upstream READMEs (kanbench/sources.py's revisions)
CLAIMS: tuple = (
    Claim(
        "fastkan",
        "effkan",
        3.33,
        "forward",
        "gpu",
        "The forward time of FaskKAN is 3.33x faster than efficient KAN",
        "ZiyaoLi/fast-kan README.md, line 7",
        "their notebook, 742 us -> 223 us on a V100",
    ),
    Claim(
        "fasterkan",
        "fastkan",
        1.5,
        "forward",
        "any",
        "The forward time of FaskerKAN is 1.5x faster than fast-kan",
        "AthanasiosDelis/faster-kan README.md, line 17",
    ),
    Claim(
        "inkan",
        "effkan",
        2.8,
        "forward",
        "any",
        "2.8--5.4x lower forward-pass latency than recursive implementations",
        "inkan 0.5.2 package description (PyPI), line 51 (2.8x, the low end)",
    ),
    Claim(
        "flashkan",
        "effkan",
        6.0,
        "forward",
        "gpu",
        "6-15x faster than standard Cox-de Boor implementations (PyKAN, efficient-kan)",
        "flashkan 0.2.0 package description (PyPI), line 33 (6x, the low end)",
        "MNIST and CIFAR-10 shapes, Apple M-series GPU (MPS), batch 256",
    ),
    Claim(
        "flashkan",
        "fastkan",
        1.0,
        "forward",
        "gpu",
        "faster than Gaussian RBF alternatives (FastKAN)",
        "flashkan 0.2.0 package description (PyPI), line 33",
        "Apple M-series GPU (MPS), batch 256",
    ),
    Claim(
        "sinekan",
        "effkan",
        4.0,
        "training step",
        "any",
        "substantial speed increase on the order of 4-8 times",
        "ereinha/SineKAN README.md, line 10 (against B-spline KANs; 4x, the low end)",
        "MNIST",
    ),
    Claim(
        "relukan",
        "pykan",
        20.0,
        "training step",
        "any",
        "20 times faster and two orders of magnitude more accurate than the original KAN",
        "quiqi/relu_kan README.md, line 4",
    ),
)

PHASES = {"forward": ("forward",), "training step": ("forward", "backward")}


@dataclass
class Verdict:
    """A claim against one (workload, device) of a results document."""

    claim: Claim
    workload: str
    device: str
    measured: Optional[float] = None  #: versus's time over impl's (median of per-round ratios)
    low: Optional[float] = None
    high: Optional[float] = None
    status: str = "not measured"  #: holds, does not hold, not measured, not measurable here

    def line(self) -> str:
        c = self.claim
        head = f"{c.impl}: claimed {c.factor:g}x faster than {c.versus} ({c.phase}, {c.device})"
        if self.measured is None:
            return f"{head}; {self.status} ({self.workload} on {self.device})"
        interval = f" [{self.low:.2f}-{self.high:.2f}]" if self.low is not None else ""
        return f"{head}; measured {self.measured:.2f}x{interval} at {self.workload} on {self.device}: {self.status}"


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple:
    """A distribution-free interval for the median of ``values`` (binomial order statistics);
    (min, max) when there are too few values for the confidence asked."""
    from scipy.stats import binom

    v = sorted(values)
    n = len(v)
    if n == 0:
        return None, None
    k = int(binom.ppf((1 - confidence) / 2, n, 0.5))  # lower order statistic (0-based: k - 1)
    lo = max(k - 1, 0)
    hi = min(n - k, n - 1)
    return v[lo], v[hi]


def summed_round_ratios(row: RowResult, base: RowResult, phases: tuple) -> list[float]:
    """Per interleaved round, ``row``'s time over ``base``'s (the ``phases`` summed; ``base``'s rounds as
    measured beside ``row``, :meth:`RowResult.paired_rounds_of`); [] when the rounds do not line up."""
    mine = [row.round_medians(p) for p in phases]
    theirs = [row.paired_rounds_of(base, p) for p in phases]
    n = len(mine[0])
    if not n or any(len(x) != n for x in mine + theirs):
        return []
    return [sum(m[i] for m in mine) / sum(t[i] for t in theirs) for i in range(n)]


def _speedup(claimant: RowResult, versus: RowResult, phases: tuple) -> tuple:
    """(median, low, high) of versus's time over claimant's, per interleaved round when they line up."""
    per_round = summed_round_ratios(versus, claimant, phases)
    if per_round:
        s = sorted(per_round)
        mid = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
        lo, hi = median_interval(s)
        return mid, lo, hi
    ratio = claimant.ratio_to(versus, phases)
    return (1 / ratio if ratio else None), None, None


def check(doc: ResultsDocument, claims: Sequence[Claim] = CLAIMS) -> list[Verdict]:
    """Every claim against every (workload, device) of ``doc`` that has a row of the claimant."""
    from kanbench.records import device_kind

    groups: dict = {}
    for r in doc.rows():
        groups.setdefault((r.workload_key, r.device), {})[r.impl] = r
    out = []
    for (workload, device), rows in groups.items():
        kind = "gpu" if device_kind(device).startswith("gpu") else "cpu"
        for claim in claims:
            if claim.impl not in rows:
                continue
            v = Verdict(claim, workload, device)
            if claim.device not in ("any", kind):
                v.status = f"not measurable here (a {claim.device.upper()} claim; no {claim.device.upper()} rows)"
            elif claim.versus not in rows:
                v.status = f"not measured ({claim.versus} not in this run)"
            else:
                a, b = rows[claim.impl], rows[claim.versus]
                if a.failed or b.failed or not a.measured or not b.measured:
                    v.status = "not measured (a row failed)"
                else:
                    v.measured, v.low, v.high = _speedup(a, b, PHASES[claim.phase])
                    top = v.high if v.high is not None else v.measured
                    v.status = "holds" if v.measured is not None and claim.factor <= top else "does not hold"
            out.append(v)
    return out


def render(verdicts: Sequence[Verdict]) -> str:
    """The claims as markdown lines, each with its quote and source."""
    lines = []
    for v in verdicts:
        c = v.claim
        lines.append(f'- {v.line()} -- "{c.quote}" ({c.where}{"; " + c.setting if c.setting else ""})')
    return "\n".join(lines)
