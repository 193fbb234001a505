import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOYS = FIXTURES / "impls"

os.environ.setdefault("MPLBACKEND", "Agg")


def _triton_interpreter_without_a_gpu() -> None:
    """Without a CUDA device the Triton kernels are tested by Triton's interpreter, which must be
    chosen before triton is first imported (its own jit helpers are made then)."""
    import torch

    if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"
        os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")


_triton_interpreter_without_a_gpu()


def _guard_rmtree() -> None:
    """shutil.rmtree only under the temporary directory or this tree, for the whole test run.

    Tests run as root on CI machines and under mutants (``make mutate``): a mutant that drops an
    argument can turn a fake's clean-up into ``rmtree("/")`` (it happened: a fake git removed
    the parent of its last argument). Deleting anything else is an error that names the path."""
    import shutil
    import tempfile

    allowed = [Path(tempfile.gettempdir()).resolve(), ROOT.resolve()]
    real_rmtree = shutil.rmtree

    def guarded(path, *args, **kwargs):
        target = Path(os.fspath(path)).resolve()
        if not any(target != root and target.is_relative_to(root) for root in allowed):
            raise RuntimeError(f"tests may delete only under {' or '.join(map(str, allowed))}, not {target}")
        return real_rmtree(path, *args, **kwargs)

    shutil.rmtree = guarded


_guard_rmtree()


def _use_this_trees_better_kan() -> None:
    """Tests exercise the better_kan of the tree they belong to. The installed (editable) package
    points at the repository's copy; a mutation run (``make mutate``) copies the tree to mutants/
    and mutates it there, under the module name ``implementations.better_kan``."""
    import importlib

    import better_kan

    here = ROOT / "implementations" / "better_kan"
    if Path(better_kan.__file__).resolve().parent == here.resolve() or not here.is_dir():
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    package = importlib.import_module("implementations.better_kan")
    sys.modules["better_kan"] = package
    for name in list(sys.modules):
        if name.startswith("implementations.better_kan."):
            sys.modules["better_kan." + name.split(".", 2)[2]] = sys.modules[name]
    for sub in ("basis", "reference", "regularization", "grids", "layers", "spline_layer", "rbf_layer", "network"):
        sys.modules["better_kan." + sub] = importlib.import_module(f"implementations.better_kan.{sub}")


_use_this_trees_better_kan()

# BETTER_KAN_REQUIRE_NATIVE=1 (CI) was checked by the import above: this run has the native kernels or
# failed already. The subprocesses some tests start on purpose without them (BETTER_KAN_NATIVE=0, a
# build that fails) do not inherit it.
os.environ.pop("BETTER_KAN_REQUIRE_NATIVE", None)


def pytest_sessionstart(session):
    """``KANBENCH_REQUIRE_CUDA=1`` (set by scripts/device_check.sh): a machine without a usable CUDA
    device fails at once with one line, instead of skipping every CUDA test and passing."""
    if os.environ.get("KANBENCH_REQUIRE_CUDA") != "1":
        return
    import torch

    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        pytest.exit(f"KANBENCH_REQUIRE_CUDA=1 but torch {torch.__version__} ({built}) sees no CUDA device", returncode=3)


# quick timing settings for behaviour tests (tests never assert speed)
QUICK = ["--min-time", "0", "--min-samples", "3", "--warmup", "0"]


def run_cli(*args, cwd=None, timeout=300, env=None):
    """Run `python -m kanbench ARGS` in a subprocess; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kanbench", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def toys():
    return TOYS


def has_cuda():
    import torch

    return torch.cuda.is_available()


cuda = pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA device")
