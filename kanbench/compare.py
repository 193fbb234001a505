"""Comparing two runs: ratios of medians and a significance test, per row and phase.

The independent unit is a *round* of an interleaved run (a chunk of steps measured
between the other rows' chunks, by one of several worker processes), never a single
step: thousands of steps of one process are autocorrelated, and a test that took them
as independent would call a few percent of drift significant (pyperf's reason for
worker processes). A row pair (same implementation, device and workload, compile,
options and threads in BASE and NEW) gets, for the forward and the backward phase:

- ``slower``  -- ratio of medians NEW/BASE > threshold AND a one-sided test on the
  units says NEW is larger (p < alpha);
- ``faster``  -- ratio < 1/threshold AND the opposite one-sided test is significant;
- ``not significant`` -- the ratio crosses a threshold but the test does not agree;
- ``unchanged`` otherwise.

The test: for the two sides of one A/B run (``kanbench ab``), whose rounds are paired in
time, a one-sided Wilcoxon signed-rank test on the logarithms of the per-round ratios;
for two separate files, a one-sided Mann-Whitney U test on the per-round medians (asv's
``compare`` and Google Benchmark's ``compare.py`` use the same U test, on samples). Rows
measured by one process without rounds (``--mode sequential``, files from before
interleaving) have no independent units: they get a threshold-only verdict, and say so.
Before any test, the smallest p-value the unit counts allow (2^-n paired, 1/C(n+m, n)
for U) is checked against alpha; a row that cannot reach it says so, threshold-only.

``normalize="mlp"`` divides every unit by the median of the MLP row measured in the
same run on the same device and workload before comparing: a machine that is 30%
slower today slows the MLP as much as the others, and the ratios stay put.
``normalize="auto"`` (the command's default) does so for two separate runs whose rows
all have their MLP, and compares the two sides of one A/B run on absolute times (their
rounds are paired in time); :func:`_auto_normalize` says which in ``Comparison.notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from kanbench.baseline import BASELINE
from kanbench.records import (
    ResultsDocument,
    RowResult,
    row_label,
    workload_key,  # noqa: F401  (re-exported)
)
from kanbench.significance import (  # noqa: F401  (re-exported: the tests on two lists of units)
    _mann_whitney,
    _threshold_verdict,
    compare_paired,
    compare_units,
    min_p_paired,
    min_p_unpaired,
)
from kanbench.stats import summarize

PHASES = ("forward", "backward")
MARKS = {"slower": "+", "faster": "-", "not significant": "~", "unchanged": " ", "failed": "x", "fixed": " "}


class CompareError(ValueError):
    """Inputs that cannot be compared (the message says why); exit status 2."""


def _baseline_key(r: RowResult) -> tuple:
    """The MLP row that normalizes ``r``: same device, workload and threads (the MLP has no options)."""
    return (r.key[1], r.key[2], r.threads)


def _baselines(doc: ResultsDocument) -> dict:
    """{(device kind, workload key, threads): the MLP row} that normalizes rows of that key."""
    return {_baseline_key(r): r for r in doc.rows() if r.is_baseline and not r.failed and not r.compile}


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
    verdict: str = "unchanged"  #: every verdict step sets it
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
    #: lines the reader must see first (e.g. the files come from different machines)
    warnings: list[str] = field(default_factory=list)
    #: how the comparison was made, shown under the table (e.g. what ``normalize="auto"`` chose)
    notes: list[str] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)

    def render(self, only_changed: bool = False) -> str:
        """Markdown (see :func:`kanbench.render.comparison_table`)."""
        from kanbench.render import comparison_table

        return comparison_table(self, only_changed)

    @property
    def regressed(self) -> bool:
        return any(r.verdict in ("slower", "failed") for r in self.rows)


def compare_documents(
    base_doc: ResultsDocument,
    new_doc: ResultsDocument,
    threshold: float = 1.10,
    alpha: float = 0.01,
    normalize: Optional[str] = None,
    impls: Optional[list[str]] = None,
    test: str = "auto",
    strict: bool = False,
) -> Comparison:
    """Every row present in both documents, each phase judged by the first step that applies:

    1. :func:`_failed_verdict` -- a row that failed on either side;
    2. :func:`_paired_verdict` -- the two sides of one A/B run: Wilcoxon on per-round ratios;
    3. :func:`_normalized_units` -- each side's units (round medians), divided by its run's
       MLP median when normalizing; a side without its MLP ends here, "unchanged", with a note;
    4. :func:`_threshold_only_verdict` -- a side without rounds (one process): the ratio of medians alone;
    5. :func:`_units_verdict` -- Mann-Whitney U on the units of step 3.
    """
    _check_options(threshold, alpha, normalize, test)
    base_rows = {r.key: r for r in base_doc.rows()}
    new_rows = {r.key: r for r in new_doc.rows()}
    if impls:
        base_rows = {k: v for k, v in base_rows.items() if k[0] in impls}
        new_rows = {k: v for k, v in new_rows.items() if k[0] in impls}
    common = [k for k in base_rows if k in new_rows]
    # the two sides of one A/B run took their rounds in turn: round i of each is paired in time
    in_time = _in_time(base_doc, new_doc)
    baselines = (_baselines(base_doc), _baselines(new_doc))
    auto_notes: list[str] = []
    if normalize == "auto":
        normalize, auto_notes = _auto_normalize(base_rows, new_rows, common, baselines, in_time or test == "paired")
    differences = machine_differences(base_doc, new_doc)
    if differences and not normalize and strict:
        raise CompareError(
            "BASE and NEW were measured on different machines or software (" + "; ".join(differences) + "): "
            "absolute times are not comparable; use --normalize mlp"
        )
    out = Comparison(
        threshold=threshold,
        alpha=alpha,
        normalize=normalize,
        base_name=_doc_name(base_doc, "BASE"),
        new_name=_doc_name(new_doc, "NEW"),
    )
    if differences and not normalize:
        out.warnings.append(
            "warning: different machines or software (" + "; ".join(differences) + "): absolute times may differ for "
            "that reason alone; --normalize mlp compares ratios to each run's MLP (--strict refuses)"
        )
    out.notes = auto_notes
    out.only_base = [_key_label(k) for k in base_rows if k not in new_rows]
    out.only_new = [_key_label(k) for k in new_rows if k not in base_rows]
    if not common:
        raise CompareError(
            "no rows to compare: BASE and NEW share no (implementation, device, workload); "
            f"BASE has {', '.join(out.only_base) or 'nothing'}; NEW has {', '.join(out.only_new) or 'nothing'}"
        )
    norms = baselines if normalize else None
    for key in common:
        b_rec, n_rec = base_rows[key], new_rows[key]
        if normalize and key[0] == BASELINE:
            continue  # the MLP normalized by itself is 1.0
        for phase in PHASES:
            pc = PhaseComparison(
                impl=key[0],
                device=key[1],
                workload=key[2] + (f", {key[3]}" if key[3] else ""),
                phase=phase,
                base_median=None,
                new_median=None,
                base_spread=None,
                new_spread=None,
                ratio=None,
                p_value=None,
                label=_key_label(key),
            )
            if not (
                _failed_verdict(pc, b_rec, n_rec) or _paired_verdict(pc, b_rec, n_rec, test, normalize, threshold, alpha, in_time)
            ):
                units = _normalized_units(pc, b_rec, n_rec, norms)
                if units is not None and not _threshold_only_verdict(pc, b_rec, n_rec, norms, threshold):
                    _units_verdict(pc, units, threshold, alpha)
            out.rows.append(pc)
    return out


def _in_time(base_doc: ResultsDocument, new_doc: ResultsDocument) -> bool:
    """The two sides of one A/B run: their rounds were taken in turn, round i of each paired in time."""
    return base_doc.config.get("isolation") == new_doc.config.get("isolation") == "ab-interleaved"


def _auto_normalize(
    base_rows: dict, new_rows: dict, common: list, baselines: tuple, paired: bool
) -> tuple[Optional[str], list[str]]:
    """What ``normalize="auto"`` means for the rows ``common`` to both files (``baselines``:
    each file's MLP rows by :func:`_baseline_key`), and the lines that say so.

    Two separate runs are compared as ratios to their own run's MLP when every compared row
    has one on both sides: the MLP is the control that ran in the same minutes, so a machine
    that got slower between the runs (every row slower, the MLP too) is not a regression.
    Rounds ``paired`` in time (the two sides of one A/B run, or ``test="paired"``) are
    compared on absolute times: pairing cancels the machine's drift without a control."""
    if paired:
        return None, []
    others = [k for k in common if k[0] != BASELINE]
    if not others:
        return None, []
    lacking = [
        _key_label(k)
        for k in others
        if _baseline_key(base_rows[k]) not in baselines[0] or _baseline_key(new_rows[k]) not in baselines[1]
    ]
    if lacking:
        return None, [
            "absolute times: no MLP row in the same run to normalize "
            + ", ".join(lacking[:3])
            + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else "")
            + " by (--normalize none to silence this)"
        ]
    lines = ["normalized by each run's MLP (--normalize auto: separate runs; --normalize none for absolute times)"]
    for bkey in sorted({_baseline_key(base_rows[k]) for k in others}, key=lambda k: (k[0], k[1], k[2] or 0)):
        b, n = baselines[0][bkey], baselines[1][bkey]
        if not b.measured or not n.measured:
            continue
        moved = sum(n.median(p) for p in PHASES) / sum(b.median(p) for p in PHASES)
        where = f"{bkey[0]} {bkey[1]}" + (f", {bkey[2]} threads" if bkey[2] else "")
        lines.append(f"the MLP (forward+backward, {where}) took {moved:.2f}x its BASE time in NEW")
    return "mlp", lines


def machine_differences(a: ResultsDocument, b: ResultsDocument) -> list[str]:
    """What differs between two files' machines that changes absolute times: CPU (model and
    family/model number), GPU names, torch and CUDA versions, the workers' malloc setting
    (:mod:`kanbench.allocator`). Fields a file lacks are not compared."""
    out = []

    def cpu(doc):
        c = doc.machine.get("cpu") or {}
        fields = (c.get("model"), c.get("family"), c.get("model_number"))
        return fields if any(v is not None for v in fields) else None

    def gpus(doc):
        return tuple(g.get("name") for g in doc.machine.get("gpus") or [])

    def version(doc, key):
        return (doc.machine.get("torch") or {}).get(key)

    def allocators(doc):
        return tuple(sorted({r.allocator for r in doc.rows() if r.allocator})) or None

    for what, get in (
        ("CPU", cpu),
        ("GPU", gpus),
        ("torch", lambda d: version(d, "version")),
        ("CUDA", lambda d: version(d, "cuda")),
        ("allocator", allocators),
    ):
        va, vb = get(a), get(b)
        if va and vb and va != vb:
            show = lambda v: " ".join(str(x) for x in v if x) if isinstance(v, tuple) else str(v)
            out.append(f"{what} {show(va)} vs {show(vb)}")
    return out


def _check_options(threshold: float, alpha: float, normalize: Optional[str], test: str) -> None:
    if threshold <= 1.0:
        raise CompareError(f"threshold must be above 1.0 (e.g. 1.10 for 10%), got {threshold}")
    if not 0 < alpha < 1:
        raise CompareError(f"alpha must be between 0 and 1, got {alpha}")
    if normalize not in (None, "mlp", "auto"):
        raise CompareError(f"unknown normalization {normalize!r}; use 'mlp' or 'auto'")
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


def _paired_verdict(pc, b_rec: RowResult, n_rec: RowResult, test, normalize, threshold, alpha, in_time: bool) -> bool:
    """Rounds paired in time (the two sides of one A/B run, or ``test="paired"``): the paired
    test. False when not applicable."""
    b_rounds, n_rounds = b_rec.round_medians(pc.phase), n_rec.round_medians(pc.phase)
    paired = (test == "paired" or (test == "auto" and in_time)) and not normalize and len(b_rounds) == len(n_rounds) >= 2
    if not paired:
        if test == "paired":
            pc.note = "no interleaved rounds to pair: Mann-Whitney on the samples"
        return False
    _set_medians(pc, b_rec.raw(pc.phase), n_rec.raw(pc.phase))
    pc.ratio, pc.p_value, pc.verdict, pc.note = compare_paired(b_rounds, n_rounds, threshold, alpha)
    return True


def _normalized_units(pc, b_rec: RowResult, n_rec: RowResult, norms) -> Optional[tuple[list, list]]:
    """Both sides' units -- round medians, or the row's median when it has no rounds. With
    ``norms``, each side's units over its run's MLP: round i over the MLP's round i (measured
    in the same second, so drift within a run cancels too) when the rounds line up, else
    over the MLP's median; None (with the row's note set) when a side has no MLP row."""
    base_u = b_rec.round_medians(pc.phase) or [b_rec.median(pc.phase)]
    new_u = n_rec.round_medians(pc.phase) or [n_rec.median(pc.phase)]
    if norms is None:
        return base_u, new_u
    b_mlp, n_mlp = norms[0].get(_baseline_key(b_rec)), norms[1].get(_baseline_key(n_rec))
    bm = b_mlp.median(pc.phase) if b_mlp else None
    nm = n_mlp.median(pc.phase) if n_mlp else None
    if not bm or not nm:
        pc.verdict, pc.note = "unchanged", "no MLP row in the same run to normalize by"
        return None
    return (
        b_rec.round_ratios(b_mlp, pc.phase) or [v / bm for v in base_u],
        n_rec.round_ratios(n_mlp, pc.phase) or [v / nm for v in new_u],
    )


def _set_from_rows(pc, b_rec: RowResult, n_rec: RowResult, norms) -> None:
    """Medians and spreads shown in the table: the rows' own (normalized when ``norms``; both
    sides have their MLP, :func:`_normalized_units` checked)."""
    pc.base_median, pc.new_median = b_rec.median(pc.phase), n_rec.median(pc.phase)
    pc.base_spread, pc.new_spread = b_rec.spread(pc.phase), n_rec.spread(pc.phase)
    if norms is not None:
        bm = norms[0][_baseline_key(b_rec)].median(pc.phase)
        nm = norms[1][_baseline_key(n_rec)].median(pc.phase)
        pc.base_median, pc.base_spread = pc.base_median / bm, (pc.base_spread or 0) / bm
        pc.new_median, pc.new_spread = pc.new_median / nm, (pc.new_spread or 0) / nm


def _threshold_only_verdict(pc, b_rec: RowResult, n_rec: RowResult, norms, threshold) -> bool:
    """A side without independent units (one process, no rounds): the ratio of the rows'
    medians against the threshold, no test."""
    if len(b_rec.round_medians(pc.phase)) >= 2 and len(n_rec.round_medians(pc.phase)) >= 2:
        return False
    _set_from_rows(pc, b_rec, n_rec, norms)
    ratio = pc.new_median / pc.base_median if pc.base_median else None
    pc.ratio, pc.verdict = ratio, _threshold_verdict(ratio, threshold)
    pc.note = "one process per row, no rounds: no independent units, threshold-only verdict"
    return True


def _units_verdict(pc, pair: tuple[list, list], threshold, alpha) -> None:
    """Mann-Whitney U on both sides' units (round medians, normalized when asked)."""
    _set_medians(pc, *pair)  # the medians and spreads of the units the test compares
    note = pc.note
    pc.ratio, pc.p_value, pc.verdict, pc.note = compare_units(pair[0], pair[1], threshold, alpha)
    if note:
        pc.note = f"{note}; {pc.note}"


def _doc_name(doc: ResultsDocument, default: str) -> str:
    return doc.name or doc.short_commit or default


def _key_label(key: tuple) -> str:
    impl, device, workload, variant = key
    return f"{row_label(impl, device)} [{workload}{', ' + variant if variant else ''}]"


def render(comparison: Comparison, only_changed: bool = False) -> str:
    """Markdown in the style of ``asv compare`` (kept for callers of ``compare.render``)."""
    return comparison.render(only_changed)
