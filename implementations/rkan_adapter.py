"""rKAN (PyPI ``rkan`` 0.0.3, https://github.com/alirezaafzalaghaei/rKAN, BSD-3-Clause), row ``rkan``.

Install: ``kanbench install rkan`` (``pip install rkan==0.0.3``).

Construction, as its README: ``nn.Sequential(Linear(in, h), JacobiRKAN(3), Linear(h, out))``
(a ``JacobiRKAN`` between every pair of Linears): a rational Jacobi polynomial activation
with three trainable scalars (alpha, beta, iota) shared by the whole layer -- an MLP with a
learned activation, not a per-edge KAN. Parity: hidden widths x10 like the MLP baseline;
compare it param-matched (``--match params``), where, like the MLP's, its hidden width is searched
one unit at a time (``hidden_factor=1``).

Known quirks: ``degree`` must be 1..6; ``rkan/__init__`` is empty, the torch layers are in
``rkan.torch`` (``rkan.tensorflow`` needs TensorFlow).
"""

from __future__ import annotations

import torch

from kanbench import Implementation
from kanbench.baseline import HIDDEN_FACTOR


def build(widths, device, dtype, degree=3, hidden_factor=HIDDEN_FACTOR):
    from rkan.torch import JacobiRKAN

    sizes = [widths[0]] + [int(w * hidden_factor) for w in widths[1:-1]] + [widths[-1]]
    layers = []
    for n, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        if n:
            layers.append(JacobiRKAN(degree))
        layers.append(torch.nn.Linear(i, o))
    return torch.nn.Sequential(*layers).to(device=device, dtype=dtype)


rkan = Implementation(
    name="rkan",
    build=build,
    family="rational Jacobi (activation)",
    description=f"rKAN: Linear, JacobiRKAN(3), Linear; hidden x{HIDDEN_FACTOR}",
    requires=("rkan.torch",),
    install="kanbench install rkan",
    notes=__doc__,
    options=("degree", "hidden_factor"),
    match_options={"hidden_factor": 1},
)
