"""The site's charts, as plotly figures serialized to JSON (drawn by plotly.js in the page).

Each function takes typed records and returns ``fig.to_json()``; nothing here touches files.
"""

from __future__ import annotations

from typing import Optional

from kanbench.palette import plotly_trace_style, style

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
            fig.add_trace(
                go.Box(
                    y=thin(values),
                    name=r.label,
                    boxpoints="all",
                    jitter=0.4,
                    pointpos=0,
                    marker={"size": 3, "color": style(r.label).color},
                    line={"color": style(r.label).color},
                )
            )
    fig.update_layout(title=f"{phase} samples (ms per step)", yaxis_type="log", yaxis_title="ms", showlegend=False, height=460)
    return fig.to_json()


def rounds(rows, phase: str) -> str:
    """The median of every interleaved round, per row: drift shows as a common trend."""
    go = _go()
    fig = go.Figure()
    for r in rows:
        medians = r.round_medians(phase)
        if medians:
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(medians) + 1)),
                    y=medians,
                    mode="lines+markers",
                    name=r.label,
                    **plotly_trace_style(r.label),
                )
            )
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
                **plotly_trace_style(impl),
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
        fig.add_trace(go.Scatter(x=[p.value for p in pts], y=ys, mode="lines+markers", name=name, **plotly_trace_style(name)))
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
            fig.add_trace(
                go.Scatter(
                    x=[c[0] for c in r.curve],
                    y=[c[1] for c in r.curve],
                    mode="lines",
                    name=r.label,
                    **plotly_trace_style(r.label),
                )
            )
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
                **plotly_trace_style(row.impl, lines=False),
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


def workload_ratios(placed_by_workload: dict, not_ranked: frozenset = frozenset()) -> str:
    """Every workload's board in one heatmap: an implementation per row (best geometric mean first),
    a workload per column, the cell coloured by log2 of forward+backward / MLP (white at the MLP's
    cost) and labelled with the ratio and its rank band. A failed row is a grey "failed" cell; a
    workload in ``not_ranked`` (its run's machine changed speed) shows ratios without bands, and
    says so in its column title."""
    import math

    go = _go()
    workloads = list(placed_by_workload)
    impls = sorted({p.impl for placed in placed_by_workload.values() for p in placed})

    def geomean(impl):
        rs = [p.ratio for placed in placed_by_workload.values() for p in placed if p.impl == impl and p.ratio]
        return math.exp(sum(math.log(r) for r in rs) / len(rs)) if rs else float("inf")

    impls.sort(key=lambda i: (i != "mlp", geomean(i), i))
    z, text = [], []
    for impl in impls:
        zr, tr = [], []
        for w in workloads:
            p = next((q for q in placed_by_workload[w] if q.impl == impl), None)
            if p is None:
                zr.append(None)
                tr.append("")
            elif p.ratio is None:
                zr.append(None)
                tr.append("failed")
            else:
                zr.append(math.log2(p.ratio))
                band = "" if w in not_ranked else f" ({p.band_text})"
                tr.append(f"{p.ratio:.2f}x{band}")
        z.append(zr)
        text.append(tr)
    columns = [w + (" -- not a ranking" if w in not_ranked else "") for w in workloads]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns,
            y=impls,
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#2166ac"], [0.5, "#f7f7f7"], [1, "#b2182b"]],
            zmin=-4,
            zmax=4,  # 1/16x to 16x; beyond, the colour saturates and the cell's text says how far
            colorbar={
                "title": "f+b / MLP",
                "tickvals": [-4, -3, -2, -1, 0, 1, 2, 3, 4],
                "ticktext": ["1/16", "1/8", "1/4", "1/2", "1", "2", "4", "8", "16+"],
            },
            hovertemplate="%{y} on %{x}: %{text}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        title="f+b time / the MLP's, per workload (rank band in brackets)",
        yaxis={"autorange": "reversed"},
        height=max(360, 26 * len(impls) + 160),
        plot_bgcolor="#dddddd",
    )
    return fig.to_json()


def accuracy_overview(records) -> str:
    """The accuracy suite in one chart: per implementation, its error relative to the MLP's (geometric
    mean over tasks and seeds, 95% bootstrap interval) against its time per training step relative to
    the MLP's (geometric mean over tasks); the Pareto front (no row both more accurate and cheaper)
    joined by a line. Both axes log; the MLP sits at (1, 1)."""
    import math

    from kanbench.accuracy import summary

    go = _go()
    ratios = summary.error_ratios(records)
    per_task = summary.task_rows(records)
    cost: dict = {}
    for rows in per_task.values():
        mlp = next((r for r in rows if r.impl == summary.BASELINE and r.step_ms), None)
        for r in rows:
            if mlp is not None and r.step_ms:
                cost.setdefault(r.impl, []).append(r.step_ms / mlp.step_ms)
    points = []
    for impl, steps in cost.items():
        q = ratios.get(impl)
        err = 1.0 if impl == summary.BASELINE else (q.ratio if q else None)
        if err is None:
            continue
        x = math.exp(sum(math.log(s) for s in steps) / len(steps))
        points.append((x, err, impl, q))
    fig = go.Figure()
    for x, err, impl, q in sorted(points, key=lambda p: p[2]):
        bars = {"type": "data", "symmetric": False, "array": [q.high - err], "arrayminus": [err - q.low]} if q else None
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[err],
                mode="markers",
                name=impl,
                error_y=bars,
                hovertemplate=f"{impl}<br>error %{{y:.2f}}x the MLP's<br>step %{{x:.2f}}x the MLP's<extra></extra>",
                **plotly_trace_style(impl, lines=False),
            )
        )
    from kanbench.accuracy.plots import pareto_front

    front = pareto_front(points)
    if len(front) > 1:
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in front],
                y=[p[1] for p in front],
                mode="lines",
                name="Pareto front",
                line={"color": "#555555", "dash": "dot"},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title="error / MLP's vs time per step / MLP's",
        xaxis_title="time per training step / the MLP's (geometric mean over tasks)",
        yaxis_title="test error / the MLP's (95% interval)",
        xaxis_type="log",
        yaxis_type="log",
        height=520,
    )
    return fig.to_json()
