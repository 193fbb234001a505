"""Builds better_kan's native CPU kernels (``better_kan._C``, implementations/better_kan/csrc/) with
torch's C++ extension helpers; everything else is declared in pyproject.toml.

The extension is optional: without torch in the build environment (pip's build isolation; install
with ``--no-build-isolation``, as the Makefile does), without a C++ compiler, with
``BETTER_KAN_BUILD=0``, or when the compile fails, the package installs without it and the layers
use their PyTorch path -- the build says so in one line.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from setuptools import setup

SOURCE = "implementations/better_kan/csrc/kan_ops.cpp"
REQUIRED = os.environ.get("BETTER_KAN_REQUIRE_NATIVE", "0") == "1"


def _build_flags():
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "better_kan_build_flags", os.path.join(here, "implementations", "better_kan", "build_flags.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _skip(reason: str) -> None:
    if REQUIRED:
        raise SystemExit(f"better_kan: BETTER_KAN_REQUIRE_NATIVE=1 but the native kernels were not built ({reason})")
    print(f"better_kan: native kernels not built ({reason}); the layers use their PyTorch path", file=sys.stderr)


def _extensions():
    if os.environ.get("BETTER_KAN_BUILD", "1") == "0":
        _skip("BETTER_KAN_BUILD=0")
        return [], {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:
        _skip("torch is not importable in the build environment: pip install --no-build-isolation")
        return [], {}

    class OptionalBuild(BuildExtension):
        """A failed compile leaves the extension out instead of failing the install."""

        def build_extensions(self):
            try:
                super().build_extensions()
            except Exception as exc:  # the compiler's own output is above this line
                _skip(f"the compile failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                self.extensions = []  # nothing to copy into the package

    flags, link_flags = _build_flags().compile_args(SOURCE)
    ext = CppExtension("better_kan._C", [SOURCE], extra_compile_args=flags, extra_link_args=link_flags)
    return [ext], {"build_ext": OptionalBuild.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
