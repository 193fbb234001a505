"""FourierKAN (https://github.com/GistNoesis/FourierKAN), row ``fourierkan``: Fourier series.

Install: ``kanbench install fourierkan`` (pinned ef80791, 2024-05-24, MIT; a single file,
``fftKAN.py``, loaded from the checkout).

Construction: ``NaiveFourierKANLayer(in, out, gridsize=4, addbias=True)`` per layer:
y_o = b_o + sum_i sum_{k=1..4} a[o,i,k] cos(k x_i) + b[o,i,k] sin(k x_i).
Parity: 2*gridsize = 8 coefficients per edge + one bias per output (no base weight):
3,751 at [2,150,1].

Known quirk: the forward materializes (batch, out, in, gridsize) cosine and sine tensors
and their products with the coefficients, so memory grows as batch*out*in*gridsize
(KAN-benchmarking measured 2.0 GB at [1000,1000,1], batch 100).
"""

from __future__ import annotations

import torch

from kanbench import Implementation

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "fourierkan", "fftKAN.py"


def build(widths, device, dtype, gridsize=4):
    module = import_from_checkout(SOURCE, TARGET)
    layers = [module.NaiveFourierKANLayer(i, o, gridsize, addbias=True) for i, o in zip(widths[:-1], widths[1:])]
    return torch.nn.Sequential(*layers).to(device=device, dtype=dtype)


def forward_flops(widths, gridsize=4):
    """Per sample: k*x, cos, sin per (input, k) and output; multiply-adds of both series."""
    total = 0.0
    for i, o in zip(widths[:-1], widths[1:]):
        total += o * i * gridsize * (3 + 2 * 2)
    return total


fourierkan = Implementation(
    name="fourierkan",
    build=build,
    family="Fourier",
    description="FourierKAN NaiveFourierKANLayer(in, out, gridsize=4) per layer",
    check=lambda: checkout_reason(SOURCE, TARGET),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    options=("gridsize",),
    flops=forward_flops,
)
