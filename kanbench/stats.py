"""Robust summaries of timing samples: median, quartiles, IQR, MAD."""

from __future__ import annotations

import math
from typing import Sequence


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default method)."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    pos = (n - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac


def summarize(values: Sequence[float]) -> dict:
    """median, q1, q3, iqr, mad (median absolute deviation, unscaled), min, n."""
    v = sorted(float(x) for x in values)
    if not v:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "iqr": math.nan, "mad": math.nan, "min": math.nan, "n": 0}
    med = quantile(v, 0.5)
    q1, q3 = quantile(v, 0.25), quantile(v, 0.75)
    mad = quantile(sorted(abs(x - med) for x in v), 0.5)
    return {"median": med, "q1": q1, "q3": q3, "iqr": q3 - q1, "mad": mad, "min": v[0], "n": len(v)}


def geometric_mean(values: Sequence[float]) -> float:
    vals = [float(x) for x in values if x is not None and math.isfinite(x) and x > 0]
    if not vals:
        return math.nan
    return math.exp(sum(math.log(x) for x in vals) / len(vals))
