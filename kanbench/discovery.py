"""Finding implementations: the repository's ``implementations/`` directory, extra
directories (``--implementations DIR``) and the ``kanbench.implementations``
entry-point group.

Nothing here raises on a broken or unavailable implementation: every problem
becomes an :class:`Entry` with ``available=False`` and a one-line ``reason``,
so ``kanbench list`` can show it and a run can skip it with that line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterable, Optional, Sequence

from kanbench.spec import Implementation

ENTRY_POINT_GROUP = "kanbench.implementations"


class UnknownImplementation(KeyError):
    """A requested implementation name that no source defines."""

    def __init__(self, name: str, known: Sequence[str]):
        self.name = name
        self.known = list(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown implementation {self.name!r}; known: {', '.join(self.known) or '(none)'}"


@dataclass
class Entry:
    """One discovered implementation (or a source that failed to load)."""

    name: str
    origin: str
    spec: Optional[Implementation] = None
    available: bool = True
    reason: Optional[str] = None

    @property
    def install(self) -> str:
        return self.spec.install if self.spec else ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def specs_in_module(module: ModuleType) -> list[Implementation]:
    """Every ``Implementation`` held at module level (a list/tuple of them too)."""
    found: list[Implementation] = []
    seen: set[int] = set()
    for value in vars(module).values():
        items = value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, Implementation) and id(item) not in seen:
                seen.add(id(item))
                found.append(item)
    return found


def _load_path_module(path: Path) -> ModuleType:
    """Import a ``*.py`` file or a package directory by path, under a unique name."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    stem = path.stem if path.is_file() else path.name
    modname = f"_kanbench_ext_{digest}_{stem}"
    if modname in sys.modules:
        return sys.modules[modname]
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(modname, path / "__init__.py", submodule_search_locations=[str(path)])
    else:
        spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def _directory_items(directory: Path) -> list[Path]:
    items = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith(("_", ".")):
            continue
        if child.is_file() and child.suffix == ".py":
            items.append(child)
        elif child.is_dir() and (child / "__init__.py").is_file():
            items.append(child)
    return items


def builtin_directory() -> Optional[Path]:
    """The built-in specs: the repository's ``implementations/`` directory next to the ``kanbench``
    package, or, installed from a wheel, its copy ``kanbench/builtin/`` (the MLP baseline, our layers'
    specs and the adapters; our layers themselves are the ``better_kan`` package).

    It is found by path and imported under a private name (as ``--implementations``
    directories are), so no generic top-level ``implementations`` package is ever
    installed; None when neither is there."""
    here = Path(__file__).resolve().parent
    for directory in (here.parent / "implementations", here / "builtin"):
        if (directory / "__init__.py").is_file():
            return directory
    return None


def _builtin_modules() -> Iterable[tuple[str, "ModuleType | BaseException"]]:
    directory = builtin_directory()
    if directory is None:
        return
    root = directory.parent
    for origin, obj in _directory_modules(directory):
        path = Path(origin)
        yield (str(path.relative_to(root)) if path.is_absolute() and root in path.parents else origin), obj


def _directory_modules(directory: Path) -> Iterable[tuple[str, "ModuleType | BaseException"]]:
    """The modules of an implementations directory. A directory that is itself a package
    (has ``__init__.py``, like ``implementations/``) is imported as one, under a unique name,
    so its modules' relative imports (``from ._util import ...``) work; otherwise every
    ``*.py`` file and package in it is imported on its own."""
    if not directory.is_dir():
        yield str(directory), NotADirectoryError(f"implementations directory {directory} does not exist")
        return
    if (directory / "__init__.py").is_file():
        try:
            package = _load_path_module(directory)
        except Exception as exc:
            yield str(directory), exc
            return
        yield str(directory / "__init__.py"), package
        for item in _directory_items(directory):
            name = item.stem if item.is_file() else item.name
            try:
                yield str(item), importlib.import_module(f"{package.__name__}.{name}")
            except Exception as exc:
                yield str(item), exc
        return
    for item in _directory_items(directory):
        try:
            yield str(item), _load_path_module(item)
        except Exception as exc:
            yield str(item), exc


def use_site_dirs(site_dirs: Sequence[os.PathLike | str]) -> None:
    """Put installed-package folders (``pip install --target DIR``) first on ``sys.path``, so that their
    packages shadow any copy installed in the environment (an A/B side's own build of a user's KAN)."""
    for directory in reversed([str(d) for d in site_dirs]):
        if directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)
    importlib.invalidate_caches()


def forget_site_modules(site_dirs: Sequence[os.PathLike | str]) -> None:
    """Take the folders off ``sys.path`` and drop the modules imported from them, so that another
    folder holding another build of the same package can be imported next."""
    folders = [str(Path(d).resolve()) for d in site_dirs]
    if not folders:
        return
    sys.path[:] = [p for p in sys.path if str(Path(p).resolve()) not in folders]
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None) or ""
        if origin and any(str(Path(origin).resolve()).startswith(folder + os.sep) for folder in folders):
            del sys.modules[name]
    importlib.invalidate_caches()


def _entry_point_modules(paths: Optional[Sequence[str]] = None) -> Iterable[tuple[str, "object | BaseException"]]:
    """The ``kanbench.implementations`` entry points of the environment, or only of the distributions
    installed in ``paths`` (folders of installed packages)."""
    try:
        if paths is not None:
            selected = [
                ep
                for dist in importlib.metadata.distributions(path=list(paths))
                for ep in dist.entry_points
                if ep.group == ENTRY_POINT_GROUP
            ]
        else:
            eps = importlib.metadata.entry_points()
            selected = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, [])
    except Exception as exc:
        yield "entry points", exc
        return
    for ep in selected:
        origin = f"entry point {ep.name} = {ep.value}"
        try:
            yield origin, ep.load()
        except Exception as exc:
            yield origin, exc


def _specs_from_object(obj: object) -> list[Implementation]:
    if isinstance(obj, ModuleType):
        return specs_in_module(obj)
    if isinstance(obj, Implementation):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [o for o in obj if isinstance(o, Implementation)]
    if callable(obj):
        return _specs_from_object(obj())
    return []


def check_requirements(spec: Implementation) -> Optional[str]:
    """None when every optional package imports (at a recent enough version), else the reason."""
    hint = f"; install: {spec.install}" if spec.install else ""
    if spec.check is not None:
        try:
            reason = spec.check()
        except Exception as exc:
            reason = f"availability check failed ({_one_line(exc)})"
        if reason:
            return reason + (hint if reason.startswith("not installed") and spec.install not in reason else "")
    for module in spec.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = getattr(exc, "name", None)
            if missing is None or module == missing or module.startswith(missing + "."):
                return f"optional package '{module}' is not installed" + hint
            return f"optional package '{module}' failed to import ({_one_line(exc)})" + hint
        except Exception as exc:
            return f"optional package '{module}' failed to import ({_one_line(exc)})" + hint
    for dist, minimum in spec.min_versions.items():
        try:
            have = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return f"distribution '{dist}' is not installed" + hint
        from packaging.version import InvalidVersion, Version

        try:
            too_old = Version(have) < Version(minimum)
        except InvalidVersion:
            too_old = False
        if too_old:
            return f"'{dist}' {have} is too old (need >= {minimum})" + hint
    return None


class Registry:
    """The discovered implementations, by name, in discovery order."""

    def __init__(self, entries: list[Entry], load_errors: list[Entry]):
        self.entries = entries
        self.load_errors = load_errors
        self._by_name = {e.name: e for e in entries}

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> Entry:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownImplementation(name, self.names()) from None

    def available(self) -> list[Entry]:
        return [e for e in self.entries if e.available]


def discover(
    extra_dirs: Sequence[os.PathLike | str] = (),
    *,
    builtin: bool = True,
    entry_points: bool = True,
    check: bool = True,
    site_dirs: Sequence[os.PathLike | str] = (),
) -> Registry:
    """Find every implementation spec.

    ``check`` imports each spec's optional packages to decide availability
    (a second or two when pykan is installed); ``kanbench list`` and runs do.
    ``site_dirs``: folders of installed packages (an A/B side's build of a user's package); they go
    first on ``sys.path`` and the entry points come from their distributions only.
    """
    sources: list[tuple[str, object]] = []
    if builtin:
        sources.extend(_builtin_modules())
    for directory in extra_dirs:
        sources.extend(_directory_modules(Path(directory)))
    if site_dirs:
        use_site_dirs(site_dirs)
        sources.extend(_entry_point_modules([str(d) for d in site_dirs]))
    elif entry_points:
        sources.extend(_entry_point_modules())

    entries: list[Entry] = []
    load_errors: list[Entry] = []
    by_name: dict[str, Entry] = {}
    seen: set[int] = set()
    for origin, obj in sources:
        if isinstance(obj, BaseException):
            load_errors.append(Entry(name=origin, origin=origin, available=False, reason=f"failed to load: {_one_line(obj)}"))
            continue
        try:
            specs = _specs_from_object(obj)
        except Exception as exc:
            load_errors.append(Entry(name=origin, origin=origin, available=False, reason=f"failed to load: {_one_line(exc)}"))
            continue
        for spec in specs:
            if id(spec) in seen:  # the same spec re-exported by another module
                continue
            seen.add(id(spec))
            entry = Entry(name=spec.name, origin=origin, spec=spec)
            if spec.name in by_name:
                first = by_name[spec.name]
                load_errors.append(
                    Entry(
                        name=spec.name,
                        origin=origin,
                        spec=spec,
                        available=False,
                        reason=f"duplicate name: already defined in {first.origin}; this one is ignored",
                    )
                )
                continue
            by_name[spec.name] = entry
            entries.append(entry)
    if check:
        for entry in entries:
            reason = check_requirements(entry.spec)
            if reason:
                entry.available = False
                entry.reason = reason
    return Registry(entries, load_errors)
