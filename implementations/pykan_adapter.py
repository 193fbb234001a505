"""pykan (https://github.com/KindXiaoming/pykan), the original KAN.

Rows: ``pykan`` (default mode) and ``pykan-speed`` (after ``model.speed()``, which
turns off the symbolic branch and the saving of activations).

Parity: ``KAN(width=widths, grid=5, k=3, seed=0)``, the settings of the seed's
table. Counting quirks: pykan stores its grids, masks and node/subnode affine
terms as frozen ``Parameter``s (counted in "num params", not in "trainable"),
and every edge also has the symbolic branch's 4 affine parameters, which are
trainable: 14 trainable parameters per edge (8 coefficients, scale_base,
scale_sp, 4 symbolic) -- 6300 of 9628 at [2,150,1].

``pykan-speed`` freezes the symbolic branch's affine parameters: ``speed()`` leaves that branch out
of the forward pass, so they get no gradient and change nothing, and counting them as trainable
would hand pykan-speed 4 fewer useful parameters per edge than its budget says. In the default
mode they stay trainable, as pykan has them (the branch is computed, but its mask is zero until a
formula is fixed).

Files: pykan writes checkpoints to ``./model`` by default; the adapter passes
``auto_save=False`` and a temporary ``ckpt_path`` so nothing lands in the
working directory.
"""

from __future__ import annotations

import tempfile

from kanbench import Implementation, flops

from ._adapter_util import default_dtype

INSTALL = 'pip install "kanbench[pykan]"  (pykan==0.2.8 plus the packages it imports: sympy, scikit-learn, tqdm, pyyaml, pandas, matplotlib)'

_CKPT_DIR = tempfile.gettempdir()


def build_pykan(widths, device, dtype, speed: bool = False, grid_size: int = 5):
    import torch
    from kan import KAN

    # pykan seeds torch itself (torch.manual_seed(seed) in KAN.__init__): pass the caller's seed on,
    # so that runs seeded differently (the accuracy suite's seeds) initialize differently
    seed = int(torch.initial_seed() % (2**31))
    with default_dtype(dtype):
        model = KAN(
            width=list(widths),
            grid=grid_size,
            k=3,
            seed=seed,
            auto_save=False,
            ckpt_path=f"{_CKPT_DIR}/kanbench-pykan-ckpt",
            device=device,
        )
    model = model.to(device)
    return _speed(model) if speed else model


def _speed(model):
    model = model.speed()
    for layer in getattr(model, "symbolic_fun", ()):  # out of the forward pass: dead parameters
        layer.affine.requires_grad_(False)
    return model


def extend_pykan(model, new_size: int, x, speed: bool = False):
    """pykan's own grid extension: ``refine(new_size)`` builds a model with the finer grid, fitted to
    this one's activations on the inputs of its last forward pass (run here on x, with the
    activations saved: speed mode does not save them)."""
    import torch

    dtype = next(model.parameters()).dtype
    saved, model.save_act = model.save_act, True
    try:
        with torch.no_grad():
            model(x.to(dtype))
        with default_dtype(dtype):
            new = model.refine(new_size)
    finally:
        model.save_act = saved
    return _speed(new) if speed else new


def update_pykan(model, x) -> None:
    """pykan's own grid adaptation during its fit: every layer's grid refitted to the samples that
    reach it (``update_grid_from_samples``; it needs the activations saved, which speed mode skips)."""
    import torch

    dtype = next(model.parameters()).dtype
    saved, model.save_act = model.save_act, True
    try:  # pykan makes the new grid's tensors in the default dtype
        with torch.no_grad(), default_dtype(dtype):
            model.update_grid_from_samples(x.to(dtype))
    finally:
        model.save_act = saved


pykan = Implementation(
    name="pykan",
    family="B-spline",
    build=build_pykan,
    description="pykan 0.2.8 KAN(width, grid=5, k=3), default mode",
    requires=("kan", "sympy", "sklearn", "yaml", "tqdm", "pandas", "matplotlib"),
    min_versions={"pykan": "0.2.1"},
    install=INSTALL,
    notes=__doc__,
    options=("grid_size",),
    flops=lambda widths, grid_size=5: flops.kan_bspline(widths, grid_size, 3),
    extend_grid=extend_pykan,
    update_grid=update_pykan,
)
pykan_speed = Implementation(
    name="pykan-speed",
    family="B-spline",
    build=lambda widths, device, dtype, grid_size=5: build_pykan(widths, device, dtype, speed=True, grid_size=grid_size),
    description="pykan 0.2.8 after model.speed() (no symbolic branch, no saved activations)",
    requires=pykan.requires,
    min_versions=pykan.min_versions,
    install=INSTALL,
    notes=__doc__,
    options=pykan.options,
    flops=pykan.flops,
    extend_grid=lambda model, new_size, x: extend_pykan(model, new_size, x, speed=True),
    update_grid=update_pykan,
)
