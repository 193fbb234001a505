"""CUDA paths: timing with events, allocator memory, our layers on the GPU. Skipped without a GPU."""

import pytest
import torch

from better_kan import build_rbf_kan, build_spline_kan
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


@pytest.mark.parametrize("impl", ["mlp", "splines-better_kan", "rbf-better_kan"])
def test_rows_on_cuda(impl):
    rec = measure_row_isolated(RowJob(impl=impl, device="cuda", workload=Workload((2, 150, 1), 32), timing=FAST))
    assert rec.error is None, rec.error
    assert rec.label.endswith("-gpu")
    assert rec.memory_method == "cuda-allocator"
    assert rec.forward_peak_bytes >= rec.forward_peak_increase_bytes > 0
    assert rec.backward_peak_bytes > 0
    # the headline excludes what the allocator holds for libraries (cuBLAS workspaces): at most the raw peak
    assert rec.forward_peak_bytes <= rec.forward_allocator_peak_bytes


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


def test_grid_update_on_cuda():
    torch.manual_seed(0)
    model = build_spline_kan([2, 3, 1], device="cuda")
    x = torch.randn(256, 2, device="cuda") * 0.5
    before = model(x).detach()
    model.update_grid(x)
    assert (model(x).detach() - before).norm() / before.norm() < 5e-2


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
def test_kernel_launches_per_step_are_few_and_the_fused_layer_agrees_on_the_gpu(build, capsys):
    """Counts the CUDA kernels of a training step (reported, with the MLP's, in the test output)
    and checks the fused one-node layer against the op-by-op path on the GPU."""
    from kanbench.baseline import MLP

    torch.manual_seed(0)
    x = torch.rand(32, 2, device="cuda") * 2 - 1
    y = torch.rand(32, 1, device="cuda")
    mlp = MLP((2, 150, 1)).cuda()
    model = build((2, 150, 1)).cuda()
    counts = {"mlp": _kernels_per_step(mlp, x, y), "general": _kernels_per_step(model, x, y)}
    for layer in model.layers:
        layer.use_fused = True
    counts["fused"] = _kernels_per_step(model, x, y)
    with capsys.disabled():
        print(f"\nCUDA kernels per step (forward, backward) at [2,150,1] batch 32, {build.__name__}: {counts}")
    assert 0 < counts["fused"][0] <= counts["general"][0] + 2
    xg = x.clone().requires_grad_()
    fused_out = model(xg)
    (g_fused,) = torch.autograd.grad(fused_out.sum(), xg)
    for layer in model.layers:
        layer.use_fused = False
    general_out = model(xg)
    (g_general,) = torch.autograd.grad(general_out.sum(), xg)
    torch.testing.assert_close(fused_out, general_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_fused, g_general, rtol=1e-4, atol=1e-6)
