"""Grid helpers shared by the layers: where knots and centers go, and where a refit samples.

Shapes: per-input grids are ``(in, points)``; samples ``x`` are ``(N, in)``.
"""

from __future__ import annotations

from typing import Optional

import torch


def fit_points(layer, n: int, x: Optional[torch.Tensor] = None) -> torch.Tensor:
    """n points per input spread uniformly over the layer's grid range, plus the data ``x``
    when given: (n [+ N], in)."""
    lo, hi = layer.grid_range()
    t = torch.linspace(0, 1, n, dtype=lo.dtype, device=lo.device).unsqueeze(1)
    pts = lo.unsqueeze(0) + t * (hi - lo).unsqueeze(0)
    if x is not None:
        pts = torch.cat([pts, x.detach().to(pts.dtype)], dim=0)
    return pts


def covering_range(layer, x: Optional[torch.Tensor]):
    """The layer's grid range per input, widened to cover ``x`` when given."""
    lo, hi = layer.grid_range()
    if x is not None:
        lo = torch.minimum(lo, x.detach().amin(0).to(lo.dtype))
        hi = torch.maximum(hi, x.detach().amax(0).to(hi.dtype))
    return lo, hi


def refine_knots(inner: torch.Tensor, new_intervals: int) -> torch.Tensor:
    """Piecewise-linear resampling of per-input knots (in, G+1) to (in, G'+1) keeping the ends."""
    G = inner.shape[1] - 1
    pos = torch.linspace(0, G, new_intervals + 1, dtype=inner.dtype, device=inner.device)
    lo = pos.floor().long().clamp(max=G - 1)
    frac = pos - lo
    return inner[:, lo] * (1 - frac) + inner[:, lo + 1] * frac


def _blend(xs: torch.Tensor, points: int, eps: float, margin: float) -> torch.Tensor:
    """eps * uniform(min, max) + (1 - eps) * sample quantiles of sorted samples xs (N, C): (C, points)."""
    n = xs.shape[0]
    idx = torch.linspace(0, n - 1, points, dtype=torch.float64, device=xs.device)
    lo_i, hi_i = idx.floor().long(), idx.ceil().long()
    frac = (idx - lo_i).unsqueeze(1)
    adaptive = (xs[lo_i] * (1 - frac) + xs[hi_i] * frac).T
    lo, hi = xs[0] - margin, xs[-1] + margin
    steps = torch.linspace(0, 1, points, dtype=torch.float64, device=xs.device)
    uniform = lo.unsqueeze(1) + steps * (hi - lo).clamp_min(1e-6).unsqueeze(1)
    return eps * uniform + (1 - eps) * adaptive


def data_grid(x: torch.Tensor, points: int, eps: float, margin: float = 0.0, groups=None) -> torch.Tensor:
    """Per-input grid points (in, points) following the data x (N, in), as pykan's and
    efficient-kan's ``update_grid`` do. Inputs of one group (``tie_inputs``) share the grid
    of their pooled samples."""
    xs = torch.sort(x.detach().to(torch.float64), dim=0).values
    grid = _blend(xs, points, eps, margin)
    members: dict[int, list[int]] = {}
    for p, g in enumerate(groups or ()):
        if g > 0:
            members.setdefault(g, []).append(p)
    for ids in members.values():
        pooled = torch.sort(xs[:, ids].reshape(-1, 1), dim=0).values
        grid[ids] = _blend(pooled, points, eps, margin)[0]
    return grid


def widths_from(centers: torch.Tensor, scale: float) -> torch.Tensor:
    """h_{p,i}: the mean distance to the neighbouring centers (the spacing, on a uniform grid)."""
    gaps = torch.diff(centers, dim=1)
    left = torch.cat([gaps[:, :1], gaps], dim=1)
    right = torch.cat([gaps, gaps[:, -1:]], dim=1)
    return ((left + right) / 2 * scale).clamp_min(1e-6)
