"""Generated fragments from timing results files (``kanbench run``): the manual's example tables are
rendered from the committed file they cite, as ``kanbench report`` would print them, never retyped.

- ``large-table``: the newest ``results/*_large.json`` in the full format (spread, ratios, memory);
- ``cross-hardware-example``: ``kanbench report --by machine`` of the newest seed and large files;
- ``variants-cost``: the cost of our layers' opt-in paths (``results/variants/*_large.json``, the
  variants in ``benchmarks/variants/``), forward+backward relative to the layer's own fast path;
- ``compile-seed``: the ``torch.compile`` row of our layers on their PyTorch path against the
  compiled MLP (``results/variants/*_seed-compiled-pytorch-path.json``);
- ``roofline``: every row of the newest seed and large files against the machine's peaks stored
  in them (:mod:`kanbench.roofline`);
- ``native-goals``: our networks on their native operator against the param-matched MLP per workload
  (the newest ``benchmarks/results/native-kernels-cpu-*/``, written by ``benchmarks/native_kernels.py``),
  against the goals of :data:`NATIVE_GOALS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from kanbench.fragment_sources import RESULTS, ROOT, _link, _newest

#: (workload, phase) -> the most our network operator's row may cost, as a multiple of the
#: param-matched MLP's time in the same interleaved run (``benchmarks/native_kernels.py`` measures them)
NATIVE_GOALS = {
    ("seed", "forward"): 1.0,
    ("seed", "forward+backward"): 0.9,
    ("science", "forward+backward"): 0.9,
    ("science-deep", "forward+backward"): 0.9,
    ("mnist", "forward+backward"): 1.2,
    ("large", "forward+backward"): 0.95,
}
#: a phase name -> the timed phases it sums
NATIVE_PHASES = {"forward": ("forward",), "forward+backward": ("forward", "backward")}


def _load(path: Path):
    from kanbench import results as results_mod

    return results_mod.load(path)


def _command(path: Path) -> str:
    import json

    doc = json.loads(path.read_text())
    command = (doc.get("config") or {}).get("command") or doc.get("command")
    return f"`{command}`" if command else "(command not recorded)"


def large_table(page: str = "README.md") -> str:
    """The newest large-workload run, in the full table format."""
    from kanbench import render

    path = _newest("*_large.json")
    if path is None:
        return "(no large-workload results committed yet: `make bench-large`)\n"
    doc = _load(path)
    return f"From {_link(page, path)} ({_command(path)}):\n\n{render.render_document(doc, 'full')}\n"


def cross_hardware_example(page: str = "README.md") -> str:
    """``kanbench report --by machine`` of the newest seed and large results files."""
    from kanbench import cross_hardware

    paths = [p for p in (_newest("*_seed.json"), _newest("*_large.json")) if p is not None]
    if not paths:
        return "(no results committed yet)\n"
    command = "kanbench report --by machine " + " ".join(p.relative_to(RESULTS.parent).as_posix() for p in paths)
    links = " and ".join(_link(page, p) for p in paths)
    table = cross_hardware.machine_table([_load(p) for p in paths])
    return f"`{command}`, from {links}:\n\n{table}\n"


def _fb(row) -> Optional[float]:
    if row.failed or row.forward_ms is None or row.backward_ms is None:
        return None
    return row.forward_ms + row.backward_ms


def variants_cost(page: str = "README.md") -> str:
    """Each variant's forward and backward medians and its forward+backward over its layer's fast path
    (``splines-better_kan`` or ``rbf-better_kan`` of the same run)."""
    from tabulate import tabulate

    path = _newest("*_large.json", RESULTS / "variants")
    if path is None:
        return "(no variants results committed yet)\n"
    doc = _load(path)
    rows = {r.impl: r for r in doc.rows()}
    body = []
    for name, row in rows.items():
        fast = rows.get("rbf-better_kan" if name.startswith("rbf") else "splines-better_kan")
        own, ref = _fb(row), (_fb(fast) if fast else None)
        ratio = f"{own / ref:.2f}x" if own and ref else "-"
        if row.failed:
            body.append([name, "-", "-", f"{row.error_kind}: {row.error}"])
        else:
            body.append([name, f"{row.forward_ms:.3g}", f"{row.backward_ms:.3g}", ratio])
    table = tabulate(
        body, headers=["implementation", "forward ms", "backward ms", "forward+backward vs its fast path"], tablefmt="github"
    )
    return f"From {_link(page, path)} ({_command(path)}):\n\n{table}\n"


def compile_seed(page: str = "README.md") -> str:
    """One sentence: our layers compiled on their PyTorch path at the seed workload against the compiled MLP."""
    path = _newest("*_seed-compiled-pytorch-path.json", RESULTS / "variants")
    if path is None:
        return "(no compiled-run results committed yet)\n"
    rows = {r.impl: r for r in _load(path).rows() if not r.failed}
    mlp = rows.get("mlp")
    parts = []
    for name, label in (("splines-better_kan", "splines"), ("rbf-better_kan", "RBF")):
        r = rows.get(name)
        if r is None or mlp is None:
            continue
        compiled = f", after {r.first_step_s:.1f} s of compilation" if r.first_step_s is not None else ""
        parts.append(
            f"{label} {r.forward_ms:.3g} + {r.backward_ms:.3g} ms per step, {_fb(r) / _fb(mlp):.2f}x the compiled MLP's{compiled}"
        )
    if not parts:
        return "(the compiled run has no rows of our layers and the MLP)\n"
    mlp_compile = f" (the MLP's: {mlp.first_step_s:.1f} s)" if mlp.first_step_s is not None else ""
    return f"Measured on the PyTorch path at the seed workload ({_link(page, path)}): " + "; ".join(parts) + mlp_compile + ".\n"


def roofline_table(page: str = "README.md") -> str:
    """The newest seed and large runs' rows against their machine's peaks: achieved GFLOP/s of the
    training step, arithmetic intensity, what bounds the row, and its share of the peak and of its roof."""
    from tabulate import tabulate

    parts = []
    for pattern in ("*_seed.json", "*_large.json"):
        path = _newest(pattern)
        if path is None:
            continue
        doc = _load(path)
        peaks = doc.machine.get("peaks") or {}
        rows = [r for r in doc.rows() if r.roofline]
        if not rows or not peaks:
            parts.append(f"{_link(page, path)} predates the roofline figures (re-run it to get them).")
            continue
        ceilings = "; ".join(f"{k}: {v['gflops']:.4g} GFLOP/s, {v['gbytes_per_s']:.3g} GB/s" for k, v in peaks.items())
        body = [
            [
                r.label,
                f"{r.roofline['step_gflops']:.3g}",
                f"{r.roofline['intensity_flops_per_byte']:.3g}",
                r.roofline["bound"],
                f"{100 * r.roofline['peak_share']:.2g}%",
                f"{100 * r.roofline['roofline_share']:.2g}%",
            ]
            for r in sorted(rows, key=lambda r: -r.roofline["step_gflops"])
        ]
        headers = ["row", "step GFLOP/s", "FLOPs/byte", "bound", "of the GEMM peak", "of its roof"]
        parts.append(f"{_link(page, path)} (peaks: {ceilings}):\n\n" + tabulate(body, headers=headers, tablefmt="github"))
    return ("\n\n".join(parts) or "(no seed or large results committed yet)") + "\n"


def round_ratios(doc) -> dict:
    """{impl: {phase name: (median, low, high)}} of each row's time over the MLP's of the same run, per
    interleaved round (the median over rounds and its 95% interval), for every phase of
    :data:`NATIVE_PHASES`; rows without paired rounds have none."""
    import statistics

    from kanbench.claims import median_interval, summed_round_ratios

    rows = {r.impl: r for r in doc.rows()}
    mlp = rows["mlp"]
    out = {}
    for impl in [name for name in rows if name != "mlp"]:
        out[impl] = {}
        for name, phases in NATIVE_PHASES.items():
            per_round = summed_round_ratios(rows[impl], mlp, phases)
            if per_round:
                lo, hi = median_interval(sorted(per_round))
                out[impl][name] = (statistics.median(per_round), lo, hi)
    return out


def goal_verdict(ratio: tuple, goal: float) -> str:
    """``met`` when a (median, low, high) ratio's whole interval is at or under ``goal``; else whether
    its median is."""
    if ratio[2] <= goal:
        return "met"
    return "median under, interval not" if ratio[0] <= goal else "not met"


def _ratio_cell(m) -> str:
    return f"{m[0]:.2f}x [{m[1]:.2f}-{m[2]:.2f}]" if m else "-"


def native_goals(page: str = "README.md") -> str:
    """Our networks as one native operator against the param-matched MLP, per workload of the newest
    ``benchmarks/native_kernels.py`` run: parameters, forward and step ratios with their intervals,
    the same network one layer at a time, and each goal of :data:`NATIVE_GOALS`: met (the whole 95%
    interval at or under it), the median under but not the interval, or not met."""
    from tabulate import tabulate

    runs = sorted(p for p in (ROOT / "benchmarks" / "results").glob("native-kernels-cpu-*") if p.is_dir())
    if not runs:
        return "(no native-kernel runs committed yet: python benchmarks/native_kernels.py)\n"
    folder = runs[-1]
    body = []
    for preset in dict.fromkeys(w for w, _ in NATIVE_GOALS):
        path = folder / f"{preset}.json"
        if not path.exists():
            continue
        doc = _load(path)
        ratios = round_ratios(doc)
        params = {r.impl: r.params for r in doc.rows()}
        for impl, layered, label in (
            ("splines-better_kan", "splines-layered", "B-spline"),
            ("rbf-better_kan", "rbf-layered", "RBF"),
        ):
            if impl not in ratios:
                continue
            goals = []
            for (workload, phase), goal in NATIVE_GOALS.items():
                m = ratios[impl].get(phase)
                if workload == preset and m:
                    verdict = goal_verdict(m, goal)
                    goals.append(f"{'step' if phase == 'forward+backward' else phase} <= {goal}x: {verdict}")
            body.append(
                [
                    preset,
                    label,
                    f"{params.get(impl) or 0:,} / {params.get('mlp') or 0:,}",
                    _ratio_cell(ratios[impl].get("forward")),
                    _ratio_cell(ratios[impl].get("forward+backward")),
                    _ratio_cell(ratios.get(layered, {}).get("forward+backward")),
                    "; ".join(goals),
                ]
            )
    headers = ["workload", "network", "params (ours / MLP)", "forward / MLP", "step / MLP", "step, layer by layer", "goal"]
    link = _link(page, folder.with_suffix(".md"))
    return f"From {link} (the results files beside it):\n\n{tabulate(body, headers=headers, tablefmt='github')}\n"


FRAGMENTS = {
    "large-table": large_table,
    "cross-hardware-example": cross_hardware_example,
    "variants-cost": variants_cost,
    "compile-seed": compile_seed,
    "roofline": roofline_table,
    "native-goals": native_goals,
}
