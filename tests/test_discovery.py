import textwrap

import pytest

from kanbench import Implementation
from kanbench.discovery import UnknownImplementation, discover
from tests.conftest import FIXTURES, QUICK, TOYS, run_cli


def test_builtin_mlp_is_discovered():
    reg = discover(entry_points=False)
    assert "mlp" in reg.names()
    assert reg.get("mlp").available


def test_discovery_from_a_temporary_directory(tmp_path):
    (tmp_path / "mine.py").write_text(
        textwrap.dedent(
            """
            from torch import nn
            from kanbench import Implementation
            spec = Implementation(name="mine", build=lambda w, device, dtype: nn.Linear(w[0], w[-1]),
                                  description="from a temp dir")
            """
        )
    )
    pkg = tmp_path / "pkgimpl"
    pkg.mkdir()
    (pkg / "layer.py").write_text("from torch import nn\nclass L(nn.Linear):\n    pass\n")
    (pkg / "__init__.py").write_text(
        "from kanbench import Implementation\nfrom .layer import L\n"
        "SPECS = [Implementation(name='pkg-a', build=lambda w, device, dtype: L(w[0], w[-1])),\n"
        "         Implementation(name='pkg-b', build=lambda w, device, dtype: L(w[0], w[-1]))]\n"
    )
    (tmp_path / "_private.py").write_text("raise RuntimeError('must not be imported')\n")
    reg = discover([tmp_path], builtin=False, entry_points=False)
    assert reg.names() == ["mine", "pkg-a", "pkg-b"]
    assert all(e.available for e in reg)
    assert reg.get("mine").spec.description == "from a temp dir"
    assert reg.load_errors == []


def test_unknown_implementation_lists_known_ones():
    reg = discover([TOYS], builtin=False, entry_points=False)
    with pytest.raises(UnknownImplementation) as info:
        reg.get("nope")
    assert "nope" in str(info.value) and "sleepy" in str(info.value)


def test_missing_optional_package_is_unavailable_with_reason_and_hint():
    reg = discover([TOYS], builtin=False, entry_points=False)
    e = reg.get("needs-missing")
    assert not e.available
    assert "kanbench_no_such_package_xyz" in e.reason and "not installed" in e.reason
    assert "pip install kanbench-no-such-package-xyz" in e.reason


def test_too_old_package_is_unavailable(tmp_path):
    (tmp_path / "old.py").write_text(
        "from kanbench import Implementation\n"
        "spec = Implementation(name='old', build=lambda w, device, dtype: None, requires=('torch',),\n"
        "                      min_versions={'torch': '999.0'}, install='pip install -U torch')\n"
    )
    e = discover([tmp_path], builtin=False, entry_points=False).get("old")
    assert not e.available and "too old" in e.reason and "999.0" in e.reason


def test_a_module_that_fails_to_import_is_listed_not_raised():
    reg = discover([FIXTURES / "broken"], builtin=False, entry_points=False)
    assert len(reg) == 0
    assert len(reg.load_errors) == 1
    assert "ModuleNotFoundError" in reg.load_errors[0].reason


def test_duplicate_names_keep_the_first(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(
            "from kanbench import Implementation\nspec = Implementation(name='dup', build=lambda w, device, dtype: None)\n"
        )
    reg = discover([tmp_path], builtin=False, entry_points=False)
    assert reg.names() == ["dup"]
    assert "duplicate" in reg.load_errors[0].reason


def test_missing_directory_is_a_load_error(tmp_path):
    reg = discover([tmp_path / "absent"], builtin=False, entry_points=False)
    assert "does not exist" in reg.load_errors[0].reason


def test_entry_point_group(monkeypatch):
    import importlib.metadata as md

    spec = Implementation(name="from-ep", build=lambda w, device, dtype: None)

    class EP:
        name = "demo"
        value = "demo:spec"

        def load(self):
            return spec

    class EPs(list):
        def select(self, group):
            return [EP()] if group == "kanbench.implementations" else []

    monkeypatch.setattr(md, "entry_points", lambda: EPs())
    reg = discover(builtin=False)
    assert reg.names() == ["from-ep"]
    assert reg.get("from-ep").origin.startswith("entry point demo")


def test_spec_rejects_bad_names():
    with pytest.raises(ValueError):
        Implementation(name="has space", build=lambda w, device, dtype: None)


def test_cli_list_shows_extra_directory_and_unavailable_reason():
    res = run_cli("list", "--implementations", TOYS)
    assert res.returncode == 0, res.stderr
    assert "sleepy" in res.stdout and "mlp" in res.stdout
    assert "needs-missing: optional package 'kanbench_no_such_package_xyz' is not installed" in res.stdout


def test_cli_run_finds_implementations_dir(tmp_path):
    out = tmp_path / "r.json"
    res = run_cli("run", "--impl", "frozen", "--device", "cpu", "--implementations", TOYS, "--out", out, "--in-process", *QUICK)
    assert res.returncode == 0, res.stderr
    assert "frozen-cpu" in res.stdout
