"""The harness's implementations as pytest-benchmark benchmarks.

    make bench-pytest                                   # or:
    pytest benchmarks/test_kan_benchmarks.py --benchmark-only --benchmark-autosave
    pytest benchmarks/test_kan_benchmarks.py --benchmark-only --benchmark-compare --benchmark-compare-fail=median:10%

One benchmark per discovered, available implementation x device x phase. The
forward benchmark times ``model(x)`` (graph built, as in training); the backward
benchmark times ``loss.backward()`` with the forward and the loss built in the
untimed ``setup`` of every round, gradients dropped first, so no graph is ever
reused. On CUDA both synchronize before and after the timed call, so the wall
clock pytest-benchmark reads covers the GPU work.

Environment knobs: KANBENCH_PRESET (default seed), KANBENCH_IMPLS (comma list),
KANBENCH_DEVICES (default: cpu, plus cuda when present).
"""

from __future__ import annotations

import os

import pytest
import torch

from kanbench.discovery import discover
from kanbench.workload import DataPool, loss_fn, resolve, torch_dtype

WORKLOAD = resolve(os.environ.get("KANBENCH_PRESET", "seed"))
_WANTED = [n for n in os.environ.get("KANBENCH_IMPLS", "").split(",") if n]
_REGISTRY = discover()
IMPLS = [e.name for e in _REGISTRY.available() if not _WANTED or e.name in _WANTED]
DEVICES = [d for d in os.environ.get("KANBENCH_DEVICES", "cpu,cuda").split(",") if d == "cpu" or torch.cuda.is_available()]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def _build(impl: str, device: torch.device):
    torch.manual_seed(0)
    model = _REGISTRY.get(impl).spec.build(WORKLOAD.widths, device=device, dtype=torch_dtype(WORKLOAD.dtype))
    return model.train(), DataPool(WORKLOAD, device)


def test_forward(benchmark, impl, device):
    model, pool = _build(impl, device)
    benchmark.group = f"forward {WORKLOAD.key}"
    benchmark.extra_info.update(impl=impl, device=device.type, workload=WORKLOAD.to_dict())

    def setup():
        model.zero_grad(set_to_none=True)
        x, _ = pool.batch()
        _sync(device)
        return (x,), {}

    def forward(x):
        out = model(x)
        _sync(device)
        return out

    out = benchmark.pedantic(forward, setup=setup, rounds=_rounds(), warmup_rounds=3, iterations=1)
    assert out is not None and out.shape == (WORKLOAD.batch, WORKLOAD.widths[-1]) and torch.isfinite(out).all()


def test_backward(benchmark, impl, device):
    model, pool = _build(impl, device)
    benchmark.group = f"backward {WORKLOAD.key}"
    benchmark.extra_info.update(impl=impl, device=device.type, workload=WORKLOAD.to_dict())

    def setup():
        model.zero_grad(set_to_none=True)
        x, y = pool.batch()
        loss = loss_fn(model(x), y)
        _sync(device)
        return (loss,), {}

    def backward(loss):
        loss.backward()
        _sync(device)

    benchmark.pedantic(backward, setup=setup, rounds=_rounds(), warmup_rounds=3, iterations=1)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)  # the backward really ran


def _rounds() -> int:
    return int(os.environ.get("KANBENCH_ROUNDS", "200"))
