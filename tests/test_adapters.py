"""Adapters for public KAN packages: real when installed, 'unavailable' always."""

import sys

import pytest
import torch

from kanbench.discovery import check_requirements, discover
from kanbench.runner import RowJob, count_parameters, measure_row
from kanbench.timing import TimingConfig
from kanbench.workload import Workload

QUICK = TimingConfig(min_time=0, min_samples=2, warmup_time=0, warmup_min=1)
ADAPTERS = ["effkan", "fastkan", "pykan", "pykan-speed", "inkan", "inkan-eager", "flashkan", "morlet-kan"]
#: what each package's model counts at [2,150,1] (total, trainable); the anchors' figures
PARITY = {
    "effkan": (4500, 4500),
    "fastkan": (4521, 4505),
    "pykan": (9628, 6300),
    # speed() leaves the symbolic branch out of the forward pass: its 4 affine parameters per edge
    # are frozen, not counted as trainable (450 edges x 4 = 1800 fewer)
    "pykan-speed": (9628, 4500),
    "inkan": (4050, 4050),
    "inkan-eager": (4050, 4050),
    # 8 coefficients + a base weight per edge, no bias (as inkan)
    "flashkan": (4050, 4050),
    # a base weight + 5 wavelets x (weight, translation, scale) per edge, no bias
    "morlet-kan": (7200, 7200),
}


@pytest.fixture(scope="module")
def registry():
    return discover(entry_points=False)


def spec(registry, name):
    return registry.get(name).spec


def needs(registry, name):
    entry = registry.get(name)
    if not entry.available:
        pytest.skip(f"{name}: {entry.reason}")
    return entry.spec


#: adapters of pip-installed packages (``requires``); effkan and fastkan also take a kanbench checkout
PIP_ADAPTERS = ["pykan", "pykan-speed", "inkan", "inkan-eager", "flashkan", "morlet-kan"]


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_is_discovered_with_an_install_hint(registry, name):
    s = spec(registry, name)
    assert s.install and ("pip install" in s.install or s.install.startswith("kanbench install"))
    assert s.requires or s.check


@pytest.mark.parametrize("name", PIP_ADAPTERS)
def test_missing_package_makes_the_adapter_unavailable(registry, name, monkeypatch):
    s = spec(registry, name)
    for module in s.requires:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    reason = check_requirements(s)
    assert reason is not None and "is not installed" in reason and s.install in reason
    rec = measure_row(RowJob(impl=name, device="cpu", workload=Workload((2, 3, 1), 4), timing=QUICK), registry)
    assert rec.error_kind == "unavailable"


@pytest.mark.parametrize("name,module", [("effkan", "efficient_kan"), ("fastkan", "fastkan")])
def test_git_adapter_without_checkout_or_package_is_unavailable(registry, name, module, tmp_path, monkeypatch):
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path))  # no kanbench checkout here
    monkeypatch.setitem(sys.modules, module, None)  # and no installed package
    reason = check_requirements(spec(registry, name))
    assert reason == f"not installed; install: kanbench install {name}"


def test_package_that_fails_to_import_is_unavailable(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path / "home"))
    (tmp_path / "fastkan.py").write_text("raise RuntimeError('broken build of fastkan')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fastkan", raising=False)
    reason = check_requirements(spec(registry, "fastkan"))
    assert "failed to import (RuntimeError: broken build of fastkan)" in reason


def test_too_old_package_is_unavailable(registry, monkeypatch):
    s = needs(registry, "inkan")
    import importlib.metadata as md

    real = md.version
    monkeypatch.setattr(md, "version", lambda dist: "0.1.0" if dist == "inkan" else real(dist))
    assert "'inkan' 0.1.0 is too old (need >= 0.5)" in check_requirements(s)


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_builds_a_working_model_and_leaves_no_files(registry, name, tmp_path, monkeypatch):
    s = needs(registry, name)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = s.build((3, 5, 2), device=torch.device("cpu"), dtype=torch.float32)
    x = torch.rand(7, 3) * 2 - 1
    y = model(x)
    assert tuple(y.shape) == (7, 2)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    # (pykan-speed leaves its symbolic branch's parameters out of the graph: their grad stays None)
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert list(tmp_path.iterdir()) == [], f"{name} left files behind: {list(tmp_path.iterdir())}"


@pytest.mark.parametrize("name", ADAPTERS)
def test_harness_counts_equal_the_packages_own(registry, name, tmp_path, monkeypatch):
    s = needs(registry, name)
    monkeypatch.chdir(tmp_path)
    rec = measure_row(RowJob(impl=name, device="cpu", workload=Workload((2, 150, 1), 8), timing=QUICK, memory=False), registry)
    assert rec.error is None, rec.error
    assert rec.forward_ms > 0 and rec.backward_ms > 0
    model = s.build((2, 150, 1), device=torch.device("cpu"), dtype=torch.float32)
    direct = (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.parameters() if p.requires_grad))
    assert (rec.params, rec.trainable_params) == direct == count_parameters(model) == PARITY[name]
    assert list(tmp_path.iterdir()) == []


def test_pykan_speed_mode_is_on(registry):
    s = needs(registry, "pykan-speed")
    model = s.build((2, 3, 1), device=torch.device("cpu"), dtype=torch.float32)
    assert model.symbolic_enabled is False and model.save_act is False
    assert all(not layer.affine.requires_grad for layer in model.symbolic_fun)


@pytest.mark.parametrize("name", ["pykan-speed", "inkan-eager"])
def test_adapters_build_in_float64(registry, name):
    s = needs(registry, name)  # skips, with the install line, when the package is missing
    model = s.build((2, 3, 1), device=torch.device("cpu"), dtype=torch.float64)
    assert model(torch.rand(4, 2, dtype=torch.float64)).dtype == torch.float64
