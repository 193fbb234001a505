"""The leaderboard: every implementation at one workload, param-matched, sorted by f+b time.

One table per (workload, device) of a leaderboard results file (``kanbench leaderboard``),
or of any run file: rank, implementation, basis family, the widths it was built with,
trainable parameters, forward and backward medians, f+b relative to the MLP of the same
run (paired by round), the peak-memory increase of the backward, analytic FLOPs per
sample and the achieved GFLOP/s of the forward, the sanity gate's verdict, and, from an
accuracy-suite results file (:mod:`kanbench.accuracy`), the implementation's mean rank over
the suite's tasks and its win rate against the MLP (files of older versions: the test RMSE of
the one fit they ran).
"""

from __future__ import annotations

import math
from typing import Optional

from tabulate import tabulate

from kanbench.records import ResultsDocument, RowResult
from kanbench.render import fmt_bytes, fmt_int, workload_title

HEADERS = [
    "#",
    "implementation",
    "family",
    "widths",
    "params",
    "fwd ms",
    "bwd ms",
    "f+b / MLP",
    "bwd peak +",
    "FLOPs/sample",
    "fwd GFLOP/s",
    "step GFLOP/s (% of peak, bound)",
    "sanity",
    "accuracy",
]


def _fb(r: RowResult) -> float:
    if r.forward_ms is None or r.backward_ms is None:
        return math.inf
    return r.forward_ms + r.backward_ms


def _ms(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 1 else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def _gflops(r: RowResult) -> str:
    if not r.flops_per_sample or not r.forward_ms:
        return "-"
    from kanbench.flops import gflops_per_second

    return f"{gflops_per_second(r.flops_per_sample, (r.workload or {}).get('batch') or 0, r.forward_ms):.2f}"


def _roofline(r: RowResult) -> str:
    """The training step's GFLOP/s, its share of the machine's GEMM peak and what bounds it."""
    roof = r.roofline or {}
    if not roof.get("step_gflops"):
        return "-"
    return f"{roof['step_gflops']:.3g} ({100 * roof['peak_share']:.2g}%, {roof['bound']})"


def _flops(v: Optional[float]) -> str:
    if not v:
        return "-"
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k"


def _sanity(r: RowResult) -> str:
    status = r.sanity_status
    if status in (None, "ok"):
        return "ok" if status else "-"
    return f"{'FAIL' if status == 'fail' else 'warn'}: {r.sanity_reason}"


def accuracy_column(doc: ResultsDocument) -> dict:
    """{impl: "mean rank R of T tasks, win share vs MLP W% [95% interval]"} from an accuracy-suite results file."""
    from kanbench.accuracy import summary

    records = [r for r in doc.results if hasattr(r, "task_family")]
    per_task = summary.task_rows(records)
    wins = summary.win_rates(records)
    n_impls = len({r.impl for r in records})
    out = {}
    for impl, (rank, tasks) in summary.mean_ranks(per_task).items():
        w = wins.get(impl)
        share = f", win share vs MLP {w.rate:.0%} [{w.low:.0%}-{w.high:.0%}]" if w else ""
        out[impl] = f"rank {rank:.1f}/{n_impls} ({tasks} tasks)" + share
    from kanbench.accuracy.suite import SAME_FUNCTION

    for impl, same in SAME_FUNCTION.items():  # trained once, as the row computing the same function
        if impl not in out and same in out:
            out[impl] = f"{out[same]} (as {same})"
    return out


def _rmse(r: RowResult) -> str:
    fit = r.fit or {}
    if fit.get("error"):
        return f"({fit.get('error_kind') or 'failed'})"
    v = fit.get("test_rmse")
    return "-" if v is None else f"{v:.3g}"


def ratio_to_mlp(doc: ResultsDocument, r: RowResult) -> Optional[float]:
    """f+b over the MLP's of the same run: paired by round (RowResult.ratio_to), also for flagged rows."""
    base = doc.baseline(r)
    if base is None or not r.measured:
        return None
    if r.failed:  # timed with --time-broken: still comparable, the flag says why
        import dataclasses

        r = dataclasses.replace(r, error=None)
    return r.ratio_to(base)


def table(doc: ResultsDocument, rows: list[RowResult], families: Optional[dict] = None, accuracy: Optional[dict] = None) -> str:
    """The markdown leaderboard of ``rows`` (one workload and device), fastest f+b first;
    ``accuracy`` ({impl: text}, :func:`accuracy_column`) fills the last column when given."""
    families = families or {}
    ratios = {id(r): ratio_to_mlp(doc, r) for r in rows}
    # by the paired f+b ratio to the MLP where there is one (drift between rounds cancels), else f+b
    ordered = sorted(
        rows,
        key=lambda r: (r.forward_ms is None, ratios[id(r)] if ratios[id(r)] is not None else math.inf, _fb(r), r.impl),
    )
    out = []
    for rank, r in enumerate(ordered, 1):
        ratio = ratios[id(r)]
        timed = r.forward_ms is not None
        out.append(
            [
                str(rank) if timed else "-",
                r.impl,
                families.get(r.impl) or r.family or "",
                "[" + ",".join(str(w) for w in r.built_widths) + "]",
                fmt_int(r.trainable_params),
                _ms(r.forward_ms),
                _ms(r.backward_ms),
                "-" if ratio is None else f"{ratio:.2f}x",
                "-" if r.backward_peak_increase_bytes is None else fmt_bytes(r.backward_peak_increase_bytes),
                _flops(r.flops_per_sample),
                _gflops(r),
                _roofline(r),
                _sanity(r),
                accuracy.get(r.impl, "-") if accuracy is not None else _rmse(r),
            ]
        )
    text = tabulate(out, headers=HEADERS, tablefmt="pipe", disable_numparse=True)
    notes = [f"- {r.impl}: {r.error}" for r in ordered if r.error]
    return "\n".join([text, *notes])


def render(doc: ResultsDocument, families: Optional[dict] = None, accuracy: Optional[dict] = None) -> str:
    """Every (workload, device) group of ``doc`` as a titled leaderboard."""
    from kanbench.machine import machine_label

    groups: dict = {}
    for r in doc.rows():
        groups.setdefault((r.workload_key, r.device), []).append(r)
    parts = []
    match = doc.config.get("match")
    for (_, device), rows in groups.items():
        title = f"### {workload_title(rows[0].workload)} on {machine_label(doc.machine, device, doc.threads)}"
        if match:
            m = next((r.match for r in rows if r.match), None)
            target = f", target {m['target']:,.0f}" if m else ""
            title += f" -- matched {match}{target}"
        parts.append(title)
        parts.append(table(doc, rows, families, accuracy))
    if doc.skipped:
        parts.append("Not installed here:\n" + "\n".join(f"- {s.impl}: {s.reason}" for s in doc.skipped))
    return "\n\n".join(parts)
