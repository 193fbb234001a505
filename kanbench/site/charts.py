"""The site's charts, as plotly figures serialized to JSON (drawn by plotly.js in the page).

Each function takes typed records and returns ``fig.to_json()``; nothing here touches files.
"""

from __future__ import annotations

from typing import Optional

#: raw samples per row drawn in a distribution (every k-th of the sorted samples beyond this)
MAX_POINTS = 600


def _go():
    import plotly.graph_objects as go

    return go


def thin(values: list, limit: int = MAX_POINTS) -> list:
    """At most ``limit`` values, spread evenly over the sorted samples (quantiles kept)."""
    values = sorted(values)
    if len(values) <= limit:
        return values
    step = (len(values) - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]


def distributions(rows, phase: str) -> str:
    """Box plots of the raw ``phase`` samples, one box per row, all points shown."""
    go = _go()
    fig = go.Figure()
    for r in rows:
        values = r.raw(phase)
        if values:
            fig.add_trace(go.Box(y=thin(values), name=r.label, boxpoints="all", jitter=0.4, pointpos=0, marker_size=3))
    fig.update_layout(title=f"{phase} samples (ms per step)", yaxis_type="log", yaxis_title="ms", showlegend=False, height=460)
    return fig.to_json()


def rounds(rows, phase: str) -> str:
    """The median of every interleaved round, per row: drift shows as a common trend."""
    go = _go()
    fig = go.Figure()
    for r in rows:
        medians = r.round_medians(phase)
        if medians:
            fig.add_trace(go.Scatter(x=list(range(1, len(medians) + 1)), y=medians, mode="lines+markers", name=r.label))
    fig.update_layout(title=f"{phase}: median of each round", xaxis_title="round", yaxis_title="ms", yaxis_type="log", height=420)
    return fig.to_json()


def machine_bars(series: dict) -> str:
    """Grouped bars: f+b / that machine's MLP per implementation, one group colour per machine.

    ``series``: {machine label: {impl: ratio}}"""
    go = _go()
    fig = go.Figure()
    for machine, ratios in series.items():
        impls = sorted(ratios)
        fig.add_trace(go.Bar(x=impls, y=[ratios[i] for i in impls], name=machine))
    fig.update_layout(
        barmode="group",
        yaxis_title="(forward+backward) / MLP",
        yaxis_type="log",
        height=460,
        title="relative to each machine's MLP (log scale)",
    )
    return fig.to_json()


def history(points: dict, regressions: list) -> str:
    """f+b time per implementation over the files' dates; regressions marked.

    ``points``: {impl: [(date, ms, file href, commit)]}; ``regressions``: [(impl, date, ms, text)]"""
    go = _go()
    fig = go.Figure()
    for impl, pts in sorted(points.items()):
        pts = sorted(pts)
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                customdata=[p[2] for p in pts],
                text=[p[3] for p in pts],
                mode="lines+markers",
                name=impl,
                hovertemplate="%{y:.3f} ms<br>commit %{text}<br>click: results file<extra>" + impl + "</extra>",
            )
        )
    if regressions:
        fig.add_trace(
            go.Scatter(
                x=[r[1] for r in regressions],
                y=[r[2] for r in regressions],
                text=[r[3] for r in regressions],
                mode="markers",
                name="regression",
                marker={"symbol": "x", "size": 14, "color": "red"},
                hovertemplate="%{text}<extra>regression</extra>",
            )
        )
    fig.update_layout(yaxis_type="log", yaxis_title="forward+backward ms", height=460)
    return fig.to_json()


def sweep_axis(points, axis: str, what: str) -> str:
    """One sweep axis: time (log-log), peak memory, or ratio to the MLP, per implementation."""
    go = _go()
    fig = go.Figure()
    by: dict = {}
    for p in points:
        by.setdefault(f"{p.impl} ({p.device})", []).append(p)
    for name, pts in sorted(by.items()):
        ys: list[Optional[float]] = []
        for p in pts:
            r = p.record
            if what == "time":
                ys.append(r.forward_ms + r.backward_ms if r.usable else None)
            elif what == "memory":
                ys.append(r.backward_peak_bytes / 2**20 if r.backward_peak_bytes else None)
            else:
                ys.append(p.ratio)
        fig.add_trace(go.Scatter(x=[p.value for p in pts], y=ys, mode="lines+markers", name=name))
    title = {"time": "forward+backward ms", "memory": "backward peak MB", "ratio": "(f+b) / MLP"}[what]
    numeric = all(isinstance(p.value, (int, float)) for p in points)
    fig.update_layout(
        title=f"{title} against {axis}",
        xaxis_title=axis,
        yaxis_title=title,
        xaxis_type="log" if numeric else None,
        yaxis_type="log" if what != "ratio" else None,
        height=420,
    )
    if what == "ratio":
        fig.add_hline(y=1.0, line_dash="dot", annotation_text="MLP")
    return fig.to_json()


def fit_curves(records, task: str) -> str:
    """Test RMSE against training step for every implementation trained on ``task``."""
    go = _go()
    fig = go.Figure()
    for r in records:
        if r.task == task and r.curve:
            fig.add_trace(go.Scatter(x=[c[0] for c in r.curve], y=[c[1] for c in r.curve], mode="lines", name=r.label))
    fig.update_layout(title=f"test RMSE on {task}", xaxis_title="step", yaxis_title="test RMSE", yaxis_type="log", height=420)
    return fig.to_json()


def accuracy_pareto(rows, task: str, x: str = "step_ms") -> str:
    """One task of the accuracy suite: test error against ms per step (or parameters), a point per
    implementation (medians over seeds, min-max as error bars)."""
    go = _go()
    fig = go.Figure()
    for row in rows:
        cost = row.step_ms if x == "step_ms" else row.params
        if row.error is None or not cost:
            continue
        fig.add_trace(
            go.Scatter(
                x=[cost],
                y=[row.error],
                mode="markers",
                name=row.impl,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [row.error_max - row.error],
                    "arrayminus": [row.error - row.error_min],
                },
                hovertemplate=f"{row.impl}<br>error %{{y:.3g}}<br>{'ms/step' if x == 'step_ms' else 'params'} %{{x:.3g}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"{task}: test error vs {'time per step' if x == 'step_ms' else 'parameters'}",
        xaxis_title="ms per training step" if x == "step_ms" else "trainable parameters",
        yaxis_title="test error (NRMSE or 1 - accuracy)",
        xaxis_type="log",
        yaxis_type="log",
        height=420,
    )
    return fig.to_json()


def workload_ratios(placed_by_workload: dict) -> str:
    """Every workload's board in one chart: an implementation per trace, f+b / MLP per workload with
    its 95% interval (log scale)."""
    go = _go()
    fig = go.Figure()
    impls = sorted({p.impl for placed in placed_by_workload.values() for p in placed})
    for impl in impls:
        xs, ys, lo, hi = [], [], [], []
        for label, placed in placed_by_workload.items():
            p = next((q for q in placed if q.impl == impl and q.ratio is not None), None)
            if p is not None:
                xs.append(label)
                ys.append(p.ratio)
                lo.append(p.ratio - p.low)
                hi.append(p.high - p.ratio)
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="markers+lines",
                    name=impl,
                    error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
                )
            )
    fig.update_layout(title="forward+backward / MLP per workload", yaxis_type="log", yaxis_title="f+b / MLP", height=520)
    return fig.to_json()
