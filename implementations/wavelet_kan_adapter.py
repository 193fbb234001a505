"""torch-wavelet-kan (PyPI ``torch-wavelet-kan`` 0.0.2, MIT), row ``morlet-kan``.

Install: ``kanbench install torch-wavelet-kan`` (``pip install torch-wavelet-kan==0.0.2``; it
declares torch and numpy -- unlike Wav-KAN's repository, it does not import torchvision).

Construction: ``nn.Sequential`` of ``WaveletKANLayer(in, out, num_wavelets=5)``, the package's
only layer: per edge a SiLU base weight plus five Morlet wavelets exp(-t^2/2) cos(5t),
t = (x - mu) / scale, each with its own trainable weight, translation and scale -- 16 trainable
parameters per edge, no bias.

Known quirks: the forward materializes a (batch, out, in, wavelets) tensor, so memory grows with
batch x out x in (at [1000,1000,1] batch 100: 2 GB in float32 for one layer); mu is drawn from
N(0, 1) and scale from N(1, 0.1) (no grid); the package's repository URL is a placeholder.
"""

from __future__ import annotations

import torch

from kanbench import Implementation

INSTALL = "kanbench install torch-wavelet-kan"


def build(widths, device, dtype, num_wavelets: int = 5):
    from torch_wavelet_kan import WaveletKANLayer

    layers = [WaveletKANLayer(i, o, num_wavelets=num_wavelets) for i, o in zip(widths[:-1], widths[1:])]
    return torch.nn.Sequential(*layers).to(device=device, dtype=dtype)


def _flops(widths, num_wavelets=5):
    """Per sample: per edge and wavelet ~12 operations (t, exp, cos, weighted sum), plus the base matmul."""
    return float(sum(i * o * (12 * num_wavelets + 4) + 2 * i for i, o in zip(widths[:-1], widths[1:])))


morlet_kan = Implementation(
    name="morlet-kan",
    family="wavelet (Morlet)",
    build=build,
    description="torch-wavelet-kan WaveletKANLayer(in, out, num_wavelets=5) per layer",
    requires=("torch_wavelet_kan",),
    install=INSTALL,
    notes=__doc__,
    options=("num_wavelets",),
    flops=_flops,
)
