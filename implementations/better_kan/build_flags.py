"""How better_kan's native extension is compiled: one place for setup.py and ``kanbench ab``'s base side.

The flags differ by platform (GCC/Clang on Linux, Clang on macOS without OpenMP by default, MSVC on
Windows), and every build embeds the sha256 of the C++ source it compiled
(``better_kan._C.SOURCE_SHA256``) so that :mod:`better_kan.native` can tell a stale build from a
current one. Standard library only: setup.py loads this file before torch or the package import.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path


def source_sha256(source: Path) -> str:
    """The sha256 of the C++ source, as the extension embeds it."""
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def compile_args(source: Path, platform: str = sys.platform) -> tuple[list[str], list[str]]:
    """(compiler flags, linker flags) for the extension built from ``source`` on ``platform``.

    Floating-point contraction is left at the compiler's default on purpose. The loops are compiled
    for several x86-64 levels (target_clones, picked at load time), and the levels with FMA fuse
    ``x * a + b`` as ATen's own AVX2/AVX-512 kernels do: on one machine the native path then rounds
    exactly like the PyTorch path (the tests compare them on the knots, where one rounding moves a
    value across a knot). With ``-ffp-contract=off`` it would round differently from the PyTorch path
    on every FMA machine; across machines of different levels both paths differ in the last bit.
    """
    define = f"BETTER_KAN_SOURCE_SHA256={source_sha256(source)}"
    if platform == "win32":
        return ["/O2", "/std:c++20", "/openmp", f"/D{define}"], []
    flags = ["-O3", "-std=c++20", "-fvisibility=hidden", "-fstrict-aliasing", "-fno-trapping-math", "-fno-math-errno"]
    flags += [f"-D{define}"]
    if platform == "darwin":  # Apple's clang has no OpenMP runtime: at::parallel_for still threads
        return flags, []
    return flags + ["-fopenmp"], ["-fopenmp"]


__all__ = ["compile_args", "source_sha256"]
