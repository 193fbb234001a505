"""Fetch the pinned public implementations (:mod:`kanbench.sources`) into this environment.

A ``checkout`` source is cloned (from GitHub, or ``from_``: a local clone, a bare mirror or
another URL) and checked out at its pinned commit into the source cache, atomically (a
temporary directory renamed into place); a ``pypi`` source is pip-installed. Every pip call
pins torch to the installed version with a constraints file, so no dependency can replace
the torch build the user chose.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from kanbench import sources
from kanbench.sources import Installed, Source


class InstallError(Exception):
    """One line saying why a source could not be installed."""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _git(*args: str, cwd: Optional[Path] = None) -> str:
    if shutil.which("git") is None:
        raise InstallError("git is not installed (needed to fetch the public implementations)")
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(_last_line(proc.stderr or proc.stdout))
    return proc.stdout.strip()


def _torch_constraint() -> str:
    try:
        import torch

        return f"torch=={torch.__version__}\n"
    except ImportError:
        return ""


def pip_install(requirements: list[str], no_deps: bool = False) -> None:
    """``pip install`` with torch pinned to the installed version; InstallError with pip's last line."""
    if not requirements:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write(_torch_constraint())
        constraints = fh.name
    try:
        cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-c", constraints]
        if no_deps:
            cmd.append("--no-deps")
        proc = subprocess.run(cmd + list(requirements), capture_output=True, text=True)
    finally:
        Path(constraints).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise InstallError(f"pip install {' '.join(requirements)} failed: {_last_line(proc.stderr)}")


def checkout(source: Source, from_: Optional[str] = None) -> Installed:
    """Clone ``source`` (or ``from_``) and check out its pinned revision into the cache."""
    origin = from_ or source.url
    dest = sources.checkout_dir(source.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{source.name}-", dir=dest.parent))
    try:
        try:
            _git("clone", "--quiet", "--no-checkout", origin, str(tmp / "repo"))
        except InstallError as exc:
            hint = "" if from_ else "; offline? give a local clone or mirror with --from PATH"
            raise InstallError(f"cannot fetch {origin}: {exc}{hint}") from None
        try:
            _git("checkout", "--quiet", "--detach", source.rev, cwd=tmp / "repo")
        except InstallError:
            raise InstallError(f"{origin} does not contain the pinned revision {source.rev[:12]}") from None
        head = _git("rev-parse", "HEAD", cwd=tmp / "repo")
        if dest.exists():
            shutil.rmtree(dest)
        (tmp / "repo").rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rec = Installed(source.name, "checkout", head, origin, path=str(dest), licence=source.licence)
    pip_install(list(source.deps))
    sources.write_record(rec)
    return rec


def install_pypi(source: Source, from_: Optional[str] = None) -> Installed:
    """pip-install a PyPI source (``from_``: a wheel, sdist or directory instead of the index)."""
    pip_install([from_ or source.pypi], no_deps=source.no_deps)
    pip_install(list(source.deps))
    rec = sources.installed(source.name)
    if rec is None:
        raise InstallError(f"{source.pypi} installed but its distribution is not visible to this Python")
    return rec


def install(name: str, from_: Optional[str] = None) -> Installed:
    """Install one source by name; raises InstallError (unknown name, offline, missing revision)."""
    source = sources.SOURCES.get(name)
    if source is None:
        raise InstallError(f"unknown source {name!r}; known: {', '.join(sorted(sources.SOURCES))}, all")
    if source.kind == "pypi":
        return install_pypi(source, from_)
    return checkout(source, from_)
