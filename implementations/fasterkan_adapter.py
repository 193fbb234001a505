"""FasterKAN (https://github.com/AthanasiosDelis/faster-kan), row ``fasterkan``: RSWAF basis.

Install: ``kanbench install fasterkan`` (pinned 3bcabc2, 2024-05-25; Apache-2.0 in
LICENSE.txt while its pyproject says MIT; its pyproject also names the distribution
"efficient-kan", so kanbench loads the ``fasterkan`` package from its checkout instead of
pip-installing it over efficient-kan).

Construction: ``FasterKAN(widths, grid_min=-1.2, grid_max=1.2, num_grids=8)`` (the class's
own default grid_max is 0.2). Each layer: LayerNorm(in) -> RSWAF basis
sech^2((x - g_j) * h) on 8 grid points -> Linear(in*8, out) without bias.
Parity: 8 weights per edge + 2*in LayerNorm parameters: 3,904 at [2,150,1].

Known bugs, as published:
- the basis's forward computes ``tanh(diff)`` where ``tanh(diff * inv_denominator)`` was
  meant (the width h = 0.5 is ignored), while its hand-written backward multiplies by h:
  the gradient is half the derivative of what the forward computes (the sanity gate's
  finite-difference check reports it);
- the LayerNorm over a layer's inputs turns 2 inputs into about sign(x1 - x2).
"""

from __future__ import annotations

from kanbench import Implementation, flops

from ._adapter_util import checkout_reason, import_from_checkout

SOURCE, TARGET = "fasterkan", "fasterkan"


def build(widths, device, dtype, num_grids=8):
    module = import_from_checkout(SOURCE, TARGET)
    model = module.FasterKAN(list(widths), grid_min=-1.2, grid_max=1.2, num_grids=num_grids)
    return model.to(device=device, dtype=dtype)


fasterkan = Implementation(
    name="fasterkan",
    build=build,
    family="RSWAF (sech^2)",
    description="FasterKAN(widths, grid -1.2..1.2, num_grids=8), as published",
    check=lambda: checkout_reason(SOURCE, TARGET),
    install=f"kanbench install {SOURCE}",
    notes=__doc__,
    options=("num_grids",),
    flops=lambda widths, num_grids=8: flops.kan_rbf(widths, num_grids),
)
