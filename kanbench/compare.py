"""Comparing two runs: ratios of medians and a significance test, per row and phase.

A row pair (same implementation, device and workload in BASE and NEW) gets, for
the forward and the backward phase, the ratio of medians NEW/BASE and a verdict:

- ``slower``  -- ratio > threshold AND a one-sided Mann-Whitney U test on the raw
  samples says NEW's samples are larger (p < alpha);
- ``faster``  -- ratio < 1/threshold AND the opposite one-sided test is significant;
- ``not significant`` -- the ratio crosses a threshold but the test does not agree;
- ``unchanged`` otherwise.

(asv's ``compare`` and Google Benchmark's ``compare.py`` use the same U test.) Without
raw samples on either side the verdict falls back to the threshold alone, and the row
says so.

Runs of the A/B mode also carry the median of every interleaved round. With
``test="paired"`` (the default, ``auto``, when both sides have them) the ratio is the
median of the per-round ratios and the test is a one-sided Wilcoxon signed-rank
test on their logarithms: a burst of load that hits a few rounds of one side moves
neither, where it can move the medians of the pooled samples.

``normalize="mlp"`` divides every sample by the median of the MLP row measured in the
same run on the same device and workload before comparing: a machine that is 30%
slower today slows the MLP as much as the others, and the ratios stay put.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from kanbench.baseline import BASELINE
from kanbench.records import (
    ResultsDocument,
    RowResult,
    row_label,
    workload_key,  # noqa: F401  (re-exported)
)
from kanbench.stats import summarize

PHASES = ("forward", "backward")
MARKS = {"slower": "+", "faster": "-", "not significant": "~", "unchanged": " ", "failed": "x", "fixed": " "}


class CompareError(ValueError):
    """Inputs that cannot be compared (the message says why); exit status 2."""


def _baseline_medians(doc: ResultsDocument) -> dict:
    """{(cpu|gpu, workload key): {phase: MLP median}} for normalization."""
    out: dict = {}
    for r in doc.rows():
        if r.is_baseline and not r.failed:
            out[r.key[1:]] = {p: r.median(p) for p in PHASES}
    return out


@dataclass
class PhaseComparison:
    """The verdict for one row and phase: both medians and spreads, the ratio, the p-value."""

    impl: str
    device: str
    workload: str
    phase: str
    base_median: Optional[float]
    new_median: Optional[float]
    base_spread: Optional[float]
    new_spread: Optional[float]
    ratio: Optional[float]
    p_value: Optional[float]
    verdict: str
    note: str = ""
    label: str = ""

    @property
    def mark(self) -> str:
        return MARKS[self.verdict]


@dataclass
class Comparison:
    """All verdicts of comparing two documents, with the options that produced them."""

    rows: list[PhaseComparison] = field(default_factory=list)
    only_base: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    threshold: float = 1.10
    alpha: float = 0.01
    normalize: Optional[str] = None
    base_name: str = "BASE"
    new_name: str = "NEW"

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)

    def render(self, only_changed: bool = False) -> str:
        """Markdown (see :func:`kanbench.render.comparison_table`)."""
        from kanbench.render import comparison_table

        return comparison_table(self, only_changed)

    @property
    def regressed(self) -> bool:
        return any(r.verdict in ("slower", "failed") for r in self.rows)


def _mann_whitney(new: list[float], base: list[float], alternative: str) -> Optional[float]:
    from scipy.stats import mannwhitneyu

    if len(new) < 2 or len(base) < 2:
        return None
    return float(mannwhitneyu(new, base, alternative=alternative).pvalue)


def compare_paired(base_rounds: list[float], new_rounds: list[float], threshold: float, alpha: float) -> tuple:
    """(ratio, p_value, verdict, note) from per-round medians of interleaved rounds."""
    from scipy.stats import wilcoxon

    logs = [math.log(n / b) for b, n in zip(base_rounds, new_rounds) if b and n and b > 0 and n > 0]
    if len(logs) < 2:
        return None, None, "unchanged", "no rounds"
    ratio = math.exp(summarize(logs)["median"])
    if ratio > threshold or ratio < 1.0 / threshold:
        alternative = "greater" if ratio > 1 else "less"
        p = float(wilcoxon(logs, alternative=alternative).pvalue) if any(logs) else 1.0
        verdict = ("slower" if ratio > 1 else "faster") if p < alpha else "not significant"
        return ratio, p, verdict, f"paired over {len(logs)} rounds"
    return ratio, None, "unchanged", f"paired over {len(logs)} rounds"


def compare_phase(base: list[float], new: list[float], threshold: float, alpha: float) -> tuple:
    """(ratio, p_value, verdict, note) for two sample lists (already normalized if wanted)."""
    b, n = summarize(base), summarize(new)
    if not b["n"] or not n["n"] or not b["median"] or b["median"] <= 0:
        return None, None, "unchanged", "no samples"
    ratio = n["median"] / b["median"]
    if ratio > threshold:
        p = _mann_whitney(new, base, "greater")
        if p is None:
            return ratio, None, "slower", "too few raw samples: threshold-only verdict"
        return ratio, p, ("slower" if p < alpha else "not significant"), ""
    if ratio < 1.0 / threshold:
        p = _mann_whitney(new, base, "less")
        if p is None:
            return ratio, None, "faster", "too few raw samples: threshold-only verdict"
        return ratio, p, ("faster" if p < alpha else "not significant"), ""
    return ratio, None, "unchanged", ""


def compare_documents(
    base_doc: ResultsDocument,
    new_doc: ResultsDocument,
    threshold: float = 1.10,
    alpha: float = 0.01,
    normalize: Optional[str] = None,
    impls: Optional[list[str]] = None,
    test: str = "auto",
) -> Comparison:
    """Every row present in both documents, each phase judged by the first step that applies:

    1. :func:`_failed_verdict` -- a row that failed on either side;
    2. :func:`_paired_verdict` -- interleaved rounds on both sides (A/B runs): Wilcoxon on per-round ratios;
    3. :func:`_threshold_only_verdict` -- no raw samples on a side: the ratio of medians alone;
    4. :func:`_sampled_verdict` -- Mann-Whitney U on the raw samples, first divided by each
       run's MLP median with ``normalize="mlp"`` (:func:`_normalized_samples`).
    """
    _check_options(threshold, alpha, normalize, test)
    base_rows = {r.key: r for r in base_doc.rows()}
    new_rows = {r.key: r for r in new_doc.rows()}
    if impls:
        base_rows = {k: v for k, v in base_rows.items() if k[0] in impls}
        new_rows = {k: v for k, v in new_rows.items() if k[0] in impls}
    common = [k for k in base_rows if k in new_rows]
    out = Comparison(
        threshold=threshold,
        alpha=alpha,
        normalize=normalize,
        base_name=_doc_name(base_doc, "BASE"),
        new_name=_doc_name(new_doc, "NEW"),
    )
    out.only_base = [_key_label(k) for k in base_rows if k not in new_rows]
    out.only_new = [_key_label(k) for k in new_rows if k not in base_rows]
    if not common:
        raise CompareError(
            "no rows to compare: BASE and NEW share no (implementation, device, workload); "
            f"BASE has {', '.join(out.only_base) or 'nothing'}; NEW has {', '.join(out.only_new) or 'nothing'}"
        )
    norms = (_baseline_medians(base_doc), _baseline_medians(new_doc)) if normalize else None
    for key in common:
        b_rec, n_rec = base_rows[key], new_rows[key]
        if normalize and key[0] == BASELINE:
            continue  # the MLP normalized by itself is 1.0
        for phase in PHASES:
            pc = PhaseComparison(
                impl=key[0],
                device=key[1],
                workload=key[2],
                phase=phase,
                base_median=None,
                new_median=None,
                base_spread=None,
                new_spread=None,
                ratio=None,
                p_value=None,
                verdict="unchanged",
                label=_key_label(key),
            )
            if not (
                _failed_verdict(pc, b_rec, n_rec)
                or _paired_verdict(pc, b_rec, n_rec, test, normalize, threshold, alpha)
                or _threshold_only_verdict(pc, b_rec, n_rec, norms, threshold)
            ):
                _sampled_verdict(pc, b_rec, n_rec, norms, threshold, alpha)
            out.rows.append(pc)
    return out


def _check_options(threshold: float, alpha: float, normalize: Optional[str], test: str) -> None:
    if threshold <= 1.0:
        raise CompareError(f"threshold must be above 1.0 (e.g. 1.10 for 10%), got {threshold}")
    if not 0 < alpha < 1:
        raise CompareError(f"alpha must be between 0 and 1, got {alpha}")
    if normalize not in (None, "mlp"):
        raise CompareError(f"unknown normalization {normalize!r}; use 'mlp'")
    if test not in ("auto", "mw", "paired"):
        raise CompareError(f"unknown test {test!r}; use auto, mw or paired")


def _failed_verdict(pc: PhaseComparison, b_rec: RowResult, n_rec: RowResult) -> bool:
    """failed (newly failing), fixed, or failed in both; False when both sides measured the phase."""
    if not (b_rec.failed or n_rec.failed or b_rec.median(pc.phase) is None or n_rec.median(pc.phase) is None):
        return False
    if n_rec.failed and not b_rec.failed:
        pc.verdict, pc.note = "failed", f"fails in NEW: {n_rec.error}"
    elif b_rec.failed and not n_rec.failed:
        pc.verdict, pc.note = "fixed", f"failed in BASE: {b_rec.error}"
    else:
        pc.verdict, pc.note = "unchanged", "failed in both"
    return True


def _set_medians(pc: PhaseComparison, base: list[float], new: list[float]) -> None:
    b, n = summarize(base), summarize(new)
    pc.base_median, pc.new_median = b["median"], n["median"]
    pc.base_spread, pc.new_spread = b["iqr"], n["iqr"]


def _paired_verdict(pc, b_rec: RowResult, n_rec: RowResult, test, normalize, threshold, alpha) -> bool:
    """Interleaved rounds on both sides (same count): the paired test. False when not applicable."""
    b_rounds, n_rounds = b_rec.round_medians(pc.phase), n_rec.round_medians(pc.phase)
    paired = test != "mw" and not normalize and len(b_rounds) == len(n_rounds) >= 2
    if not paired:
        if test == "paired":
            pc.note = "no interleaved rounds to pair: Mann-Whitney on the samples"
        return False
    _set_medians(pc, b_rec.raw(pc.phase), n_rec.raw(pc.phase))
    pc.ratio, pc.p_value, pc.verdict, pc.note = compare_paired(b_rounds, n_rounds, threshold, alpha)
    return True


def _normalized_samples(pc, b_rec: RowResult, n_rec: RowResult, norms) -> Optional[tuple[list, list]]:
    """Both sides' samples (or medians when samples are missing), divided by their run's MLP median
    when ``norms`` is given; None (with the row's note set) when a side has no MLP row."""
    base_s = b_rec.raw(pc.phase) or [b_rec.median(pc.phase)]
    new_s = n_rec.raw(pc.phase) or [n_rec.median(pc.phase)]
    if norms is None:
        return base_s, new_s
    bm = norms[0].get(b_rec.key[1:], {}).get(pc.phase)
    nm = norms[1].get(n_rec.key[1:], {}).get(pc.phase)
    if not bm or not nm:
        pc.verdict, pc.note = "unchanged", "no MLP row in the same run to normalize by"
        return None
    return [v / bm for v in base_s], [v / nm for v in new_s]


def _threshold_only_verdict(pc, b_rec: RowResult, n_rec: RowResult, norms, threshold) -> bool:
    """A side without raw samples: the ratio of medians against the threshold, no test."""
    if b_rec.raw(pc.phase) and n_rec.raw(pc.phase):
        return False
    pair = _normalized_samples(pc, b_rec, n_rec, norms)
    if pair is None:
        return True
    _set_medians(pc, *pair)
    ratio = pc.new_median / pc.base_median if pc.base_median else None
    if ratio is None:
        verdict = "unchanged"
    elif ratio > threshold:
        verdict = "slower"
    elif ratio < 1 / threshold:
        verdict = "faster"
    else:
        verdict = "unchanged"
    pc.ratio, pc.verdict, pc.note = ratio, verdict, "raw samples missing: threshold-only verdict"
    return True


def _sampled_verdict(pc, b_rec: RowResult, n_rec: RowResult, norms, threshold, alpha) -> None:
    """Mann-Whitney U on both sides' raw samples (normalized when ``norms``)."""
    pair = _normalized_samples(pc, b_rec, n_rec, norms)
    if pair is None:
        return
    _set_medians(pc, *pair)
    note = pc.note
    pc.ratio, pc.p_value, pc.verdict, pc.note = compare_phase(pair[0], pair[1], threshold, alpha)
    pc.note = pc.note or note


def _doc_name(doc: ResultsDocument, default: str) -> str:
    return doc.name or doc.short_commit or default


def _key_label(key: tuple) -> str:
    impl, device, workload = key
    return f"{row_label(impl, device)} [{workload}]"


def render(comparison: Comparison, only_changed: bool = False) -> str:
    """Markdown in the style of ``asv compare`` (kept for callers of ``compare.render``)."""
    return comparison.render(only_changed)
