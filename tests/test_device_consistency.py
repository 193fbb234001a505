"""Every tensor of our layers follows the module's device and dtype, through every operation.

A CPU-only machine has no second device to mix up, but it has two stand-ins:

- the ``meta`` device (shapes without values): a model moved there must keep *every* tensor
  there through forward, backward, grid updates and extensions, state-dict loading, locks,
  masks and regularization. A tensor created on the CPU by mistake either fails the operation
  (CPU and meta tensors do not mix) or is left behind on the CPU, where :func:`assert_on` sees it.
  This is how a CUDA model behaves too, so these tests stand in for a GPU run.
- float64 models fed float32 data and float32 state dicts: every tensor must stay float64.

``torch.linalg.lstsq`` has no meta kernel; on meta tensors the tests answer it with a solution
of the right shape on the right device (values do not exist there anyway).
"""

import itertools
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from better_kan import basis as basis_mod
from better_kan import build_rbf_kan, build_spline_kan

pytestmark = pytest.mark.filterwarnings("ignore:.*non-meta parameter in the checkpoint")

BUILDS = [
    pytest.param(lambda **kw: build_spline_kan([3, 4, 2], **kw), id="spline-k3"),
    pytest.param(lambda **kw: build_spline_kan([3, 4, 2], spline_order=1, **kw), id="spline-k1"),
    pytest.param(lambda **kw: build_spline_kan([3, 4, 2], spline_order=0, **kw), id="spline-k0"),
    pytest.param(lambda **kw: build_spline_kan([3, 4, 2], standalone_scale=True, **kw), id="spline-scale"),
    pytest.param(lambda **kw: build_rbf_kan([3, 4, 2], **kw), id="rbf"),
    pytest.param(lambda **kw: build_rbf_kan([3, 4, 2], kernel="multiquadric", trainable_centers=True, **kw), id="rbf-centers"),
]


def tensors_of(module: torch.nn.Module):
    """(name, tensor) for every parameter, buffer and tensor-valued attribute (caches such as the
    Cox-de Boor tables) of ``module`` and its submodules."""
    for mod_name, mod in module.named_modules():
        for name, value in vars(mod).items():
            if name in ("_parameters", "_buffers"):
                for key, t in value.items():
                    if t is not None:
                        yield f"{mod_name}.{key}", t
            else:
                stack = [(name, value)]
                while stack:
                    n, v = stack.pop()
                    if isinstance(v, torch.Tensor):
                        yield f"{mod_name}.{n}", v
                    elif isinstance(v, (list, tuple)):
                        stack.extend((f"{n}[{i}]", item) for i, item in enumerate(v))


def assert_on(module, device: str, dtype=None):
    for name, t in tensors_of(module):
        assert t.device.type == device, f"{name} is on {t.device}, the module on {device}"
        if dtype is not None and t.is_floating_point():
            assert t.dtype == dtype, f"{name} is {t.dtype}, the module {dtype}"


_Solution = namedtuple("_Solution", "solution residuals rank singular_values")


@pytest.fixture
def meta_lstsq(monkeypatch):
    real = torch.linalg.lstsq

    def lstsq(A, B, *args, **kwargs):
        if A.is_meta or B.is_meta:
            assert A.device == B.device, f"lstsq of tensors on {A.device} and {B.device}"
            sol = A.new_empty(*A.shape[:-2], A.shape[-1], B.shape[-1])
            return _Solution(sol, A.new_empty(0), None, None)
        return real(A, B, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "lstsq", lstsq)


def _on_meta(build):
    torch.manual_seed(0)
    return build().to("meta")


def _x(device="meta", n=16, dtype=torch.float32):
    return torch.empty(n, 3, device=device, dtype=dtype) if device == "meta" else torch.rand(n, 3, dtype=dtype) * 2 - 1


@pytest.mark.parametrize("build", BUILDS)
def test_forward_backward_and_regularization_stay_on_the_device(build):
    model = _on_meta(build)
    x = _x().requires_grad_()
    with model.tracking():
        y = model(x)
    loss = y.sum() + model.regularization_loss()
    loss.backward()
    assert y.device.type == x.grad.device.type == "meta"
    assert all(p.grad.device.type == "meta" for p in model.parameters() if p.grad is not None)
    assert_on(model, "meta")


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("ops", [("update",), ("extend",), ("update", "extend"), ("extend_x",), ("update", "extend_x")])
def test_grid_operations_stay_on_the_device(build, ops, meta_lstsq):
    model = _on_meta(build)
    for op in ops:
        if op == "update":
            model.update_grid(_x())
        elif op == "extend":
            model.extend_grid(7)
        else:
            model.extend_grid(7, x=_x())
        assert_on(model, "meta")
    model(_x()).sum().backward()
    assert_on(model, "meta")


def test_a_uniform_grid_is_built_where_its_bounds_live():
    lo = torch.zeros(3, device="meta")
    grid = basis_mod.uniform_grid(3, 5, 3, lo, lo + 1)
    assert grid.device.type == "meta" and grid.shape == (3, 12)
    on_cpu = basis_mod.uniform_grid(3, 5, 3, torch.zeros(3), torch.ones(3), dtype=torch.float64)
    torch.testing.assert_close(on_cpu[0], torch.linspace(-0.6, 1.6, 12, dtype=torch.float64))


@pytest.mark.parametrize("build", BUILDS)
def test_locked_and_masked_models_stay_on_the_device(build):
    """Locks and masks are set where values exist (they read them); the model then moves."""
    model = _pruned_or_locked(build).to("meta")
    assert model.layers[0].lock_index is not None and model.layers[1]._masked
    with model.tracking():
        y = model(_x())
    (y.sum() + model.regularization_loss()).backward()
    assert_on(model, "meta")


def _pruned_or_locked(build, dtype=torch.float32):
    """A CPU model with every optional state in use: a lock, a mask, a non-uniform grid."""
    torch.manual_seed(1)
    model = build(dtype=dtype)
    model.update_grid(torch.rand(64, 3, dtype=dtype) * 1.5 - 0.5)  # data grid: non-uniform
    model.lock(0, [(0, 0), (1, 0)])
    model.layers[1].set_edge_mask(torch.tensor([[1.0, 0, 1, 1], [1, 1, 1, 1]], dtype=dtype))
    return model


@pytest.mark.parametrize("build", BUILDS)
def test_a_cpu_checkpoint_loads_into_a_model_on_another_device(build):
    """What loading a CPU checkpoint into a CUDA model does: every tensor stays on the model's device."""
    source = _pruned_or_locked(build)
    target = _on_meta(build)
    target.load_state_dict(source.state_dict())
    assert_on(target, "meta")
    target(_x()).sum().backward()
    assert_on(target, "meta")


@pytest.mark.parametrize("build", BUILDS)
def test_a_float32_checkpoint_loads_into_a_float64_model_without_losing_precision(build):
    source = _pruned_or_locked(build, torch.float32)
    target = build(dtype=torch.float64)
    target.load_state_dict(source.state_dict())
    assert_on(target, "cpu", torch.float64)
    x = torch.rand(32, 3, dtype=torch.float64) * 2 - 1
    # the float64 model computes what the float32 one does (its tables now exact in float64)
    torch.testing.assert_close(target(x), source.to(torch.float64)(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", BUILDS)
def test_float64_models_stay_float64_through_every_operation(build):
    torch.manual_seed(2)
    model = build(dtype=torch.float64)
    x32 = torch.rand(64, 3) * 2 - 1  # float32 data, as a user passes it
    model.update_grid(x32)
    model.extend_grid(6, x=x32)
    model.lock(0, [(0, 1), (2, 1)])
    with model.tracking():
        model(x32.double())
    model.regularization_loss().backward()
    pruned = model.prune(0.0, x=x32.double())
    for m in (model, pruned):
        assert_on(m, "cpu", torch.float64)


@pytest.mark.parametrize("build", BUILDS[:1] + BUILDS[4:5])
def test_compiled_networks_stay_on_the_device(build):
    model = _on_meta(build)
    out = model.compiled(backend="eager")(_x())
    assert out.device.type == "meta"
    assert_on(model, "meta")


def test_every_builder_and_order_was_covered():
    """The parametrization above spans the spline orders and RBF options the layers support."""
    ids = [p.id for p in BUILDS]
    assert {"spline-k0", "spline-k1", "spline-k3", "rbf", "rbf-centers"} <= set(ids)
    assert len(set(itertools.chain(ids))) == len(ids)


# ----------------------------------------------------------------------------- worker thread placement


def _affinity_in_worker(device: str) -> set:
    import json
    import subprocess
    import sys

    from kanbench.worker import worker_env

    code = "import os, threading, json, torch; r = {}; t = threading.Thread(target=lambda: r.update(a=sorted(os.sched_getaffinity(0)))); t.start(); t.join(); print(json.dumps(r['a']))"
    out = subprocess.run([sys.executable, "-c", code], env=worker_env(device), capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_cpu_workers_are_pinned_and_cuda_workers_are_not(monkeypatch):
    import os

    from kanbench.worker import OPENMP_PLACEMENT, pins_threads, worker_env

    for key in OPENMP_PLACEMENT:
        monkeypatch.delenv(key, raising=False)
    assert pins_threads("cpu") and not pins_threads("cuda") and not pins_threads("cuda:1")
    assert all(worker_env("cpu")[k] == v for k, v in OPENMP_PLACEMENT.items())
    assert not any(k in worker_env("cuda") for k in OPENMP_PLACEMENT)
    monkeypatch.setenv("OMP_PROC_BIND", "spread")  # the user's choice holds on both
    assert worker_env("cpu")["OMP_PROC_BIND"] == worker_env("cuda")["OMP_PROC_BIND"] == "spread"
    monkeypatch.delenv("OMP_PROC_BIND")
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        pytest.skip("one core: pinning cannot be seen")
    # the evidence behind pins_threads: under the CPU placement a thread started after `import torch`
    # inherits the one core libgomp bound the main thread to; a CUDA worker's threads keep every core
    assert len(_affinity_in_worker("cpu")) == 1
    assert _affinity_in_worker("cuda") == cores


# ----------------------------------------------------------------------------- the GPU spin's calibration


class _FakeGpuClock:
    """A GPU that idles at 345 MHz and runs at 1980 MHz once it has worked 20 ms (an H200's clocks):
    ``torch.cuda._sleep(cycles)`` advances its time by cycles / clock."""

    def __init__(self):
        self.now_ms = 0.0
        self.busy_ms = 0.0

    def sleep(self, cycles):
        mhz = 1980.0 if self.busy_ms >= 20.0 else 345.0
        spent = cycles / (mhz * 1e3)
        self.now_ms += spent
        self.busy_ms += spent

    def event(self, enable_timing=True):
        clock = self

        class Event:
            def record(self):
                self.t = clock.now_ms

            def synchronize(self):
                pass

            def elapsed_time(self, end):
                return end.t - self.t

        return Event()


def test_the_gpu_spin_is_calibrated_at_working_clocks(monkeypatch):
    """tests/fixtures/impls/toys.py's GpuSleepy must spin ~50 ms on a GPU that starts idle: a
    calibration timed on the first spin (at 345 MHz) would make every later spin 5.7x too short."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("toys_under_test", Path(__file__).parent / "fixtures" / "impls" / "toys.py")
    toys = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toys)
    clock = _FakeGpuClock()
    monkeypatch.setattr(torch.cuda, "_sleep", clock.sleep)
    monkeypatch.setattr(torch.cuda, "Event", clock.event)
    per_ms = toys._cycles_per_ms()
    assert per_ms == pytest.approx(1980e3, rel=1e-6)
    start = clock.now_ms
    clock.sleep(per_ms * 50.0)
    assert clock.now_ms - start == pytest.approx(50.0, rel=1e-6)
