"""The B-spline KAN layer (pykan's KANLayer on the one-matmul fast path)."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from . import basis as basis_mod
from . import grids
from .layers import KANLayer


class SplineKANLayer(KANLayer):
    """B-spline KAN layer (pykan's KANLayer, on the one-matmul fast path).

    Args:
        grid_size: G, the number of grid intervals (default 5).
        spline_order: k, the spline degree (default 3).
        grid_range: (lo, hi) of the initial uniform grid (default (-1, 1)).
        grid_eps: blend of uniform (1) and data-adaptive (0) grids in :meth:`update_grid` (pykan's 0.02).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: Sequence[float] = (-1.0, 1.0),
        grid_eps: float = 0.02,
        **kwargs,
    ):
        if grid_size < 1 or spline_order < 0:
            raise ValueError(f"need grid_size >= 1 and spline_order >= 0, got {grid_size}, {spline_order}")
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.grid_eps = grid_eps
        super().__init__(in_features, out_features, grid_size + spline_order, **kwargs)
        device, dtype = self.weight.device, self.weight.dtype
        grid = basis_mod.uniform_grid(in_features, grid_size, spline_order, grid_range[0], grid_range[1], device, dtype)
        for name in ("grid", "affine_a", "affine_b"):
            self.register_buffer(name, None)  # _set_grid installs them, in the weight's device and dtype
        self._set_grid(grid, uniform=True)

    @torch.no_grad()
    def _set_grid(self, grid: torch.Tensor, uniform: Optional[bool] = None):
        """Install knots ``grid`` (in, G+2k+1), in this layer's dtype and device; ``uniform`` when the
        caller knows (a grid on the ``meta`` device has no values to check: it is taken as uniform)."""
        w = self.weight
        self.grid = grid.to(device=w.device, dtype=w.dtype)
        if uniform is None:
            uniform = grid.is_meta or basis_mod.is_uniform(grid.to(torch.float64))
        self.uniform = uniform
        if self.uniform:
            a, b = basis_mod.uniform_affine(grid.to(torch.float64), self.spline_order)
            self.affine_a = a.to(device=w.device, dtype=w.dtype)
            self.affine_b = b.to(device=w.device, dtype=w.dtype)
        else:
            self.affine_a = self.affine_a.new_empty(0)
            self.affine_b = self.affine_b.new_empty(0)
        self._cox_tables = None if self.uniform else basis_mod.cox_de_boor_tables(self.grid, self.spline_order)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the affine tables are empty on a non-uniform grid: give them the saved shape, but this
        # module's device and dtype (load_state_dict copies values into them, converting)
        w = self.weight
        for name in ("affine_a", "affine_b"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty(state_dict[key].shape, device=w.device, dtype=w.dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.uniform = self.affine_a.numel() > 0
        self._cox_tables = None if self.uniform else basis_mod.cox_de_boor_tables(self.grid, self.spline_order)

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if getattr(self, "_cox_tables", None) is not None:  # follow .to(device/dtype)
            self._cox_tables = basis_mod.cox_de_boor_tables(self.grid, self.spline_order)
        return out

    def native_basis(self):
        if self.uniform:
            return self.affine_a, self.affine_b, "bspline_uniform", self.spline_order
        return self.grid, self.grid.new_empty(0), "bspline", self.spline_order

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        if self.uniform:
            return basis_mod.bspline_uniform(x, self.affine_a, self.affine_b, self.spline_order)
        if self._cox_tables is None:
            self._cox_tables = basis_mod.cox_de_boor_tables(self.grid, self.spline_order)
        return basis_mod.bspline_cox_de_boor(x, self.grid, self.spline_order, self._cox_tables)

    def grid_range(self):
        k = self.spline_order
        return self.grid[:, k], self.grid[:, -k - 1]

    def _copy_input_grid(self, src: int, dst: int):
        grid = self.grid.clone()
        grid[dst] = grid[src]
        self._set_grid(grid)

    def _basis_options(self) -> dict:
        return {"grid_size": self.grid_size, "spline_order": self.spline_order, "grid_eps": self.grid_eps}

    def _copy_grid_to(self, new: "SplineKANLayer", in_ids: torch.Tensor):
        new._set_grid(self.grid[in_ids].clone())

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: Optional[float] = None, margin: float = 0.0):
        """Refit the grid to the data ``x`` (N, in) keeping the learned functions (least squares).

        New knots per input = eps * uniform(min, max) + (1 - eps) * sample quantiles (pykan and
        efficient-kan's blend), extended by k knots on each side.
        """
        eps = self.grid_eps if grid_eps is None else grid_eps
        old = self._spline_values(x)
        inner = grids.data_grid(x, self.grid_size + 1, eps, margin, getattr(self, "input_groups", None))
        self._set_grid(basis_mod.extend_knots(inner, self.spline_order))
        self._refit(x, old)

    @torch.no_grad()
    def extend_grid(self, new_grid_size: int, x: Optional[torch.Tensor] = None, samples: int = 0):
        """Move to a uniform grid of ``new_grid_size`` intervals, refitting the functions on points
        spread over the grid and on ``x`` when given. The range stays the same unless ``x`` reaches
        beyond it (then it is widened to cover ``x``). Exact when the old knots are a subset of the
        new ones (same range, e.g. G -> 2G)."""
        if new_grid_size < 1:
            raise ValueError("new_grid_size must be at least 1")
        n = samples or max(4 * (new_grid_size + self.spline_order), 64)
        xs = grids.fit_points(self, n, x)
        lo, hi = grids.covering_range(self, x)
        old = self._spline_values(xs)
        self.grid_size = new_grid_size
        self._resize_basis(new_grid_size + self.spline_order)
        w = self.weight
        if self.uniform or x is not None:
            grid = basis_mod.uniform_grid(self.in_features, new_grid_size, self.spline_order, lo, hi, w.device, w.dtype)
            self._set_grid(grid, uniform=True)
        else:
            old_inner = self.grid[:, self.spline_order : -self.spline_order].to(torch.float64)
            inner = grids.refine_knots(old_inner, new_grid_size)
            self._set_grid(basis_mod.extend_knots(inner, self.spline_order))
        self._refit(xs, old)
