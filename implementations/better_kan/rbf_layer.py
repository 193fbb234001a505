"""The RBF KAN layer: per-input radial basis functions on the one-matmul fast path."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from . import basis as basis_mod
from . import grids
from .layers import KANLayer


class RBFKANLayer(KANLayer):
    """RBF KAN layer: ``phi_{q,p}(x) = w_b silu(x) + sum_i c[q,p,i] phi(|x - g_{p,i}| / h_{p,i})``.

    Centers g_{p,i} are per input (the KAN paper's sum of univariate functions);
    widths h_{p,i} come from the grid spacing (times ``width_scale``).

    Args:
        num_centers: centers per input (default 8: with the base weight, 9 parameters per edge,
            as the default B-spline layer's G + k + 1).
        grid_range: (lo, hi) of the initial uniform centers (default (-1, 1)); centers include both ends.
        kernel: gaussian (default), inverse_quadratic, multiquadric, inverse_multiquadric, matern32, matern52.
        trainable_centers: learn the centers (and keep widths from their spacing at init).
        width_scale: h = width_scale * spacing (default 1).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_centers: int = 8,
        grid_range: Sequence[float] = (-1.0, 1.0),
        kernel: str = "gaussian",
        trainable_centers: bool = False,
        width_scale: float = 1.0,
        grid_eps: float = 0.02,
        **kwargs,
    ):
        if kernel not in basis_mod.KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; use one of {', '.join(basis_mod.KERNELS)}")
        if num_centers < 2:
            raise ValueError("num_centers must be at least 2")
        self.kernel = kernel
        self.num_centers = num_centers
        self.width_scale = width_scale
        self.grid_eps = grid_eps
        super().__init__(in_features, out_features, num_centers, **kwargs)
        device, dtype = self.weight.device, self.weight.dtype
        lo, hi = float(grid_range[0]), float(grid_range[1])
        centers = torch.linspace(lo, hi, num_centers, device=device, dtype=torch.float64).expand(in_features, -1)
        self.trainable_centers = trainable_centers
        if trainable_centers:
            self.centers = nn.Parameter(centers.to(dtype).clone())
        else:
            self.register_buffer("centers", centers.to(dtype).clone())
        self.register_buffer("widths", grids.widths_from(centers, width_scale).to(dtype))
        self.register_buffer("affine_a", torch.empty(0, device=device, dtype=dtype))
        self.register_buffer("affine_b", torch.empty(0, device=device, dtype=dtype))
        self._refresh_affine()

    @torch.no_grad()
    def _refresh_affine(self):
        if not self.trainable_centers:
            self.affine_a = (1.0 / self.widths).contiguous()
            self.affine_b = (-self.centers / self.widths).contiguous()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_affine()

    def native_basis(self):
        if self.trainable_centers:  # the centers' gradient flows through b = -centers / widths
            a = 1.0 / self.widths
            return a, -self.centers * a, self.kernel, 0
        return self.affine_a, self.affine_b, self.kernel, 0

    def basis(self, x: torch.Tensor) -> torch.Tensor:
        if self.trainable_centers:
            a = 1.0 / self.widths
            return basis_mod.rbf_basis(x, a, -self.centers * a, self.kernel)
        return basis_mod.rbf_basis(x, self.affine_a, self.affine_b, self.kernel)

    def grid_range(self):
        return self.centers[:, 0].detach(), self.centers[:, -1].detach()

    @torch.no_grad()
    def _set_centers(self, centers: torch.Tensor):
        centers = centers.to(self.weight.dtype)
        if self.trainable_centers:
            self.centers.copy_(centers) if self.centers.shape == centers.shape else setattr(
                self, "centers", nn.Parameter(centers.clone())
            )
        else:
            self.centers = centers.clone()
        self.widths = grids.widths_from(centers.to(torch.float64), self.width_scale).to(self.weight.dtype)
        self._refresh_affine()

    def _copy_input_grid(self, src: int, dst: int):
        c = self.centers.detach().clone()
        c[dst] = c[src]
        self._set_centers(c)

    def _basis_options(self) -> dict:
        return {
            "num_centers": self.num_centers,
            "kernel": self.kernel,
            "trainable_centers": self.trainable_centers,
            "width_scale": self.width_scale,
            "grid_eps": self.grid_eps,
        }

    def _copy_grid_to(self, new: "RBFKANLayer", in_ids: torch.Tensor):
        new._set_centers(self.centers.detach()[in_ids].clone())
        new.widths = self.widths[in_ids].clone()
        new._refresh_affine()

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: Optional[float] = None, margin: float = 0.0):
        """Move the centers to the data (uniform/quantile blend), refit the coefficients."""
        eps = self.grid_eps if grid_eps is None else grid_eps
        old = self._spline_values(x)
        m = self.num_centers
        centers = grids.data_grid(x, m, eps, margin, getattr(self, "input_groups", None))
        # keep centers strictly increasing so widths stay positive
        centers = torch.maximum(centers, torch.cummax(centers, dim=1).values)
        gaps = torch.diff(centers, dim=1)
        floor = 1e-3 * (centers[:, -1:] - centers[:, :1]).clamp_min(1e-6) / m
        centers = torch.cat([centers[:, :1], centers[:, :1] + torch.cumsum(torch.maximum(gaps, floor), dim=1)], dim=1)
        self._set_centers(centers)
        self._refit(x, old)

    @torch.no_grad()
    def extend_grid(self, new_num_centers: int, x: Optional[torch.Tensor] = None, samples: int = 0):
        """Use ``new_num_centers`` centers, refitting the functions (least squares) on points spread
        over the centers' range and on ``x`` when given. The centers span the old range, widened to
        cover ``x``: narrower kernels have shorter tails, so data beyond the outer centers could
        not be fitted otherwise."""
        if new_num_centers < 2:
            raise ValueError("new_num_centers must be at least 2")
        n = samples or max(8 * new_num_centers, 128)
        xs = grids.fit_points(self, n, x)
        old = self._spline_values(xs)
        lo, hi = grids.covering_range(self, x)
        self.num_centers = new_num_centers
        self._resize_basis(new_num_centers)
        w = self.weight
        t = torch.linspace(0, 1, new_num_centers, dtype=torch.float64, device=w.device)
        centers = lo.to(torch.float64).unsqueeze(1) + t * (hi - lo).to(torch.float64).unsqueeze(1)
        if self.trainable_centers:
            self.centers = nn.Parameter(centers.to(w.dtype))
        self._set_centers(centers)
        self._refit(xs, old, ridge=1e-10)
