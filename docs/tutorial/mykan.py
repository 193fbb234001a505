"""A KAN in a few lines, registered with kanbench (the manual's "Adding an implementation").

``kanbench run --implementations docs/tutorial --impl mlp,mykan`` measures it next to the MLP;
tests/test_docs.py runs exactly that, so this file is kept working.
"""

import torch
from torch import nn

from kanbench import Implementation


class GaussianKANLayer(nn.Module):
    """y_q = sum_p sum_i c[q, p, i] * exp(-((x_p - g_i) / h)^2) + w[q, p] * silu(x_p)."""

    def __init__(self, in_features: int, out_features: int, num_centers: int = 8):
        super().__init__()
        self.register_buffer("centers", torch.linspace(-1.0, 1.0, num_centers))
        self.width = 2.0 / (num_centers - 1)
        self.coef = nn.Parameter(torch.randn(out_features, in_features * num_centers) * 0.1)
        self.base = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, in, centers) -> (batch, in * centers): every edge's basis values, then one matmul
        basis = torch.exp(-(((x.unsqueeze(-1) - self.centers) / self.width) ** 2))
        return basis.flatten(1) @ self.coef.T + self.base(nn.functional.silu(x))


class MyKAN(nn.Sequential):
    """A stack of Gaussian KAN layers for widths ``[in, hidden..., out]``."""

    def __init__(self, widths, num_centers: int = 8):
        super().__init__(*(GaussianKANLayer(a, b, num_centers) for a, b in zip(widths[:-1], widths[1:])))


def build(widths, device, dtype, grid_size=5):
    """kanbench calls this for every row: the widths, a torch.device and a torch.dtype."""
    return MyKAN(widths, num_centers=grid_size + 3).to(device=device, dtype=dtype)


spec = Implementation(
    name="mykan",  # the rows read mykan-cpu / mykan-gpu
    build=build,
    description="the tutorial's Gaussian KAN",
    family="Gaussian RBF",  # the leaderboard's family column
    options=("grid_size",),  # build(..., grid_size=G) for `kanbench sweep --grid`
)
