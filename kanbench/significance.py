"""The significance tests of :mod:`kanbench.compare`: two lists of independent units -> (ratio, p, verdict, note).

- :func:`compare_paired` -- rounds paired in time (the two sides of one A/B run): a one-sided
  Wilcoxon signed-rank test on the logarithms of the per-round ratios;
- :func:`compare_units` -- two separate runs: a one-sided Mann-Whitney U test on the units
  (per-round medians, normalized by the caller when asked).

A ratio of medians beyond ``threshold`` (or below its inverse) is tested; ``slower`` or
``faster`` needs p < ``alpha``, else ``not significant``. When the unit counts cannot reach
``alpha`` at all (smallest p 2^-n paired, 1/C(n+m, n) for U), the verdict is the threshold's
alone and the note says so.
"""

from __future__ import annotations

import math
from typing import Optional

from kanbench.stats import summarize


def _mann_whitney(new: list[float], base: list[float], alternative: str) -> Optional[float]:
    from scipy.stats import mannwhitneyu

    if len(new) < 2 or len(base) < 2:
        return None
    return float(mannwhitneyu(new, base, alternative=alternative).pvalue)


def min_p_paired(n: int) -> float:
    """The smallest one-sided p of a Wilcoxon signed-rank test on n pairs: 2^-n."""
    return 2.0**-n


def min_p_unpaired(n: int, m: int) -> float:
    """The smallest one-sided p of a Mann-Whitney U test with n and m units: 1 / C(n+m, n)."""
    return 1.0 / math.comb(n + m, n)


def _threshold_verdict(ratio: Optional[float], threshold: float) -> str:
    if ratio is None:
        return "unchanged"
    if ratio > threshold:
        return "slower"
    if ratio < 1.0 / threshold:
        return "faster"
    return "unchanged"


def compare_paired(base_rounds: list[float], new_rounds: list[float], threshold: float, alpha: float) -> tuple:
    """(ratio, p_value, verdict, note) from per-round medians of interleaved rounds."""
    from scipy.stats import wilcoxon

    logs = [math.log(n / b) for b, n in zip(base_rounds, new_rounds) if b > 0 and n > 0]
    if len(logs) < 2:
        return None, None, "unchanged", "no rounds"
    ratio = math.exp(summarize(logs)["median"])
    note = f"Wilcoxon over {len(logs)} paired rounds"
    if min_p_paired(len(logs)) >= alpha:
        return (
            ratio,
            None,
            _threshold_verdict(ratio, threshold),
            (
                f"{len(logs)} paired rounds cannot reach alpha {alpha:g} (smallest p {min_p_paired(len(logs)):.2g}): threshold-only"
            ),
        )
    if ratio > threshold:
        alternative, verdict = "greater", "slower"
    elif ratio < 1.0 / threshold:
        alternative, verdict = "less", "faster"
    else:
        return ratio, None, "unchanged", note
    p = float(wilcoxon(logs, alternative=alternative).pvalue)
    return ratio, p, (verdict if p < alpha else "not significant"), note


def compare_units(base: list[float], new: list[float], threshold: float, alpha: float) -> tuple:
    """(ratio, p_value, verdict, note) for two lists of independent units (round medians,
    already normalized if wanted): ratio of medians, one-sided Mann-Whitney U."""
    b, n = summarize(base), summarize(new)
    if not b["n"] or not n["n"] or b["median"] <= 0:
        return None, None, "unchanged", "no samples"
    ratio = n["median"] / b["median"]
    note = f"Mann-Whitney over {len(base)} vs {len(new)} round medians"
    if min_p_unpaired(len(base), len(new)) >= alpha:
        return (
            ratio,
            None,
            _threshold_verdict(ratio, threshold),
            (
                f"{len(base)} vs {len(new)} rounds cannot reach alpha {alpha:g} "
                f"(smallest p {min_p_unpaired(len(base), len(new)):.2g}): threshold-only"
            ),
        )
    if ratio > threshold:
        p = _mann_whitney(new, base, "greater")
        return ratio, p, ("slower" if p < alpha else "not significant"), note
    if ratio < 1.0 / threshold:
        p = _mann_whitney(new, base, "less")
        return ratio, p, ("faster" if p < alpha else "not significant"), note
    return ratio, None, "unchanged", note
