"""Wav-KAN (https://github.com/zavareh1/Wav-KAN), row ``wavkan``: mexican-hat wavelets.

Install: ``kanbench install wavkan`` (pinned f7ab521, 2025-06-09, MIT). ``KAN.py`` imports
torchvision and tqdm at the top (the layers use neither): torchvision must import, built
for the installed torch -- on a CPU-only torch from PyPI's CPU index use its torchvision
(``pip install torchvision --index-url https://download.pytorch.org/whl/cpu``).

Construction: ``KAN(widths, wavelet_type='mexican_hat')``: per edge a scale, a translation
and a wavelet weight, then BatchNorm1d(out) on every layer's output.
Parity: 4 parameters per edge (scale, translation, wavelet weight, and ``weight1``, which
the forward never uses) + 2*out BatchNorm parameters.

Known quirks: ``weight1`` gets no gradient (the sanity gate says so; it inflates the
parameter count); BatchNorm needs batch >= 2 in training mode and computes something
else in eval mode; the forward expands (batch, out, in) tensors.
"""

from __future__ import annotations

from kanbench import Implementation

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "wavkan", "KAN.py"


def build(widths, device, dtype, wavelet_type="mexican_hat"):
    module = import_from_checkout(SOURCE, TARGET)
    return module.KAN(list(widths), wavelet_type=wavelet_type).to(device=device, dtype=dtype)


wavkan = Implementation(
    name="wavkan",
    build=build,
    family="wavelet",
    description="Wav-KAN KAN(widths, wavelet_type='mexican_hat')",
    check=lambda: checkout_reason(SOURCE, TARGET),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    flops=lambda widths: sum(12.0 * i * o for i, o in zip(widths[:-1], widths[1:])),
)
