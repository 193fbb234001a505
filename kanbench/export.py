"""Exports for CI dashboards.

``github_action_benchmark`` -- the ``customSmallerIsBetter`` format of
github-action-benchmark (benchmark-action/github-action-benchmark): a JSON list
of ``{"name", "unit", "value", "range", "extra"}``, one entry per row and phase.
"""

from __future__ import annotations

from kanbench.compare import workload_key
from kanbench.render import label
from kanbench.results import record_workload


def github_action_benchmark(doc: dict) -> list[dict]:
    entries = []
    machine = doc.get("machine", {})
    commit = (machine.get("kanbench") or {}).get("commit", "")
    for r in doc.get("results", []):
        if r.get("error"):
            continue
        w = workload_key(record_workload(r, doc))
        for phase in ("forward", "backward"):
            value = r.get(f"{phase}_ms")
            if value is None:
                continue
            spread = r.get(f"{phase}_iqr_ms")
            entries.append(
                {
                    "name": f"{label(r)} {phase} [{w}]",
                    "unit": "ms",
                    "value": round(float(value), 6),
                    "range": f"±{float(spread) / 2:.4g}" if spread is not None else "",
                    "extra": f"median of {r.get('n_samples')} samples; IQR {spread}; commit {commit[:8]}",
                }
            )
    return entries
