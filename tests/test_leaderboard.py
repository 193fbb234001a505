"""The KAN leaderboard: public adapters, `kanbench install`, --match, the sanity gate, the table."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, run_cli

from kanbench import Implementation, leaderboard, matching, sanity, sources
from kanbench.discovery import check_requirements, discover
from kanbench.install import InstallError, install
from kanbench.records import ResultsDocument, RowResult
from kanbench.runner import RowJob, measure_row
from kanbench.timing import TimingConfig
from kanbench.workload import DataPool, Workload

QUICK = TimingConfig(min_time=0, min_samples=2, warmup_time=0, warmup_min=1)
SEED = Workload((2, 150, 1), 32)

#: every row a kanbench install source provides: (row, source)
SOURCE_ROWS = [(row, s.name) for s in sources.SOURCES.values() for row in s.implementations]
#: the sanity verdict each public implementation gets at the seed workload (as published)
EXPECTED_SANITY = {
    "fasterkan": ("fail", "backward disagrees with the forward"),
    "kagn": ("fail", "output constant across inputs"),
    "grkan": ("warn", "acts.0.weight_denominator"),
}


@pytest.fixture(scope="module")
def registry():
    return discover(entry_points=False)


# ------------------------------------------------------------------ adapters


@pytest.mark.parametrize("row,source", SOURCE_ROWS)
def test_every_source_row_has_an_adapter_with_family_and_install_line(registry, row, source):
    spec = registry.get(row).spec
    assert spec is not None and spec.family
    assert spec.install == f"kanbench install {source}"
    assert sources.SOURCES[source].licence


@pytest.mark.parametrize("row,source", [(r, s) for r, s in SOURCE_ROWS if sources.SOURCES[s].kind == "checkout"])
def test_checkout_adapter_without_checkout_is_unavailable_with_install_line(registry, row, source, tmp_path, monkeypatch):
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path))
    for module in ("efficient_kan", "fastkan"):
        monkeypatch.setitem(sys.modules, module, None)
    reason = check_requirements(registry.get(row).spec)
    assert reason and "not installed" in reason and f"kanbench install {source}" in reason
    rec = measure_row(RowJob(impl=row, device="cpu", workload=Workload((2, 3, 1), 4), timing=QUICK), registry)
    assert rec.error_kind == "unavailable"


@pytest.mark.parametrize("row", ["ikan-jacobi", "rkan"])
def test_pypi_adapter_without_package_is_unavailable(registry, row, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ikan" else real(name, *a))
    monkeypatch.setitem(sys.modules, "rkan.torch", None)
    for name in list(sys.modules):
        if name.startswith("_kanbench_ikan"):
            monkeypatch.delitem(sys.modules, name)
    reason = check_requirements(registry.get(row).spec)
    assert reason and "is not installed" in reason and "kanbench install" in reason


def _available(registry, row):
    entry = registry.get(row)
    if not entry.available:
        pytest.skip(f"{row}: {entry.reason}")
    return entry.spec


@pytest.mark.parametrize("row", [r for r, _ in SOURCE_ROWS])
def test_real_public_implementation_builds_and_gets_its_expected_sanity_verdict(registry, row):
    spec = _available(registry, row)
    torch.manual_seed(0)
    model = spec.build((2, 150, 1), device=torch.device("cpu"), dtype=torch.float32)
    x, y = DataPool(SEED, "cpu").batch()
    report = sanity.check(model, x, 1, y)
    status, words = EXPECTED_SANITY.get(row, ("ok", ""))
    assert report.status == status, report.reason
    assert words in report.reason


# ------------------------------------------------------------------ kanbench install


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def local_source(tmp_path, monkeypatch):
    """A git repository with one KAN-ish module, registered as a checkout source."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    (repo / "toykan.py").write_text("import torch\nclass Toy(torch.nn.Linear):\n    pass\nVERSION = 1\n")
    _git("init", "-q", cwd=repo)
    _git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "empty", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "toy", cwd=repo)
    pinned = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    (repo / "toykan.py").write_text("VERSION = 2\n")
    _git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-am", "later", cwd=repo)
    source = sources.Source("toykan", "someone/toykan", "MIT", rev=pinned, date="2026-01-01", implementations=("toy",))
    monkeypatch.setitem(sources.SOURCES, "toykan", source)
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path / "home"))
    return repo, pinned


def test_install_from_a_local_git_repository_checks_out_the_pinned_revision(local_source):
    from implementations._adapter_util import import_from_checkout

    repo, pinned = local_source
    assert sources.installed("toykan") is None
    rec = install("toykan", str(repo))
    assert rec.revision == pinned and rec.origin == str(repo)
    assert sources.installed("toykan").revision == pinned
    module = import_from_checkout("toykan", "toykan.py")
    assert module.VERSION == 1  # the pinned commit, not the repository's head
    assert module.__name__ == "_kanbench_toykan_toykan"


def test_a_moved_source_cache_still_finds_its_checkouts(local_source, tmp_path, monkeypatch):
    """A cache copied elsewhere (another $KANBENCH_HOME, a GPU machine) keeps working: the record's
    absolute path is stale, the checkout beside it is used."""
    import shutil

    repo, pinned = local_source
    install("toykan", str(repo))
    moved = tmp_path / "elsewhere"
    shutil.move(str(sources.home()), str(moved))
    monkeypatch.setenv("KANBENCH_HOME", str(moved))
    rec = sources.installed("toykan")
    assert rec is not None and rec.revision == pinned and rec.path == str(moved / "sources" / "toykan")
    shutil.rmtree(moved / "sources" / "toykan")
    assert sources.installed("toykan") is None


def test_install_errors_are_one_line(local_source, tmp_path):
    repo, _ = local_source
    with pytest.raises(InstallError, match="cannot fetch .*nowhere"):
        install("toykan", str(tmp_path / "nowhere"))
    with pytest.raises(InstallError, match="unknown source 'nope'"):
        install("nope")
    sources.SOURCES["toykan"] = sources.Source("toykan", "someone/toykan", "MIT", rev="0" * 40)
    with pytest.raises(InstallError, match="does not contain the pinned revision 000000000000"):
        install("toykan", str(repo))
    assert sources.installed("toykan") is None  # nothing half-installed


def test_install_cli_shows_the_licence_and_list_shows_the_revision(local_source):
    repo, pinned = local_source
    env = {"KANBENCH_HOME": str(sources.home())}
    # the subprocess does not see the monkeypatched source: use a real name with --from a wrong repo
    proc = run_cli("install", "chebykan", "--from", str(repo), env=env)
    assert proc.returncode == 1
    assert "chebykan: SynodicMonth/ChebyKAN@5f7efdd" in proc.stdout and "licence: none stated" in proc.stdout
    assert "does not contain the pinned revision 5f7efdd18e74" in proc.stderr
    proc = run_cli("install", "nope", env=env)
    assert proc.returncode == 2 and "unknown source nope" in proc.stderr
    proc = run_cli("list", env=env)
    assert "chebykan: not installed" in proc.stdout


# ------------------------------------------------------------------ --match


def _linear_plugin(per_hidden: int, fixed: int):
    """A plugin whose trainable count is exactly per_hidden * h + fixed at [in, h, out]."""

    def build(widths, device, dtype):
        h = widths[1]
        return torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(per_hidden * h + fixed))])

    return Implementation(name="linear-count", build=build, flops=lambda widths: 10.0 * widths[1])


def test_search_hits_a_known_count_exactly_and_takes_the_nearer_neighbour():
    spec = _linear_plugin(7, 3)
    m = matching.match(spec, (2, 150, 1), target=7 * 40 + 3, metric="params")
    assert m.widths == (2, 40, 1) and m.value == 283 and m.error == 0
    m = matching.match(spec, (2, 150, 1), target=7 * 40 + 6, metric="params")  # 283 is nearer than 290
    assert m.widths == (2, 40, 1)
    m = matching.match(spec, (2, 150, 1), target=1000, metric="flops")
    assert m.widths == (2, 100, 1) and m.value == 1000


def test_scaled_widths_keep_in_out_and_proportions():
    assert matching.scaled_widths((4, 100, 50, 1), 20) == (4, 20, 10, 1)
    assert matching.scaled_widths((2, 1), 20) == (2, 1)


@pytest.mark.parametrize("impl", ["mlp", "splines-better_kan", "rbf-better_kan"])
def test_match_params_is_within_tolerance_for_the_mlp_and_our_layers(registry, impl):
    target = matching.default_target(registry, (2, 150, 1), "params")
    assert target == 4201  # our B-spline KAN at [2,150,1]: 150*3*9 edges' parameters + 151 biases
    m = matching.match(registry.get(impl).spec, (2, 150, 1), target, "params")
    assert m.within_tolerance, m
    built = registry.get(impl).spec.build(m.widths, device=torch.device("cpu"), dtype=torch.float32, **m.options)
    assert sum(p.numel() for p in built.parameters() if p.requires_grad) == m.value


def test_match_arguments_are_checked():
    assert matching.MatchRequest.parse("params=5000") == matching.MatchRequest("params", 5000.0)
    for bad in ("speed", "params=x", "flops=-1"):
        with pytest.raises(matching.MatchError):
            matching.MatchRequest.parse(bad)
    proc = run_cli("run", "--impl", "mlp", "--match", "speed", "--no-save")
    assert proc.returncode == 2 and "--match takes params" in proc.stderr


def test_matched_run_records_the_widths_and_the_target(tmp_path):
    out = tmp_path / "m.json"
    proc = run_cli(
        "run", "--impl", "mlp,splines-better_kan", "--match", "params=2000", "--in-process", "--no-memory",
        "--min-time", "0", "--min-samples", "3", "--warmup", "0", "--out", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    rows = {r["impl"]: r for r in doc["results"]}
    # the MLP's hidden width searched one unit at a time (hidden_factor=1), recorded as built
    assert rows["mlp"]["widths"] == [2, 500, 1] and rows["mlp"]["trainable_params"] == 2001
    assert rows["mlp"]["options"] == {"hidden_factor": 1} and rows["mlp"]["match"]["options"] == {"hidden_factor": 1}
    assert rows["splines-better_kan"]["match"]["target"] == 2000
    assert "- matched params (target 2,000): mlp [2,500,1]" in proc.stdout


# ------------------------------------------------------------------ sanity gate


class LayerNormOut(torch.nn.Module):
    """A KAN-ish layer ending in LayerNorm(out): constant output when out = 1."""

    def __init__(self, i, o):
        super().__init__()
        self.lin = torch.nn.Linear(i, o)
        self.norm = torch.nn.LayerNorm(o)

    def forward(self, x):
        return self.norm(torch.tanh(self.lin(x)))


class NaNGrad(torch.nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.lin = torch.nn.Linear(i, o)

    def forward(self, x):
        return self.lin(x) + 0 * torch.sqrt(torch.zeros_like(x[:, :1]) - 0.0).sum() * torch.sqrt(self.lin.bias.abs() * 0)


class DeadParameter(torch.nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.lin = torch.nn.Linear(i, o)
        self.unused = torch.nn.Parameter(torch.ones(o, i))

    def forward(self, x):
        return torch.sin(self.lin(x))


class WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) * 0.5


class HalfGradient(torch.nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.lin = torch.nn.Linear(i, o)

    def forward(self, x):
        return self.lin(WrongBackward.apply(x))


class DropoutMLP(torch.nn.Module):
    """A correct model with randomness in its forward: the gate checks it in training mode, as timed."""

    def __init__(self, i, o, wrong_backward=False):
        super().__init__()
        self.lin1, self.drop, self.lin2 = torch.nn.Linear(i, 32), torch.nn.Dropout(0.1), torch.nn.Linear(32, o)
        self.wrong_backward = wrong_backward

    def forward(self, x):
        h = self.drop(torch.tanh(self.lin1(x)))
        return self.lin2(WrongBackward.apply(h) if self.wrong_backward else h)


def _check(module_cls, i=2, o=1):
    torch.manual_seed(0)
    x = torch.rand(16, i) * 2 - 1
    return sanity.check(module_cls(i, o), x, o)


def test_sanity_flags_a_layernorm_over_one_output():
    r = _check(LayerNormOut)
    assert r.status == "fail" and "output constant across inputs" in r.reason
    assert _check(LayerNormOut, o=3).status == "ok"  # over 3 outputs it is a normalization, not a constant


def test_sanity_flags_nan_gradients():
    r = _check(NaNGrad)
    assert r.status == "fail" and "gradients have NaN or inf" in r.reason


def test_sanity_warns_about_parameters_without_gradient():
    r = _check(DeadParameter)
    assert r.status == "warn" and r.warnings == ["zero or no gradient for unused"]


def test_sanity_flags_a_backward_that_disagrees_with_the_forward():
    r = _check(HalfGradient)
    assert r.status == "fail" and "off by 50%" in r.reason


def test_the_gradient_check_holds_under_dropout():
    # every forward of the check (autograd's and the finite differences') sees the same dropout
    # mask: with a fresh mask each, a correct MLP with Dropout(0.1) was off by ~100% and failed
    r = _check(DropoutMLP)
    assert r.status == "ok", r.reason
    torch.manual_seed(0)
    model, x = DropoutMLP(2, 1), torch.rand(16, 2) * 2 - 1
    assert sanity.gradient_error(model, x) < 1e-6
    assert model.training  # checked as timed, in training mode (the copy, not the model, is run)


def test_the_gradient_check_still_flags_a_wrong_backward_under_dropout():
    r = _check(lambda i, o: DropoutMLP(i, o, wrong_backward=True))
    assert r.status == "fail" and "off by 50%" in r.reason


def test_the_gate_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    model, x = DropoutMLP(2, 1), torch.rand(16, 2) * 2 - 1
    state = torch.get_rng_state()
    first = sanity.gradient_error(model, x)
    assert torch.equal(torch.get_rng_state(), state)
    assert sanity.check(model, x, 1).status == "ok"
    assert torch.equal(torch.get_rng_state(), state)
    assert sanity.gradient_error(model, x) == first  # and the check is reproducible


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_gradient_check_holds_under_dropout_on_cuda():
    torch.manual_seed(0)
    model, x = DropoutMLP(2, 1).cuda(), (torch.rand(16, 2) * 2 - 1).cuda()
    cpu, cuda = torch.get_rng_state(), torch.cuda.get_rng_state()
    assert sanity.gradient_error(model, x) < 1e-6
    assert sanity.check(model, x, 1).status == "ok"
    assert torch.equal(torch.get_rng_state(), cpu) and torch.equal(torch.cuda.get_rng_state(), cuda)


def test_sanity_flags_wrong_shape_and_nan_output_as_loud():
    r = _check(lambda i, o: torch.nn.Linear(i, 2))
    assert "output shape (16, 2)" in r.reason and r.loud
    r = sanity.check(torch.nn.Linear(2, 1), torch.full((4, 2), float("nan")), 1)
    assert r.status == "fail" and r.reason == "output has NaN or inf" and r.loud
    # the silent ones are not loud: the gate stops those rows
    assert not _check(LayerNormOut).loud and not _check(HalfGradient).loud


def test_sanity_passes_our_layers_and_the_mlp(registry):
    x, y = DataPool(SEED, "cpu").batch()
    for impl in ("mlp", "splines-better_kan", "rbf-better_kan"):
        model = registry.get(impl).spec.build((2, 150, 1), device=torch.device("cpu"), dtype=torch.float32)
        assert sanity.check(model, x, 1, y).status == "ok", impl


def test_the_gradient_check_is_not_fooled_by_relu_kinks(registry):
    # the MLP at batch 512 of the seed pool: a 1e-5 step carries a few of its 768k ReLU inputs
    # across zero and was 1.5% off (a gate failure in a sweep); the 1e-7 step agrees
    x, _ = DataPool(Workload((2, 150, 1), 512), "cpu").batch()
    torch.manual_seed(0)
    model = registry.get("mlp").spec.build((2, 150, 1), device=torch.device("cpu"), dtype=torch.float32)
    assert sanity.gradient_error(model, x) < 1e-6
    assert sanity.GRADIENT_STEPS == (1e-5, 1e-7)


def test_a_row_failing_the_gate_is_not_timed_unless_asked(tmp_path):
    plugin = tmp_path / "plugins"
    plugin.mkdir()
    (plugin / "constant.py").write_text(
        "import torch\nfrom kanbench import Implementation\n"
        "def build(widths, device, dtype):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(widths[0], widths[-1]), torch.nn.LayerNorm(widths[-1])).to(device, dtype)\n"
        "spec = Implementation(name='constant', build=build)\n"
    )
    job = RowJob(impl="constant", device="cpu", workload=Workload((2, 4, 1), 8), timing=QUICK, extra_dirs=(str(plugin),))
    rec = measure_row(job)
    assert rec.error_kind == "sanity" and rec.forward_ms is None
    assert rec.error.startswith("output constant across inputs") and "--time-broken" in rec.error
    job.time_broken = True
    rec = measure_row(job)
    assert rec.error is None and rec.forward_ms > 0 and rec.sanity_status == "fail"


# ------------------------------------------------------------------ leaderboard table


def test_leaderboard_markdown_golden():
    doc = ResultsDocument.from_dict(json.loads((FIXTURES / "leaderboard_results.json").read_text()))
    text = leaderboard.render(doc)
    golden = FIXTURES / "leaderboard.md"
    assert text + "\n" == golden.read_text()


def test_leaderboard_sorts_by_paired_ratio_and_keeps_flagged_rows():
    doc = ResultsDocument.from_dict(json.loads((FIXTURES / "leaderboard_results.json").read_text()))
    lines = [line for line in leaderboard.table(doc, doc.rows()).splitlines() if line.startswith("| ")][1:]
    names = [line.split("|")[2].strip() for line in lines]
    assert names[0] == "mlp" and names[-1] == "broken"
    assert "FAIL: output constant" in lines[-1] and lines[-1].startswith("| -")


def _row(impl, fwd, bwd, family, widths, **kw):
    rounds = {"forward_ms": [fwd] * 3, "backward_ms": [bwd] * 3} if fwd is not None else None
    return RowResult(
        impl=impl, device="cpu", workload=SEED.to_dict(), forward_ms=fwd, backward_ms=bwd, rounds=rounds,
        family=family, widths=widths, trainable_params=4201, params=4201, **kw,
    )  # fmt: skip


def make_golden_document() -> ResultsDocument:
    """The document behind tests/fixtures/leaderboard*.{json,md} (kept to regenerate them)."""
    match = {"metric": "params", "target": 4201, "value": 4201, "error": 0.0}
    rows = [
        _row("splines-better_kan", 0.25, 0.24, "B-spline", [2, 150, 1], match=match, sanity={"status": "ok"}),
        _row("mlp", 0.05, 0.13, "MLP", [2, 105, 1], match=match, sanity={"status": "ok"}),
        _row(
            "chebykan",
            0.35,
            0.31,
            "Chebyshev",
            [2, 156, 1],
            match=match,
            sanity={"status": "ok"},
            flops_per_sample=11600.0,
            fit={"test_rmse": 0.0404},
        ),  # fmt: skip
        _row(
            "broken",
            None,
            None,
            "Gram polynomial",
            [2, 144, 1],
            match=match,
            sanity={"status": "fail", "failures": ["output constant across inputs (a LayerNorm over out=1?)"]},
            error="output constant across inputs (a LayerNorm over out=1?) (time it anyway: --time-broken)",
            error_kind="sanity",
        ),  # fmt: skip
    ]
    machine = {"hostname": "vm", "cpu": {"model": "AMD EPYC"}, "torch": {"threads": 2}}
    return ResultsDocument(machine=machine, config={"mode": "leaderboard", "match": "params", "threads": 2}, results=rows)


if __name__ == "__main__":  # regenerate the golden files after a deliberate change of the table
    doc = make_golden_document()
    (FIXTURES / "leaderboard_results.json").write_text(json.dumps(doc.to_dict(), indent=1) + "\n")
    (FIXTURES / "leaderboard.md").write_text(leaderboard.render(ResultsDocument.from_dict(doc.to_dict())) + "\n")
    print(Path(FIXTURES / "leaderboard.md").read_text())


def test_workloads_take_presets_custom_shapes_and_files(tmp_path):
    from kanbench.commands.common import UsageError
    from kanbench.commands.leaderboard import WorkloadChoice, parse_workloads

    assert parse_workloads("seed,widths=8,64,1,batch=256,dtype=bf16,science") == [
        WorkloadChoice("seed"),
        WorkloadChoice("seed", "8,64,1", 256, "bfloat16"),
        WorkloadChoice("science"),
    ]
    assert parse_workloads("widths=8,64,1,widths=4,4,1,batch=8") == [
        WorkloadChoice("seed", "8,64,1", 32, "float32"),
        WorkloadChoice("seed", "4,4,1", 8, "float32"),
    ]
    f = tmp_path / "mine.json"
    f.write_text('[{"widths": [3, 16, 2], "batch": 64}, {"preset": "mnist"}]')
    assert parse_workloads(f"{f},seed") == [
        WorkloadChoice("seed", "3,16,2", 64, "float32"),
        WorkloadChoice("mnist"),
        WorkloadChoice("seed"),
    ]
    for bad, message in (
        ("batch=8", "batch=8 has no widths"),
        ("seed,nope", "unknown workload 'nope'"),
        ("widths=0,3", "malformed shape '0,3'"),
        ("color=red", "unknown field 'color'"),
        ("widths=2,1,dtype=int8", "dtype"),
        (str(tmp_path / "missing.json"), "missing.json"),
    ):
        with pytest.raises(UsageError, match=message):
            parse_workloads(bad)


def test_a_custom_workload_gets_its_own_board(tmp_path):
    out = tmp_path / "lb.md"
    res = run_cli(
        "leaderboard",
        "--impl",
        "mlp,splines-better_kan",
        "--workloads",
        "widths=3,8,2,batch=16",
        "--rounds",
        "3",
        "--processes",
        "1",
        "--no-save",
        "--accuracy",
        "none",
        "--markdown",
        out,
    )
    assert res.returncode == 0, res.stderr
    assert "3x8x2" in out.read_text() or "[3, 8, 2]" in out.read_text() or "3,8,2" in out.read_text()
