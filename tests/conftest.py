import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOYS = FIXTURES / "impls"

os.environ.setdefault("MPLBACKEND", "Agg")

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
