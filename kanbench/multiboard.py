"""Several leaderboards side by side: who wins where, with ranks that do not read noise as order.

For every workload's board (one results file or (workload, device) group each) every row gets its
forward+backward time relative to the MLP of the same run -- the median of per-round ratios, as in
the tables -- and a 95% interval for that median from the same rounds (binomial order statistics,
:func:`kanbench.claims.median_interval`). Rows are ordered by the median; a row's **rank band** runs
from the best to the worst place of every row whose interval overlaps its own, so two rows whose
intervals overlap are never shown as ordered (a row alone in its band has one rank).

:func:`summary` then lays the workloads side by side: per implementation, its band and ratio on each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from kanbench.claims import median_interval, summed_round_ratios
from kanbench.records import ResultsDocument, RowResult


@dataclass
class Placed:
    """One row of one board: its ratio to the MLP with an interval, and its rank band."""

    impl: str
    workload: str
    ratio: Optional[float]
    low: Optional[float]
    high: Optional[float]
    band: tuple = (0, 0)  #: (best, worst) place; equal when the row is alone in its band

    @property
    def band_text(self) -> str:
        a, b = self.band
        return "-" if a == 0 else (str(a) if a == b else f"{a}-{b}")


def place(doc: ResultsDocument, rows: Sequence[RowResult], workload: str) -> list[Placed]:
    """The board of ``rows`` (one workload and device): ratios, intervals and rank bands, best first."""
    placed = []
    for r in rows:
        base = doc.baseline(r)
        if base is None or not r.measured or r.failed:
            placed.append(Placed(r.impl, workload, None, None, None))
            continue
        rounds = summed_round_ratios(r, base, ("forward", "backward"))
        ratio = r.ratio_to(base)
        lo, hi = median_interval(rounds) if rounds else (ratio, ratio)
        placed.append(Placed(r.impl, workload, ratio, lo, hi))
    return bands(placed)


def bands(placed: list[Placed]) -> list[Placed]:
    """Order by ratio (unmeasured last) and give each row its rank band (see the module docstring)."""
    timed = sorted((p for p in placed if p.ratio is not None), key=lambda p: (p.ratio, p.impl))
    for i, p in enumerate(timed):
        overlapping = [j for j, q in enumerate(timed) if q.low <= p.high and p.low <= q.high]
        p.band = (min(overlapping) + 1, max(overlapping) + 1)
    return timed + [p for p in placed if p.ratio is None]


def board_label(workload: dict, device: str) -> str:
    """A board's name: the workload's preset (or its title) and, off the CPU, the device."""
    from kanbench.render import workload_title

    return (workload.get("preset") or workload_title(workload)) + ("" if device == "cpu" else f" ({device})")


def boards(docs: Sequence[ResultsDocument]) -> dict:
    """{workload label: [Placed]} for every (workload, device) of every document."""

    out: dict = {}
    for doc in docs:
        groups: dict = {}
        for r in doc.rows():
            groups.setdefault((r.workload_key, r.device), []).append(r)
        for (_, device), rows in groups.items():
            label = board_label(rows[0].workload or {}, device)
            out[label] = place(doc, rows, label)
    return out


def not_ranked(docs: Sequence[ResultsDocument]) -> frozenset:
    """The board labels (as :func:`boards` names them) whose order is not a ranking: the run is
    flagged (the MLP's worker processes differ by more than ``render.UNSTABLE_SPREAD``: the machine
    changed speed), or the intervals overlap so widely that most rows' rank bands span more than
    half the board (the rows are not told apart by this measurement)."""
    from kanbench.render import UNSTABLE_SPREAD

    out = set()
    for doc in docs:
        for r in doc.rows():
            spread = r.process_spread() if r.is_baseline else None
            if spread is not None and spread > UNSTABLE_SPREAD:
                out.add(board_label(r.workload or {}, r.device))
    for label, placed in boards(docs).items():
        timed = [p for p in placed if p.ratio is not None]
        wide = [p for p in timed if p.band[1] - p.band[0] + 1 > len(timed) / 2]
        if timed and len(wide) > len(timed) / 2:
            out.add(label)
    return frozenset(out)


def summary(placed_by_workload: dict) -> str:
    """Markdown: an implementation per row, a column per workload with "band (ratio)"."""
    from tabulate import tabulate

    workloads = list(placed_by_workload)
    impls: dict = {}
    for label, placed in placed_by_workload.items():
        for p in placed:
            impls.setdefault(p.impl, {})[label] = p
    best = {impl: min((p.band[0] for p in by.values() if p.band[0]), default=10**9) for impl, by in impls.items()}
    body = []
    for impl in sorted(impls, key=lambda i: (best[i], i)):
        cells = []
        for label in workloads:
            p = impls[impl].get(label)
            cells.append("" if p is None else (f"{p.band_text} ({p.ratio:.2f}x)" if p.ratio is not None else "failed"))
        body.append([impl, *cells])
    return tabulate(body, headers=["implementation", *workloads], tablefmt="github", disable_numparse=True)


def figure(placed_by_workload: dict, path, not_ranked: frozenset = frozenset()) -> Optional[object]:
    """Small multiples: one panel per workload, each implementation's f+b / MLP with its interval
    (log scale; the MLP's line at 1), in the implementations' own colours (:mod:`kanbench.palette`);
    a workload in ``not_ranked`` is titled so and drawn without rank bands. Returns the path, or None
    when nothing was measured."""
    import math
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kanbench.palette import style

    panels = [(label, [p for p in placed if p.ratio is not None]) for label, placed in placed_by_workload.items()]
    panels = [(label, placed) for label, placed in panels if placed]
    if not panels:
        return None
    cols = min(3, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    height = max(len(placed) for _, placed in panels) * 0.22 + 1.2
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, height * rows_n), squeeze=False)
    for ax, (label, placed) in zip(axes.flat, panels):
        ys = list(range(len(placed)))[::-1]
        for y, p in zip(ys, placed):
            look = style(p.impl)
            ax.errorbar(p.ratio, y, xerr=[[p.ratio - p.low], [p.high - p.ratio]], fmt=look.mpl_marker, ms=4, color=look.color)
        ax.set_yticks(ys)
        ranked = label not in not_ranked
        ax.set_yticklabels([(f"{p.band_text}  " if ranked else "") + p.impl for p in placed], fontsize=7)
        ax.axvline(1.0, color="C3", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_title(label + ("" if label not in not_ranked else " -- not a ranking (intervals overlap)"), fontsize=9)
        ax.set_xlabel("forward+backward / MLP", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
