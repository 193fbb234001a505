"""What the machine can do, measured by kanbench itself: the roofline's two ceilings.

- **compute**: the GFLOP/s of a large square matrix product (n = 2048 on a CPU, 8192 on a GPU) in
  the dtype of the rows -- what a well-fed BLAS reaches here, the ceiling of compute-bound rows;
- **memory**: the GB/s of copying a large tensor (256 MiB read + 256 MiB written), the ceiling of
  memory-bound rows.

Each is the best of several timed repetitions after a warm-up (the machine's ability, not its
average mood). A probe takes a second or two, so the result is cached per machine (CPU model and
family/model, or GPU name), thread count, torch version, device and dtype in
``$KANBENCH_HOME/peaks.json``; a results file stores the peaks its rows were set against in its
machine section (``machine["peaks"]``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

#: matrix size of the compute probe per device type; bytes copied by the memory probe
GEMM_N = {"cpu": 2048, "cuda": 8192}
COPY_BYTES = 256 * 2**20
REPEATS = 5


@dataclass
class Peak:
    """The two ceilings of one device and dtype."""

    device: str
    dtype: str
    gflops: float  #: best GFLOP/s of the GEMM probe
    gbytes_per_s: float  #: best GB/s of the copy probe (bytes read + written)
    threads: Optional[int]
    method: str

    @property
    def balance(self) -> float:
        """FLOPs per byte at which the two ceilings meet: rows of lower arithmetic intensity are memory-bound."""
        return self.gflops / self.gbytes_per_s


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn, device, repeats: int = REPEATS) -> float:
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def _gemm_gflops(dev, dt, n: int) -> float:
    import torch

    a = torch.randn(n, n, device=dev).to(dt)
    b = torch.randn(n, n, device=dev).to(dt)
    out = torch.empty(n, n, device=dev, dtype=dt)
    return 2 * n**3 / _best(lambda: torch.mm(a, b, out=out), dev) / 1e9


def _copy_gbytes_per_s(dev, dt) -> float:
    import torch

    src = torch.ones(COPY_BYTES // torch.empty((), dtype=dt).element_size(), device=dev, dtype=dt)
    dst = torch.empty_like(src)
    return 2 * COPY_BYTES / _best(lambda: dst.copy_(src), dev) / 1e9


def measure(device: str = "cpu", dtype: str = "float32") -> Peak:
    """Run both probes now (about a second or two on a CPU)."""
    import torch

    dev = torch.device(device)
    dt = getattr(torch, dtype)
    n = GEMM_N.get(dev.type, 2048)
    gflops = _gemm_gflops(dev, dt, n)
    gbs = _copy_gbytes_per_s(dev, dt)
    method = f"best of {REPEATS}: {n}x{n} matmul; copy of {COPY_BYTES // 2**20} MiB"
    return Peak(device, dtype, round(gflops, 2), round(gbs, 2), torch.get_num_threads() if dev.type == "cpu" else None, method)


def _key(machine: dict, device: str, dtype: str) -> str:
    cpu = machine.get("cpu") or {}
    torch_info = machine.get("torch") or {}
    if device.startswith("cuda"):
        gpus = machine.get("gpus") or [{}]
        where = (gpus[0] or {}).get("name", "cuda")
    else:
        where = f"{cpu.get('model', 'cpu')} {cpu.get('family', '')}/{cpu.get('model_number', '')} {torch_info.get('threads')}t"
    return f"{where} | torch {torch_info.get('version', '?')} | {device.split(':')[0]} | {dtype}"


def _cache_path() -> Path:
    from kanbench.sources import home

    return home() / "peaks.json"


def for_machine(machine: dict, device: str, dtype: str, cache: bool = True) -> Peak:
    """The machine's peaks for ``device`` and ``dtype``: from the cache, else measured now (and cached)."""
    key = _key(machine, device, dtype)
    path = _cache_path()
    stored: dict = {}
    if cache and path.exists():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            stored = {}
    if key in stored:
        return Peak(**stored[key])
    peak = measure(device, dtype)
    if cache:
        stored[key] = asdict(peak)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(stored, indent=1))
            tmp.replace(path)
        except OSError:
            pass  # a read-only home: measure again next time
    return peak


__all__ = ["Peak", "for_machine", "measure"]
