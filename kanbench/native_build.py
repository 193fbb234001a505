"""Native kernels for a source tree that ``kanbench ab`` extracted from git.

A git archive holds better_kan's C++ source but not its build (``better_kan/_C*.so`` is built by
``pip install``, never committed). Without it that side's layers would take their PyTorch path
while the working tree's run natively, and the A/B would compare the two paths instead of the two
trees. :func:`provide` gives the extracted package the working tree's build when that build embeds the
sha256 of the extracted tree's C++ source (the same source builds the same operator; a build older
than an edit of the source does not qualify), else compiles that tree's source with torch's extension
helpers and the flags setup.py uses (better_kan/build_flags.py; about 30 s on 2 cores).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Optional

from better_kan import build_flags

SOURCE = Path("better_kan") / "csrc" / "kan_ops.cpp"


def _built(package: Path) -> Optional[Path]:
    found = sorted(package.glob("_C*" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so")))
    return found[0] if found else None


def provide(extracted: Path, working: Path) -> str:
    """Give ``extracted``/better_kan (an implementations/ directory) the native kernels; one line saying how."""
    source = extracted / SOURCE
    if not source.is_file():
        return "no native kernels in that tree (it predates them)"
    package = extracted / "better_kan"
    built = _built(working / "better_kan")
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    if built is not None and build_flags.source_sha256(source).encode() in built.read_bytes():
        shutil.copy2(built, package / ("_C" + suffix))
        return "native kernels: the working tree's build (built from the same C++ source)"
    flags, link_flags = build_flags.compile_args(source)
    # compiled in a process of its own: loading the result here would register a second copy of the operators
    build_dir = tempfile.mkdtemp(prefix="kanbench-ab-build-")
    script = (
        "import sys; from torch.utils.cpp_extension import load\n"
        f"m = load('_C', [{str(source)!r}], extra_cflags={flags!r}, extra_ldflags={link_flags!r}, "
        f"build_directory={build_dir!r}, verbose=False)\n"
        "print(m.__file__)\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"native kernels not built for that tree ({exc}); its layers take their PyTorch path"
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        reason = (out.stderr.strip().splitlines() or ["the compile failed"])[-1]
        return f"native kernels not built for that tree ({reason}); its layers take their PyTorch path"
    shutil.copy2(lines[-1], package / ("_C" + suffix))
    return "native kernels: compiled from that tree's C++ source"
