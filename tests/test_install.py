"""kanbench as a user outside this repository gets it: a wheel built from the tree, installed into a
fresh virtual environment in a temporary folder, and a KAN of the user's own in a package of its own
(an entry point in the ``kanbench.implementations`` group, installed with ``pip install -e``).

Every command runs from the temporary folder with no path into the repository, so what is found is
what the wheel and the user's package carry. The new environment reads its dependencies (torch,
pandas, ...) from this test environment's site-packages through a ``.pth`` line instead of
downloading them again. A wheel build and a venv take a minute or two, so ``make test-install``
runs this module (``.ci/run`` calls it); plain ``make test`` skips it with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import QUICK, ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("KANBENCH_INSTALL_TESTS") != "1", reason="run by make test-install"),
]

#: the user's own package: the manual's tutorial KAN, registered by an entry point
PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "mykan-pkg"
version = "0.0.1"

[project.entry-points."kanbench.implementations"]
mykan = "mykan_pkg.kanbench_spec"
"""


def _run(argv, cwd, timeout=600, env=None):
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**clean, **(env or {})})
    assert proc.returncode == 0, (
        f"{' '.join(map(str, argv))} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the new venv's python, a working folder outside the repository)."""
    base = tmp_path_factory.mktemp("outside")
    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, ROOT], cwd=base)
    (wheel,) = wheels.glob("kanbench-*.whl")
    venv = base / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", venv], cwd=base)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q"]  # this pip, into the new venv
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base).stdout.strip())
    (site / "dependencies-from-the-test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*pip, "--no-index", wheel], cwd=base)

    package = base / "mykan-pkg"
    (package / "mykan_pkg").mkdir(parents=True)
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "mykan_pkg" / "__init__.py").write_text("")
    (package / "mykan_pkg" / "kanbench_spec.py").write_text((ROOT / "docs" / "tutorial" / "mykan.py").read_text())
    _run([*pip, "--no-build-isolation", "-e", package], cwd=base)
    work = base / "work"
    work.mkdir()
    return python, work


def _kanbench(installed, *args):
    python, work = installed
    return _run([python, "-m", "kanbench", *map(str, args)], cwd=work)


def test_the_wheel_is_what_runs(installed):
    python, work = installed
    where = _run([python, "-c", "import kanbench, better_kan; print(kanbench.__file__); print(better_kan.__file__)"], cwd=work)
    for line in where.stdout.split():
        assert not Path(line).is_relative_to(ROOT), f"imported from the repository: {line}"
        assert Path(line).is_relative_to(python.parent.parent)


def test_list_shows_the_baseline_our_layers_and_the_users_kan(installed):
    out = _kanbench(installed, "list").stdout
    for name in ("mlp", "splines-better_kan", "rbf-better_kan", "mykan"):
        assert name in out


def test_run_measures_the_mlp_and_our_layers_on_their_native_path(installed):
    _, work = installed
    proc = _kanbench(installed, "run", "--impl", "mlp,splines-better_kan,rbf-better_kan", "--preset", "seed", "--no-save", *QUICK)
    for row in ("mlp-cpu", "splines-better_kan-cpu", "rbf-better_kan-cpu"):
        assert row in proc.stdout
    assert "PyTorch path" not in proc.stdout + proc.stderr  # the wheel carries the native operator


def test_the_leaderboard_matches_checks_and_ranks_the_users_kan(installed):
    _, work = installed
    out = work / "board.md"
    _kanbench(
        installed,
        *("leaderboard", "--impl", "mlp,mykan,splines-better_kan", "--workloads", "widths=3,8,2,batch=16"),
        *("--rounds", "3", "--processes", "1", "--no-save", "--accuracy", "none", "--markdown", out),
    )
    board = out.read_text()
    assert "mykan" in board and "splines-better_kan" in board
    row = next(line for line in board.splitlines() if "mykan" in line)
    assert "failed" not in row.lower() and "not run" not in row.lower()


#: a user's KAN whose cost is set by one constant: a commit that raises it makes the forward slower
TOY_SPEC = """\
import torch
from torch import nn

from kanbench import Implementation

REPEAT = {repeat}


class Toy(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.inner = nn.Linear(widths[0], widths[0])
        self.out = nn.Linear(widths[0], widths[-1])

    def forward(self, x):
        h = x
        for _ in range(REPEAT):
            h = torch.tanh(self.inner(h))
        return self.out(h)


spec = Implementation(name="mykan", build=lambda widths, device, dtype: Toy(widths).to(device=device, dtype=dtype))
"""


def _git(repo, *args):
    env = {"GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@u", "GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@u"}
    return _run(["git", "-C", repo, *args], cwd=repo, env=env).stdout.strip()


def _commit(repo, repeat: int, message: str) -> str:
    (repo / "toykan" / "kanbench_spec.py").write_text(TOY_SPEC.format(repeat=repeat))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", message)
    return _git(repo, "rev-parse", "HEAD")


def _gate_command() -> list[str]:
    """The `kanbench ab` line of the manual's example workflow for an outside package."""
    import shlex

    text = (ROOT / "docs" / "ci" / "outside-package.yml").read_text()
    (line,) = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("kanbench ab ")]
    return shlex.split(line.split("||", 1)[0])


def test_the_gate_of_an_outside_package_catches_its_own_slower_commit(installed, tmp_path):
    """The example workflow's gate, run in a user's repository: base = the previous commit of *their*
    package (installed into a folder of its own), new = their working tree."""
    python, _ = installed
    repo = tmp_path / "toykan-repo"
    (repo / "toykan").mkdir(parents=True)
    (repo / "toykan" / "__init__.py").write_text("")
    (repo / "pyproject.toml").write_text(
        PYPROJECT.replace("mykan-pkg", "toykan").replace("mykan_pkg.kanbench_spec", "toykan.kanbench_spec")
    )
    _git(repo, "init", "-q")
    fast = _commit(repo, 10, "the toy KAN")
    _commit(repo, 13, "30% more work per forward")
    gate = _gate_command()
    assert gate[:2] == ["kanbench", "ab"] and "--base" in gate
    argv = [python, "-m", "kanbench", *gate[1:]]
    argv[argv.index("--base") + 1] = fast  # the workflow's base ref (the main branch) is this commit here
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    slower = subprocess.run([*map(str, argv), "--no-save"], cwd=repo, capture_output=True, text=True, timeout=900, env=clean)
    assert slower.returncode == 1, slower.stdout + slower.stderr
    assert "mykan" in slower.stdout

    (repo / "README").write_text("a change that does not touch the KAN\n")
    same = _commit(repo, 13, "docs only")
    argv[argv.index("--base") + 1] = _git(repo, "rev-parse", "HEAD~1")
    unchanged = subprocess.run([*map(str, argv), "--no-save"], cwd=repo, capture_output=True, text=True, timeout=900, env=clean)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert same
