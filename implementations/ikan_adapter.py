"""ikan (PyPI ``ikan`` 1.3.0, https://github.com/lgy112112/Efficient-KAN-in-Chinese, MIT):
rows ``ikan-jacobi``, ``ikan-taylor``, ``ikan-fourier``, ``ikan-wavelet``.

Install: ``kanbench install ikan`` (``pip install --no-deps ikan==1.3.0 torchinfo``).
``import ikan`` imports timm (for GroupKAN) and, through timm, torchvision, neither of which
the four layers use; it also prints its install path. The adapter therefore loads each
layer's own file (``ikan/JacobiKAN.py``, ...) without running the package's ``__init__``.

Each layer is efficient-kan's pattern with another basis: y = W_b SiLU(x) + sum over the
basis + bias. Parity (9 parameters per edge + one bias per output, 4,201 at [2,150,1]):
- ``JacobiKAN(widths, degree=7)``: Jacobi polynomials P_0..P_7 (a = b = 1) of tanh(x);
- ``TaylorKAN(widths, order=8)``: powers x^0..x^7 (no squashing: unbounded inputs blow up);
- ``FourierKAN(widths, num_frequencies=4)``: cos and sin of k x, k = 1..4;
- ``WaveletKAN(widths, wavelet_type='mexican_hat')``: one wavelet per edge with its scale
  and translation (4 per edge with the base weight: fewer than the others; match params).
"""

from __future__ import annotations

from kanbench import Implementation

from ._adapter_util import import_package_file, package_file_reason

INSTALL = "kanbench install ikan"

VARIANTS = {
    # row: (file, class, keyword options, family, per-edge FLOPs model)
    "ikan-jacobi": ("JacobiKAN.py", "JacobiKAN", {"degree": 7}, "Jacobi polynomial", 2 * 8 + 12),
    "ikan-taylor": ("TaylorKAN.py", "TaylorKAN", {"order": 8}, "Taylor polynomial", 2 * 8 + 8),
    "ikan-fourier": ("FourierKAN.py", "FourierKAN", {"num_frequencies": 4}, "Fourier", 2 * 8 + 8),
    "ikan-wavelet": ("WaveletKAN.py", "WaveletKAN", {"wavelet_type": "mexican_hat"}, "wavelet", 12),
}


def _spec(row: str) -> Implementation:
    filename, cls, kwargs, family, per_edge = VARIANTS[row]

    def build(widths, device, dtype):
        module = import_package_file("ikan", filename)
        return getattr(module, cls)(list(widths), **kwargs).to(device=device, dtype=dtype)

    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return Implementation(
        name=row,
        build=build,
        family=family,
        description=f"ikan {cls}(widths, {args})",
        check=lambda: package_file_reason("ikan", filename, INSTALL),
        install=INSTALL,
        notes=__doc__,
        flops=lambda widths: sum(float(per_edge) * i * o for i, o in zip(widths[:-1], widths[1:])),
    )


specs = [_spec(row) for row in VARIANTS]
