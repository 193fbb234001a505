"""The workload: network widths, batch size, dtype, the data pool and the loss.

Inputs are drawn uniform in [-1, 1] from a fixed-seed pool of ``pool`` samples
(1000 by default); targets are the seed's function ``exp(sin(pi*x0) + x1^2)``
(``exp(sin(pi*x0))`` when there is a single input), repeated over every output
column. Each repetition takes a fresh batch of rows from the pool, chosen
outside the timed region. The loss is the mean squared error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Optional, Sequence

DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float64": "float64",
    "fp64": "float64",
    "double": "float64",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


class WorkloadError(ValueError):
    """A workload argument that cannot be used (bad shape, batch or dtype)."""


@dataclass(frozen=True)
class Workload:
    """Network widths, batch, dtype and the data pool: what every row is measured on."""

    widths: tuple[int, ...]
    batch: int
    dtype: str = "float32"
    pool: int = 1000
    seed: int = 0
    preset: Optional[str] = None

    def __post_init__(self):
        widths = tuple(self.widths)
        if len(widths) < 2:
            raise WorkloadError(f"shape needs at least two widths (in,out), got {list(widths)}")
        for w in widths:
            if not isinstance(w, int) or isinstance(w, bool) or w < 1:
                raise WorkloadError(f"shape widths must be positive integers, got {list(widths)}")
        object.__setattr__(self, "widths", widths)
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise WorkloadError(f"batch must be a positive integer, got {self.batch!r}")
        if not isinstance(self.pool, int) or self.pool < 1:
            raise WorkloadError(f"pool must be a positive integer, got {self.pool!r}")
        object.__setattr__(self, "dtype", parse_dtype(self.dtype))

    @property
    def key(self) -> str:
        """A short stable label, e.g. ``2x150x1-b32-float32``."""
        return f"{'x'.join(map(str, self.widths))}-b{self.batch}-{self.dtype}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Workload":
        return cls(
            widths=tuple(d["widths"]),
            batch=int(d["batch"]),
            dtype=d.get("dtype", "float32"),
            pool=int(d.get("pool", 1000)),
            seed=int(d.get("seed", 0)),
            preset=d.get("preset"),
        )

    def with_(self, **changes) -> "Workload":
        return replace(self, **changes)


def parse_dtype(text: str) -> str:
    key = str(text).strip().lower().replace("torch.", "")
    try:
        return DTYPES[key]
    except KeyError:
        raise WorkloadError(f"unknown dtype {text!r}; use one of float32, float64, bfloat16, float16") from None


def parse_shape(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise WorkloadError(f"malformed shape {text!r}: expected comma-separated widths like 2,150,1") from None
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise WorkloadError(f"malformed shape {text!r}: expected at least two positive widths like 2,150,1")
    return widths


def parse_batch(text) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise WorkloadError(f"malformed batch {text!r}: expected a positive integer") from None
    if value < 1:
        raise WorkloadError(f"malformed batch {text!r}: expected a positive integer")
    return value


def resolve(
    preset: Optional[str] = None,
    shape: Optional[Sequence[int]] = None,
    batch: Optional[int] = None,
    dtype: Optional[str] = None,
) -> Workload:
    """A preset (default ``seed``) with any of shape/batch/dtype overridden."""
    name = preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise WorkloadError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    w = PRESETS[name]
    changes: dict = {}
    if shape is not None:
        changes["widths"] = tuple(shape)
    if batch is not None:
        changes["batch"] = batch
    if dtype is not None:
        changes["dtype"] = parse_dtype(dtype)
    if changes:
        custom = any(changes.get(k) is not None and changes[k] != getattr(w, k) for k in changes)
        w = replace(w, **changes, preset=None if custom else w.preset)
    return w


PRESETS: dict[str, Workload] = {
    # the configuration behind the seed's table (KAN-benchmarking's defaults)
    "seed": Workload(widths=(2, 150, 1), batch=32, preset="seed"),
    # the published KAN-benchmarking configuration (times-all-BS100-I1000-H1000)
    "large": Workload(widths=(1000, 1000, 1), batch=100, preset="large"),
    # small and fast, for smoke tests
    "quick": Workload(widths=(2, 64, 1), batch=32, preset="quick"),
    # the regression gate's: small enough for CI, large enough that time follows work
    "gate": Workload(widths=(100, 100, 1), batch=100, preset="gate"),
    # the KAN paper's science scale (arXiv 2404.19756, section 3: [2,5,1] toy fits, [4,4,2,1] for the
    # 4-D composite), full batch: pykan's create_dataset draws 1000 training points
    "science": Workload(widths=(2, 5, 1), batch=1000, preset="science"),
    "science-deep": Workload(widths=(4, 4, 2, 1), batch=1000, preset="science-deep"),
    # the MNIST-sized classifier nearly every KAN package ships as its example
    "mnist": Workload(widths=(784, 64, 10), batch=128, preset="mnist"),
    # a transformer's feed-forward block with KAN layers in place of the MLP (KAT, arXiv 2409.10594):
    # model width 128 with the usual 4x expansion, over 8 sequences of 32 tokens (256 rows); sized
    # so every implementation fits the multi-workload leaderboard's 20 minutes on 2 cores
    "ffn": Workload(widths=(128, 512, 128), batch=256, preset="ffn"),
    # the same block at a GPU's size: width 512 (x4 = 2048), 16 sequences of 256 tokens
    "ffn-gpu": Workload(widths=(512, 2048, 512), batch=4096, preset="ffn-gpu"),
}
#: the workloads of `kanbench leaderboard --workloads users` (and `make leaderboard`)
USER_WORKLOADS = ("seed", "science", "science-deep", "mnist", "ffn", "large")
DEFAULT_PRESET = "seed"


def torch_dtype(name: str):
    import torch

    return getattr(torch, parse_dtype(name))


def target_function(x):
    """The seed's target: exp(sin(pi*x0) + x1^2), or exp(sin(pi*x0)) for one input."""
    import torch

    y = torch.sin(math.pi * x[:, :1])
    if x.shape[1] > 1:
        y = y + x[:, 1:2] ** 2
    return torch.exp(y)


class DataPool:
    """A fixed-seed pool of inputs and targets on the device; ``batch()`` picks rows.

    The indices come from a seeded CPU generator; picking them and gathering
    the rows happens outside any timed region.
    """

    def __init__(self, workload: Workload, device):
        import torch

        self.workload = workload
        self.device = torch.device(device)
        dtype = torch_dtype(workload.dtype)
        gen = torch.Generator().manual_seed(workload.seed)
        # generated in float64 on the CPU so every device and dtype sees the same numbers
        x = torch.rand(workload.pool, workload.widths[0], generator=gen, dtype=torch.float64) * 2 - 1
        y = target_function(x).expand(-1, workload.widths[-1])
        self.x = x.to(device=self.device, dtype=dtype).contiguous()
        self.y = y.to(device=self.device, dtype=dtype).contiguous()
        self._gen = torch.Generator().manual_seed(workload.seed + 1)
        self._replace = workload.batch > workload.pool

    def batch(self):
        import torch

        n, b = self.workload.pool, self.workload.batch
        if self._replace:
            idx = torch.randint(0, n, (b,), generator=self._gen)
        else:
            idx = torch.randperm(n, generator=self._gen)[:b]
        idx = idx.to(self.device)
        return self.x.index_select(0, idx), self.y.index_select(0, idx)

    def nbytes(self) -> int:
        return self.x.numel() * self.x.element_size() + self.y.numel() * self.y.element_size()


def loss_fn(output, target):
    import torch.nn.functional as F

    return F.mse_loss(output, target)
