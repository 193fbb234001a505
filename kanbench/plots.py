"""Figures and markdown summaries for sweeps and fits (matplotlib, PNG, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from kanbench.axes import AXES, NUMERIC_AXES, AxisPoint, axis_rows, crossings
from kanbench.palette import style
from kanbench.records import FitResult, ResultsDocument, row_label
from kanbench.render import sweep_table

AXIS_LABELS = {
    "batch": "batch size",
    "width": "width W (widths [W, W, out])",
    "grid": "grid size G",
    "compile": "torch.compile",
    "dtype": "dtype",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _series(rows: list[AxisPoint]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r.record.label, []).append(r)
    return out


def sweep_figure(rows: list[AxisPoint], axis: str, path: Path) -> Optional[Path]:
    ok = [r for r in rows if not r.record.failed]
    if not ok:
        return None
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), dpi=100)
    panels = [
        ("forward time (ms)", lambda r: r.record.forward_ms),
        ("backward time (ms)", lambda r: r.record.backward_ms),
        ("peak memory, backward (MiB)", lambda r: (r.record.backward_peak_bytes or float("nan")) / 2**20),
        ("(forward+backward) / MLP", lambda r: r.ratio if r.ratio is not None else float("nan")),
    ]
    numeric = axis in NUMERIC_AXES
    series = _series(ok)
    categories = list(dict.fromkeys(str(r.value) for r in ok))
    for ax, (title, get) in zip(axes.flat, panels):
        for i, (name, pts) in enumerate(sorted(series.items())):
            look = style(name)
            if numeric:
                ax.plot(
                    [p.value for p in pts],
                    [get(p) for p in pts],
                    marker=look.mpl_marker,
                    ls=look.mpl_dash,
                    lw=look.width,
                    color=look.color,
                    label=name,
                )
            else:
                width = 0.8 / max(len(series), 1)
                xs = [categories.index(str(p.value)) + i * width for p in pts]
                ax.bar(xs, [get(p) for p in pts], width=width, label=name, color=look.color)
        if numeric:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.set_xticks([c + 0.4 - 0.4 / max(len(series), 1) for c in range(len(categories))])
            ax.set_xticklabels(categories)
        if "MLP" in title:
            ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax.set_title(title)
        ax.set_xlabel(AXIS_LABELS[axis])
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"kanbench sweep over {AXIS_LABELS[axis]}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def sweep_report(docs: list[ResultsDocument], out_dir: Optional[Path] = None) -> str:
    """Markdown: per axis a table (and, with ``out_dir``, a figure written there and linked)."""
    parts = [
        "# kanbench sweep",
        "",
        "Cells: forward / backward median ms, (forward+backward) relative to the MLP at the same point, "
        "and achieved GFLOP/s of the forward (analytic FLOPs, see kanbench/flops.py).",
    ]
    for axis in AXES:
        rows = axis_rows(docs, axis)
        if not rows:
            continue
        parts += ["", f"## {AXIS_LABELS[axis]}", ""]
        if out_dir is not None:
            fig = sweep_figure(rows, axis, Path(out_dir) / f"sweep_{axis}.png")
            if fig:
                parts += [f"![{axis}]({fig.name})", ""]
        parts.append(sweep_table(rows))
        if axis in NUMERIC_AXES:
            cross = crossings(rows)
            if cross:
                parts += [
                    "",
                    "Crosses the MLP (ratio 1) at: "
                    + ", ".join(f"{impl}-{dev} ~{v:.3g}" for (impl, dev), v in sorted(cross.items())),
                ]
        errors = [r for r in rows if r.record.failed]
        if errors:
            parts += [""] + [f"- {r.impl}-{r.device} at {axis}={r.value}: {r.record.error}" for r in errors]
    text = "\n".join(parts) + "\n"
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "sweep.md").write_text(text)
    return text


def fit_figure(records: list[FitResult], path: Path) -> Optional[Path]:
    tasks = list(dict.fromkeys(r.task for r in records))
    if not tasks:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), dpi=100, squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for r in records:
            if r.task != task or not r.curve:
                continue
            ax.plot([c[0] for c in r.curve], [c[1] for c in r.curve], label=row_label(r.impl, r.device))
        ax.set_yscale("log")
        ax.set_title(task)
        ax.set_xlabel("step")
        ax.set_ylabel("test RMSE")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
