"""A/B mode: measure two source trees interleaved on the same machine.

Absolute times on a shared machine drift by tens of percent within minutes, so
two runs made at different times can disagree although nothing changed. Here
both sides are measured in the same minutes: for every row, one worker process
per side builds the model and warms it up, then the two take turns measuring
short chunks (A B B A A B ...), so any drift of the machine hits both sides alike.
The pooled samples of each side are then compared with :mod:`kanbench.compare`.

A side is a source tree -- a directory (default for NEW: the working tree) or a git ref of the
repository (``repo``: the user's own, or this one), extracted with ``git archive`` -- or a pip
requirement (``pip:mykan-pkg==1.2``). A tree holding ``implementations/`` gives its specs from
there (this repository's layout); a tree that is a Python package (``pyproject.toml`` or
``setup.py``) is installed with ``pip install --no-deps --target`` into a folder of its own, and
its ``kanbench.implementations`` entry points are that side's implementations, its packages
first on the side's workers' ``sys.path`` -- so a user compares two commits of their own KAN,
each side measuring its own build. The harness measuring both sides is this one.
``extra`` directories add implementations to one side only (used for the gate's power
experiments).
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from kanbench import results as results_mod
from kanbench.machine import source_root
from kanbench.measure import RowJob, add_faults, empty_record, faults_per_step, fill_samples
from kanbench.records import ResultsDocument, RowResult
from kanbench.stats import summarize
from kanbench.timing import TimingConfig
from kanbench.worker import ServeWorker
from kanbench.workload import Workload


class ABError(ValueError):
    """A side that cannot be used (a bad ref, a directory without implementations/); exit status 2."""


class NothingToCompare(ABError):
    """A valid request with nothing to measure: the ref predates implementations/, or no implementation
    is available on both sides; exit status 3 (the one status CI may read as "skipped")."""


@dataclass
class Side:
    """One side of an A/B run: the implementations directory of a source tree (and extras), or the
    folder a package was installed into (``site_dirs``, whose entry points are the side's specs)."""

    name: str
    implementations: Optional[Path]
    extra_dirs: list[str] = field(default_factory=list)
    _tmp: Optional[str] = None
    site_dirs: list[str] = field(default_factory=list)

    def dirs(self, common: Sequence[str] = ()) -> list[str]:
        own = [str(self.implementations)] if self.implementations is not None else []
        return [*own, *self.extra_dirs, *common]

    def cleanup(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _git(root: Path, *args: str, binary: bool = False):
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=not binary, timeout=60)


PACKAGE_FILES = ("pyproject.toml", "setup.py")
PIP_PREFIX = "pip:"


def project_root(repo: Optional[str] = None) -> Path:
    """The git repository whose refs and working tree name the sides: ``repo`` when given, else the
    one holding the current directory, else kanbench's own source tree."""
    if repo is not None:
        top = _git(Path(repo), "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            raise ABError(f"--repo {repo}: not a git repository")
        return Path(top.stdout.strip())
    top = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    return Path(top.stdout.strip()) if top.returncode == 0 else source_root()


def _is_package(tree: Path) -> bool:
    return any((tree / name).is_file() for name in PACKAGE_FILES)


def install_package(source: str, role: str, label: str, extra: Sequence[str]) -> Side:
    """``pip install --no-deps --target`` a package (a directory or a requirement) into a folder of its
    own: the side whose specs are its ``kanbench.implementations`` entry points. Its dependencies are
    the environment's. Without build isolation first (offline, and the environment's build tools),
    then with it."""
    tmp = tempfile.mkdtemp(prefix="kanbench-ab-pkg-")
    site = Path(tmp) / "site"
    base = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q", "--target", str(site)]
    proc = None
    for isolation in (["--no-build-isolation"], []):
        proc = subprocess.run([*base, *isolation, source], capture_output=True, text=True, timeout=900)
        if proc.returncode == 0:
            break
        shutil.rmtree(site, ignore_errors=True)
    if proc is None or proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        last = [line for line in (proc.stderr if proc else "").splitlines() if line.strip()]
        raise ABError(f"{role} {label}: pip could not install it ({last[-1].strip() if last else 'no output'})")
    print(f"kanbench ab: {role} {label}: installed into a folder of its own", file=sys.stderr)
    return Side(label, None, list(extra), _tmp=tmp, site_dirs=[str(site)])


def _install_copy(tree: Path, role: str, label: str, extra: Sequence[str]) -> Side:
    """Install a copy of a package's tree (its git-tracked and unignored files when it is a git work
    tree), so that the build leaves nothing (``build/``, ``*.egg-info``) in the user's folder."""
    tmp = tempfile.mkdtemp(prefix="kanbench-ab-src-")
    listed = _git(tree, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    try:
        if listed.returncode == 0 and listed.stdout:
            for name in filter(None, listed.stdout.split("\0")):
                source = tree / name
                if source.is_file():
                    (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, Path(tmp) / name)
        else:
            ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__")
            shutil.copytree(tree, tmp, ignore=ignore, dirs_exist_ok=True)
        return install_package(tmp, role, label, extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _tree_side(tree: Path, label: str, role: str, extra: Sequence[str]) -> Side:
    """A directory: its ``implementations/`` when it has one, else the package it is."""
    if (tree / "implementations").is_dir():
        return Side(label, (tree / "implementations").resolve(), list(extra))
    if _is_package(tree):
        return _install_copy(tree.resolve(), role, label, extra)
    raise ABError(f"{role} {label}: no implementations/ directory in it")


def resolve_side(spec: Optional[str], extra: Sequence[str] = (), role: str = "side", repo: Optional[Path] = None) -> Side:
    """A directory holding ``implementations/`` or a Python package (None: the working tree of
    ``repo``), a git ref of ``repo`` (default: kanbench's own source tree), or ``pip:REQUIREMENT``."""
    root = Path(repo) if repo is not None else source_root()
    extra = [str(Path(d).resolve()) for d in extra]
    if spec is None:
        if (root / "implementations").is_dir() or not _is_package(root):
            return Side("working tree", root / "implementations", extra)
        return _install_copy(root, role, "working tree", extra)
    if spec.startswith(PIP_PREFIX):
        return install_package(spec[len(PIP_PREFIX) :], role, spec, extra)
    path = Path(spec)
    if path.is_dir():
        return _tree_side(path, str(spec), role, extra)
    check = _git(root, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    if check.returncode != 0:
        raise ABError(f"{role} {spec!r} is neither a directory nor a git ref of {root}")
    commit = check.stdout.strip()
    label = f"{spec} ({commit[:8]})"
    has_impl = _git(root, "cat-file", "-e", f"{commit}:implementations").returncode == 0
    if not has_impl and not any(_git(root, "cat-file", "-e", f"{commit}:{name}").returncode == 0 for name in PACKAGE_FILES):
        raise NothingToCompare(f"{role} {spec} ({commit[:8]}) has no implementations/ directory: nothing to compare")
    archive = _git(root, "archive", "--format=tar", commit, *(["implementations"] if has_impl else []), binary=True)
    if archive.returncode != 0:
        raise ABError(f"{role} {spec}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    tmp = tempfile.mkdtemp(prefix="kanbench-ab-")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        try:
            tar.extractall(tmp, filter="data")
        except TypeError:  # Python without extraction filters
            tar.extractall(tmp)
    if not has_impl:
        try:
            side = install_package(tmp, role, label, extra)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return side
    from kanbench import native_build

    print(
        f"kanbench ab: {role} {spec}: " + native_build.provide(Path(tmp) / "implementations", root / "implementations"),
        file=sys.stderr,
    )
    return Side(label, Path(tmp) / "implementations", extra, _tmp=tmp)


@dataclass
class ABPlan:
    """What an A/B run measures and how: rows, rounds, chunk length, workers per side."""

    impls: list[str]
    devices: list[str]
    workload: Workload
    rounds: int = 12
    chunk_time: float = 0.2
    workers: int = 3
    chunk_min_samples: int = 5
    warmup: TimingConfig = field(default_factory=TimingConfig)
    threads: Optional[int] = None
    common_dirs: Sequence[str] = ()
    memory: bool = False
    timeout_s: float = 300.0

    def __post_init__(self):
        if self.rounds < 2:
            raise ValueError("--rounds must be at least 2")
        if self.chunk_time <= 0:
            raise ValueError("--chunk-time must be positive")
        if not 1 <= self.workers <= self.rounds:
            raise ValueError("--workers must be between 1 and --rounds")

    def check_test(self, alpha: float, test: str) -> None:
        """The paired test's smallest p-value is 2^-rounds: refuse a plan that could never reach ``alpha``."""
        needed = math.floor(math.log2(1 / alpha)) + 1 if 0 < alpha < 1 else 2
        if test != "mw" and self.rounds < needed:
            raise ValueError(
                f"--rounds {self.rounds} is too few for the paired test at alpha {alpha:g}: its smallest "
                f"p-value is 2^-rounds; use --rounds {needed} or more (or --test mw)"
            )


def _job(plan: ABPlan, side: Side, impl: str, device: str) -> RowJob:
    return RowJob(
        impl=impl,
        device=device,
        workload=plan.workload,
        timing=plan.warmup,
        threads=plan.threads,
        extra_dirs=tuple(side.dirs(plan.common_dirs)),
        budget_s=None,
        memory=plan.memory,
        builtin=False,
        site_dirs=tuple(side.site_dirs),
    )


def measure_pair(plan: ABPlan, base: Side, new: Side, impl: str, device: str, workdir: str) -> tuple[RowResult, RowResult]:
    """Interleaved chunks of one row on both sides: (base record, new record).

    Each side runs ``plan.workers`` worker processes and round r uses worker r mod
    workers on both sides: a process can be a few percent faster or slower than another
    running the same code (memory layout, address-space randomization -- why pyperf runs
    many worker processes), and one unlucky process per side would otherwise bias every
    round the same way."""
    sides = {
        "base": (base, empty_record(_job(plan, base, impl, device))),
        "new": (new, empty_record(_job(plan, new, impl, device))),
    }
    workers: dict[str, list[ServeWorker]] = {k: [] for k in sides}
    samples = {k: {"forward_ms": [], "backward_ms": []} for k in sides}
    round_medians = {k: {"forward_ms": [], "backward_ms": []} for k in sides}
    faults: dict = {k: 0 for k in sides}  # minor page faults over the chunks; None: not counted
    started = time.monotonic()
    try:
        # start every worker first: they build and warm up side by side (nothing is timed yet)
        for key, (side, _) in sides.items():
            for w in range(plan.workers):
                workers[key].append(ServeWorker(_job(plan, side, impl, device), workdir, f"{key}{w}-{impl}-{device}"))
        for key, (_, record) in sides.items():
            for worker in workers[key]:
                try:
                    hello = worker.read(plan.timeout_s)
                except Exception as exc:
                    record.fail("crash", f"worker did not start: {exc}")
                    break
                record.update(hello.get("record", {}))
                if not hello.get("ready"):
                    break
        alive = [k for k in sides if not sides[k][1].failed]
        for r in range(plan.rounds):
            order = alive if r % 2 == 0 else list(reversed(alive))
            for key in order:
                record = sides[key][1]
                if record.failed:
                    continue
                try:
                    reply = workers[key][r % plan.workers].request(
                        {"cmd": "chunk", "min_time": plan.chunk_time, "min_samples": plan.chunk_min_samples},
                        plan.timeout_s,
                    )
                except Exception as exc:
                    record.fail("crash", f"worker failed in round {r + 1}: {exc}")
                    continue
                if "error" in reply:
                    record.fail("crash", reply["error"])
                    continue
                samples[key]["forward_ms"].extend(reply["forward_ms"])
                samples[key]["backward_ms"].extend(reply["backward_ms"])
                for phase in ("forward_ms", "backward_ms"):
                    round_medians[key][phase].append(summarize(reply[phase])["median"])
                faults[key] = add_faults(faults[key], reply.get("minor_faults"))
        for key in alive:
            record = sides[key][1]
            if record.failed:
                continue
            fill_samples(record, samples[key]["forward_ms"], samples[key]["backward_ms"])
            record.rounds = round_medians[key]
            record.workers = plan.workers
            record.minor_faults_per_step = faults_per_step(faults[key], len(samples[key]["forward_ms"]))
            if plan.memory:
                try:
                    reply = workers[key][0].request({"cmd": "memory"}, plan.timeout_s)
                    record.update(reply.get("memory", {}))
                except Exception as exc:
                    record.memory_method = f"unavailable ({exc})"
    finally:
        for side_workers in workers.values():
            for worker in side_workers:
                worker.close()
    for _, record in sides.values():
        record.wall_s = round(time.monotonic() - started, 3)
    return sides["base"][1], sides["new"][1]


def run(
    plan: ABPlan,
    base: Side,
    new: Side,
    machine: dict,
    progress: Optional[Callable[[int, int, RowResult, RowResult], None]] = None,
) -> tuple[ResultsDocument, ResultsDocument]:
    """Both sides' results documents (same machine, same minutes)."""
    config = {
        "workload": plan.workload.to_dict(),
        "timing": plan.warmup.to_dict(),
        "threads": machine.get("torch", {}).get("threads"),
        "devices": plan.devices,
        "isolation": "ab-interleaved",
        "ab": {"base": base.name, "new": new.name, "rounds": plan.rounds, "chunk_time": plan.chunk_time, "workers": plan.workers},
    }
    docs = {}
    for key, side in (("base", base), ("new", new)):
        doc = results_mod.new_document(machine, dict(config, side=key, implementations_dirs=side.dirs(plan.common_dirs)))
        doc.name = side.name
        docs[key] = doc
    pairs = [(i, d) for i in plan.impls for d in plan.devices]
    with tempfile.TemporaryDirectory(prefix="kanbench-ab-run-") as workdir:
        for n, (impl, device) in enumerate(pairs):
            b, w = measure_pair(plan, base, new, impl, device, workdir)
            docs["base"].results.append(b)
            docs["new"].results.append(w)
            if progress:
                progress(n + 1, len(pairs), b, w)
    for doc in docs.values():
        doc.complete = True
    return docs["base"], docs["new"]
