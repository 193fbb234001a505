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
    assert rec["error"] is None, rec["error"]
    assert rec["label"].endswith("-gpu")
    assert rec["memory_method"] == "cuda-allocator"
    assert rec["forward_peak_bytes"] >= rec["forward_peak_increase_bytes"] > 0
    assert rec["backward_peak_bytes"] > 0


def test_cuda_events_time_the_forward_phase():
    reg = discover([TOYS], entry_points=False, check=False)
    rec = measure_row(RowJob(impl="sleepy", device="cuda", workload=Workload((2, 4, 1), 8), timing=FAST, memory=False), reg)
    assert rec["error"] is None
    assert rec["forward_ms"] >= 45.0 and rec["backward_ms"] < 10.0


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
