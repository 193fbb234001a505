"""CUDA paths: timing with events, allocator memory, our layers on the GPU. Skipped without a GPU."""

import statistics

import pytest
import torch

from better_kan import build_rbf_kan, build_spline_kan, native
from kanbench.discovery import discover
from kanbench.runner import RowJob, measure_row
from kanbench.timing import TimingConfig
from kanbench.worker import measure_row_isolated
from kanbench.workload import Workload
from tests.conftest import TOYS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
FAST = TimingConfig(min_time=0, min_samples=5, warmup_time=0, warmup_min=2)


SEED = Workload((2, 150, 1), 32)


@pytest.mark.parametrize("impl", ["mlp", "splines-better_kan", "rbf-better_kan"])
def test_rows_on_cuda(impl):
    rec = measure_row_isolated(RowJob(impl=impl, device="cuda", workload=SEED, timing=FAST))
    assert rec.error is None, rec.error
    assert rec.label.endswith("-gpu") and rec.device == "cuda"
    # timing: every sample kept, the medians are theirs, and warm-up happened
    assert rec.n_samples >= FAST.min_samples
    for phase in ("forward_ms", "backward_ms"):
        samples = rec.samples[phase]
        assert len(samples) == rec.n_samples and all(0 < s < 1000 for s in samples), (phase, samples)
        assert getattr(rec, phase) == pytest.approx(statistics.median(samples))
    assert rec.warmup_iterations >= FAST.warmup_min and rec.first_step_s > 0 and rec.measured_s > 0
    # memory, from the CUDA allocator: the forward holds at least the (32, 150) hidden activations,
    # the backward at least a float32 gradient for every trainable parameter
    assert rec.memory_method == "cuda-allocator"
    assert rec.forward_peak_increase_bytes >= 32 * 150 * 4
    assert rec.backward_peak_increase_bytes >= 4 * rec.trainable_params > 0
    assert rec.forward_peak_bytes >= rec.forward_peak_increase_bytes
    # the headline excludes what the allocator holds for libraries (cuBLAS workspaces): at most the raw peak
    assert rec.forward_peak_bytes <= rec.forward_allocator_peak_bytes


@pytest.mark.parametrize("dtype", ["bfloat16", "float64"])
def test_rows_on_cuda_in_other_dtypes(dtype):
    work = Workload((2, 150, 1), 32, dtype=dtype)
    rec = measure_row_isolated(RowJob(impl="splines-better_kan", device="cuda", workload=work, timing=FAST))
    assert rec.error is None, rec.error
    assert rec.workload["dtype"] == dtype and rec.forward_ms > 0 and rec.backward_ms > 0


def test_cuda_events_time_the_forward_phase():
    reg = discover([TOYS], entry_points=False, check=False)
    rec = measure_row(RowJob(impl="sleepy", device="cuda", workload=Workload((2, 4, 1), 8), timing=FAST, memory=False), reg)
    assert rec.error is None
    assert rec.forward_ms >= 45.0 and rec.backward_ms < 10.0


@pytest.mark.parametrize("build", [build_spline_kan, build_rbf_kan])
def test_layers_agree_across_devices(build):
    torch.manual_seed(0)
    cpu = build([4, 8, 2], dtype=torch.float64)
    gpu = build([4, 8, 2], dtype=torch.float64, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = torch.rand(64, 4, dtype=torch.float64) * 2 - 1
    y_cpu, y_gpu = cpu(x), gpu(x.cuda())
    assert torch.allclose(y_cpu, y_gpu.cpu(), atol=1e-10)
    y_cpu.square().sum().backward()
    y_gpu.square().sum().backward()
    for a, b in zip(cpu.parameters(), gpu.parameters()):
        assert torch.allclose(a.grad, b.grad.cpu(), atol=1e-9)
    with cpu.tracking(), gpu.tracking():
        cpu(x), gpu(x.cuda())
    assert torch.allclose(cpu.regularization_loss(), gpu.regularization_loss().cpu(), rtol=1e-9)


def test_grid_update_on_cuda_follows_the_data_and_keeps_the_functions():
    torch.manual_seed(0)
    model = build_spline_kan([2, 3, 1], device="cuda")
    layer = model.layers[0]
    x = torch.rand(256, 2, device="cuda") * 0.8 + 0.1  # inside [-1, 1], on a part of it only
    grid_before = layer.grid.clone()
    before = model(x).detach()
    model.update_grid(x)
    assert layer.grid.device.type == "cuda" and not torch.equal(layer.grid, grid_before)
    lo, hi = layer.grid_range()
    torch.testing.assert_close(lo, x.amin(0), atol=0.02, rtol=0)  # the knots moved to the data's range
    torch.testing.assert_close(hi, x.amax(0), atol=0.02, rtol=0)
    assert (model(x).detach() - before).norm() / before.norm() < 5e-2


@pytest.mark.parametrize("build", [build_spline_kan, build_rbf_kan])
def test_extend_grid_and_checkpoints_on_cuda(build):
    torch.manual_seed(0)
    model = build([2, 3, 1], device="cuda", dtype=torch.float64)
    x = torch.rand(128, 2, device="cuda", dtype=torch.float64) * 2 - 1
    before = model(x).detach()
    n_before = model.layers[0].n_basis
    model.extend_grid(10)  # G 5 -> 10: the old knots are a subset, the splines carry over exactly
    layer = model.layers[0]
    assert layer.n_basis > n_before and layer.weight.shape[-1] == layer.n_basis + 1
    assert layer.weight.device.type == "cuda"
    tol = 1e-8 if build is build_spline_kan else 5e-2
    assert (model(x).detach() - before).norm() / before.norm() < tol
    cpu = build([2, 3, 1], grid_size=10, dtype=torch.float32) if build is build_spline_kan else build([2, 3, 1], num_centers=10)
    cpu.update_grid(torch.rand(64, 2) * 1.5 - 0.5)  # a non-uniform grid
    cpu.lock(0, [(0, 0), (1, 0)])
    model.load_state_dict(cpu.state_dict())  # a float32 CPU checkpoint into a float64 CUDA model
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        assert t.device.type == "cuda", name
        assert not t.is_floating_point() or t.dtype == torch.float64, name
    torch.testing.assert_close(model(x.float().double()).cpu(), cpu.double()(x.float().double().cpu()), rtol=1e-5, atol=1e-6)


def _gpu_sleepy(device):
    reg = discover([TOYS], entry_points=False, check=False)
    job = RowJob(impl="gpu-sleepy", device=device, workload=Workload((2, 4, 1), 8), timing=FAST, memory=False)
    return measure_row(job, reg)


def test_cuda_events_see_gpu_side_work():
    """The forward queues 50 ms of GPU spinning and returns at once on the host: events on the
    model's stream measure the 50 ms, a host clock (or events on an idle stream) would not."""
    rec = _gpu_sleepy("cuda")
    assert rec.error is None, rec.error
    assert 45.0 <= rec.forward_ms < 80.0 and rec.backward_ms < 10.0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_cuda_events_on_a_second_device_record_on_its_stream():
    torch.cuda.set_device(0)  # the current device is not the model's
    rec = _gpu_sleepy("cuda:1")
    assert rec.error is None, rec.error
    assert rec.label == "gpu-sleepy-gpu1" and rec.device == "cuda:1"
    assert 45.0 <= rec.forward_ms < 80.0


def test_the_device_is_synchronized_before_every_iteration(monkeypatch):
    from kanbench import timing
    from kanbench.workload import DataPool

    calls = []
    real = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: (calls.append(device), real(device))[1])
    model = torch.nn.Linear(2, 1).cuda()
    pool = DataPool(Workload((2, 1), 8), torch.device("cuda"))
    clock = timing.make_clock("cuda")
    for _ in range(3):
        timing.iteration(model, pool, clock)
    assert len(calls) >= 3 and all(c is not None and torch.device(c).type == "cuda" for c in calls)


def _kernels_per_step(model, x, y) -> tuple[int, int]:
    """(forward, backward) CUDA kernel launches of one training step, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile, record_function

    for _ in range(3):
        torch.nn.functional.mse_loss(model(x), y).backward()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with record_function("phase::forward"):
            loss = torch.nn.functional.mse_loss(model(x), y)
        with record_function("phase::backward"):
            loss.backward()
        torch.cuda.synchronize()
    counts = {"forward": 0, "backward": 0}
    for e in prof.events():
        if e.name.startswith("phase::") or str(e.device_type) != "DeviceType.CUDA":
            continue
        for phase in counts:
            window = next(w for w in prof.events() if w.name == f"phase::{phase}")
            if window.time_range.start <= e.time_range.start <= window.time_range.end:
                counts[phase] += 1
    return counts["forward"], counts["backward"]


@pytest.mark.parametrize("build", [build_spline_kan, build_rbf_kan])
def test_kernel_launches_per_step_are_few(build, capsys):
    """Counts the CUDA kernels of a training step on the native and the PyTorch path (reported, with
    the MLP's, in the test output)."""
    from kanbench.baseline import MLP

    torch.manual_seed(0)
    x = torch.rand(32, 2, device="cuda") * 2 - 1
    y = torch.rand(32, 1, device="cuda")
    mlp = MLP((2, 150, 1)).cuda()
    model = build((2, 150, 1)).cuda()
    counts = {"mlp": _kernels_per_step(mlp, x, y)}
    if native.supports(x, "silu"):  # the Triton kernels: one forward kernel per layer, one + 2 BLAS backward
        counts["native"] = _kernels_per_step(model, x, y)
    for layer in model.layers:
        layer.use_native = False
    counts["general"] = _kernels_per_step(model, x, y)
    with capsys.disabled():
        print(f"\nCUDA kernels per step (forward, backward) at [2,150,1] batch 32, {build.__name__}: {counts}")
    assert 0 < counts["mlp"][0] and 0 < counts["mlp"][1]
    assert all(0 < n < 100 for pair in counts.values() for n in pair)


@pytest.mark.parametrize("make", ["splines", "rbf-trainable"])
def test_second_derivatives_on_the_gpu_equal_the_pytorch_path(make):
    """A physics-informed loss (a loss on dy/dx, create_graph=True): parameter gradients on the
    Triton path equal the PyTorch path's, and are not zero."""
    torch.manual_seed(0)
    model = (
        (build_spline_kan((2, 8, 1)) if make == "splines" else build_rbf_kan((2, 8, 1), trainable_centers=True)).cuda().double()
    )
    x = torch.rand(64, 2, device="cuda", dtype=torch.float64) * 2 - 1
    results = []
    for use in (True, False):
        for layer in model.layers:
            layer.use_native = use
        xr = x.clone().requires_grad_()
        out = model(xr)
        (dy,) = torch.autograd.grad(out.sum(), xr, create_graph=True)
        results.append(torch.autograd.grad(dy.square().mean() + out.square().mean(), list(model.parameters())))
    for a, b in zip(*results):
        assert a.abs().sum() > 0
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="one CUDA device: nothing to put the model on but the current one")
def test_a_model_on_another_device_than_the_current_one():
    torch.manual_seed(0)
    model = build_spline_kan((3, 16, 2)).to("cuda:1")
    x = torch.rand(40, 3, device="cuda:1")
    with torch.cuda.device(0):
        y = model(x)
        (g,) = torch.autograd.grad(y.sum(), list(model.parameters())[:1])
    for layer in model.layers:
        layer.use_native = False
    torch.testing.assert_close(y, model(x), atol=1e-5, rtol=1e-5)
    assert g.device == torch.device("cuda:1")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", ["splines", "splines-updated-grid", "rbf", "rbf-trainable"])
def test_native_operator_on_the_gpu_equals_the_pytorch_path(make, dtype):
    """The Triton kernels (the operator's CUDA implementation) against the layers' PyTorch path on the
    GPU: outputs and the gradients of the input and every parameter."""
    if not native.supports(torch.empty(0, device="cuda"), "silu"):
        pytest.skip(native.STATUS.describe() + ": no CUDA kernels registered (better_kan._C and Triton needed)")
    torch.manual_seed(0)
    if make.startswith("splines"):
        model = build_spline_kan((3, 16, 2), dtype=dtype).cuda()
        if make == "splines-updated-grid":
            model.update_grid(torch.randn(256, 3, device="cuda", dtype=dtype) * 0.5)
    else:
        model = build_rbf_kan((3, 16, 2), dtype=dtype, trainable_centers=make == "rbf-trainable").cuda()
    x = (torch.rand(300, 3, device="cuda", dtype=dtype) * 2.4 - 1.2).requires_grad_()
    results = []
    for use_native in (True, False):
        for layer in model.layers:
            layer.use_native = use_native
        y = model(x)
        results.append((y, *torch.autograd.grad(y.square().sum(), [x, *model.parameters()])))
    assert results[0][0].grad_fn.name().endswith("KanLinearFunction>")
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-10)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **tol)
