"""Exports for CI dashboards.

``github_action_benchmark`` -- the ``customSmallerIsBetter`` format of
github-action-benchmark (benchmark-action/github-action-benchmark): a JSON list
of ``{"name", "unit", "value", "range", "extra"}``, one entry per row and phase.
"""

from __future__ import annotations

from kanbench.records import ResultsDocument


def github_action_benchmark(doc: ResultsDocument) -> list[dict]:
    entries = []
    for r in doc.rows():
        if r.failed:
            continue
        for phase in ("forward", "backward"):
            value = r.median(phase)
            if value is None:
                continue
            spread = r.spread(phase)
            entries.append(
                {
                    "name": f"{r.label} {phase} [{r.workload_key}]",
                    "unit": "ms",
                    "value": round(float(value), 6),
                    "range": f"±{float(spread) / 2:.4g}" if spread is not None else "",
                    "extra": f"median of {r.n_samples} samples; IQR {spread}; commit {doc.commit[:8]}",
                }
            )
    return entries
