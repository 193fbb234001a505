"""Activation plots in pykan's style, headless (matplotlib's Agg backend).

Nodes of each layer sit on a row; between two rows, every edge (q, p) gets a
small inset with phi_{q,p} drawn over its input's range (the data's range when
``x`` is given, else the grid's), joined to its two nodes. An edge's opacity is
tanh(beta * score / max score), with score its L1 statistic on ``x`` (pykan
uses tanh(beta * score) the same way), so unimportant edges fade out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch


def _edge_curves(layer, lo: torch.Tensor, hi: torch.Tensor, n: int = 64):
    t = torch.linspace(0, 1, n, dtype=layer.weight.dtype, device=layer.weight.device).unsqueeze(1)
    xs = lo.unsqueeze(0) + t * (hi - lo).unsqueeze(0)  # (n, in)
    with torch.no_grad():
        ys = layer.edge_values(xs)  # (n, out, in)
    return xs.cpu(), ys.cpu()


def plot_kan(model, path, x: Optional[torch.Tensor] = None, beta: float = 3.0, max_edges: int = 400, dpi: int = 100):
    """Draw every edge's activation of ``model`` into the image file ``path`` (layout and opacity: above)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    widths = model.widths
    n_edges = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    if n_edges > max_edges:
        raise ValueError(
            f"this network has {n_edges} edges; plot draws at most max_edges={max_edges} (prune it first, or raise max_edges)"
        )
    scores = None
    ranges = []
    if x is not None:
        scores = model.edge_scores(x)
        h = x
        with torch.no_grad():
            for layer in model.layers:
                ranges.append((h.amin(0), h.amax(0)))
                h = layer(h)
    else:
        ranges = [tuple(t.detach() for t in layer.grid_range()) for layer in model.layers]

    n_layers = len(model.layers)
    width_units = max(max(a * b for a, b in zip(widths[:-1], widths[1:])), max(widths))
    fig_w = min(2 + 0.9 * width_units, 40)
    fig = plt.figure(figsize=(fig_w, 3.2 * n_layers + 0.5), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, n_layers + 0.05)
    ax.axis("off")

    def node_x(i, n):
        return (i + 0.5) / n

    for l, w in enumerate(widths):
        for i in range(w):
            ax.scatter([node_x(i, w)], [l], s=60, c="black", zorder=3)

    for l, layer in enumerate(model.layers):
        lo, hi = ranges[l]
        hi = torch.where(hi > lo, hi, lo + 1e-3)
        xs, ys = _edge_curves(layer, lo, hi)
        s = scores[l] if scores is not None else None
        smax = float(s.max()) if s is not None and float(s.max()) > 0 else 1.0
        n_in, n_out = layer.in_features, layer.out_features
        count = n_in * n_out
        box_w = 0.8 / count
        k = 0
        for p in range(n_in):
            for q in range(n_out):
                alpha = 1.0 if s is None else max(0.05, math.tanh(beta * float(s[q, p]) / smax))
                cx = (k + 0.5) / count
                bottom, top = l + 0.3, l + 0.7
                ax.plot([node_x(p, n_in), cx], [l, bottom], color="black", alpha=alpha, lw=1)
                ax.plot([cx, node_x(q, n_out)], [top, l + 1], color="black", alpha=alpha, lw=1)
                inset = ax.inset_axes([cx - box_w * 0.45, bottom, box_w * 0.9, top - bottom], transform=ax.transData)
                inset.plot(xs[:, p].numpy(), ys[:, q, p].numpy(), color="tab:blue", alpha=alpha, lw=1.5)
                inset.set_xticks([])
                inset.set_yticks([])
                for spine in inset.spines.values():
                    spine.set_alpha(alpha)
                k += 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
