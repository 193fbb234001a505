"""Variants of our layers, for measuring what each design choice costs.

    kanbench run --implementations benchmarks/variants --impl mlp,splines-better_kan,splines-reg-mean_abs,... --preset large

- ``*-reg-<metric>``: a training step *with* the L1 + entropy regularization: the forward runs
  inside ``tracking()`` and adds ``1e-3 * regularization_loss()`` to the output, so the
  backward goes through the per-edge statistics too (``-s25``: statistics on 25 rows).
- ``splines-scaled``: pykan's separate trainable w_s (``standalone_scale=True``).
- ``splines-coxdeboor``: the Cox--de Boor basis instead of the uniform closed form.
- ``splines-torch-path`` / ``rbf-torch-path``: the layers without their native operator (the PyTorch
  path every layer takes where better_kan._C is not built): what the native kernels save.
- ``splines-layered`` / ``rbf-layered``: the native operator one layer at a time (``fused = False``)
  instead of the whole network as one operator: what the network operator saves.
"""

from torch import nn

from better_kan import build_rbf_kan, build_spline_kan
from kanbench import Implementation


class Regularized(nn.Module):
    def __init__(self, kan, metric, weight=1e-3, sample=None):
        super().__init__()
        self.kan = kan
        self.metric = metric
        self.weight = weight
        self.sample = sample

    def forward(self, x):
        with self.kan.tracking(self.metric, sample=self.sample):
            y = self.kan(x)
        return y + self.weight * self.kan.regularization_loss()


def _regularized(build, metric, sample=None):
    return lambda widths, device, dtype: Regularized(build(widths, device=device, dtype=dtype), metric, sample=sample)


def _torch_path(build, **options):
    def make(widths, device, dtype):
        model = build(widths, device=device, dtype=dtype, **options)
        for layer in model.layers:
            layer.use_native = False
        return model

    return make


def _layered(build, **options):
    def make(widths, device, dtype):
        model = build(widths, device=device, dtype=dtype, **options)
        model.fused = False
        return model

    return make


def _cox_de_boor(widths, device, dtype):
    model = build_spline_kan(widths, device=device, dtype=dtype)
    for layer in model.layers:
        layer.uniform = False  # the grid is still uniform; only the evaluation changes
        layer._cox_tables = None
    return model


VARIANTS = (
    [
        Implementation(
            name=f"splines-reg-{m}",
            build=_regularized(build_spline_kan, m),
            description=f"splines, training step with {m} L1+entropy",
        )
        for m in ("mean_abs", "std", "coef")
    ]
    + [
        Implementation(
            name=f"rbf-reg-{m}", build=_regularized(build_rbf_kan, m), description=f"RBF, training step with {m} L1+entropy"
        )
        for m in ("mean_abs", "std", "coef")
    ]
    + [
        Implementation(
            name="splines-reg-mean_abs-s25",
            build=_regularized(build_spline_kan, "mean_abs", sample=25),
            description="splines, training step with mean_abs L1+entropy on 25 rows of the batch",
        ),
        Implementation(
            name="splines-scaled",
            build=lambda widths, device, dtype: build_spline_kan(widths, device=device, dtype=dtype, standalone_scale=True),
            description="splines with pykan's separate trainable w_s",
        ),
        Implementation(name="splines-coxdeboor", build=_cox_de_boor, description="splines evaluated by Cox-de Boor"),
    ]
    + [
        Implementation(name=f"{kind}-{variant}", build=make(build, **options), description=f"{what} {how}", family=family)
        for kind, build, options, what, family in (
            ("splines", build_spline_kan, {"grid_size": 5}, "our B-spline KAN", "B-spline"),
            ("rbf", build_rbf_kan, {"num_centers": 8}, "our RBF KAN", "Gaussian RBF"),
        )
        for variant, make, how in (
            ("torch-path", _torch_path, "without its native operator (the PyTorch path)"),
            ("layered", _layered, "on the native operator one layer at a time"),
        )
    ]
)
