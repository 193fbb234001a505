"""SineKAN (https://github.com/ereinha/SineKAN), row ``sinekan``: sines with learned frequencies.

Install: ``kanbench install sinekan`` (pinned 64aaf8e, 2024-12-19; no licence stated; the
file ``sine_kan.py`` is loaded from the checkout).

Construction: ``SineKAN(widths, grid_size=8, device=device)``: per layer
y_o = b_o + sum_i sum_g A[o,i,g] sin(f_g x_i + phase[i,g]), phases a fixed buffer.
Parity: 8 amplitudes per edge (grid_size) + 8 shared frequencies per layer + one bias per
output: 3,767 at [2,150,1].

Known quirks: the device is fixed at construction (``device=`` argument, its phase tensors
are created there); ``SineKANLayer`` reshapes with ``x.reshape(-1, in)``.
"""

from __future__ import annotations

from kanbench import Implementation

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "sinekan", "sine_kan.py"


def build(widths, device, dtype, grid_size=8):
    module = import_from_checkout(SOURCE, TARGET)
    return module.SineKAN(list(widths), grid_size=grid_size, device=str(device)).to(device=device, dtype=dtype)


sinekan = Implementation(
    name="sinekan",
    build=build,
    family="sine",
    description="SineKAN(widths, grid_size=8)",
    check=lambda: checkout_reason(SOURCE, TARGET),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=8: sum(5.0 * i * o * grid_size for i, o in zip(widths[:-1], widths[1:])),
)
