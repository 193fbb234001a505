"""Helpers shared by the adapters for public KAN packages."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def default_dtype(dtype):
    """Build a package's model in ``dtype`` when it creates its tensors with the default dtype."""
    previous = torch.get_default_dtype()
    if dtype in (torch.float32, torch.float64):
        torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def import_from_checkout(source: str, target: str, package_root: bool = False):
    """Import ``target`` from the checkout ``kanbench install <source>`` made.

    ``target`` is a path inside the checkout: a ``.py`` file (loaded as a private module
    ``_kanbench_<source>_<stem>``, so generic names such as ``KAN.py`` cannot collide) or a
    package directory (loaded under its own name, which its absolute self-imports need).
    ``package_root`` puts the checkout on ``sys.path`` while importing, for repositories whose
    packages import top-level siblings (``from utils import ...``). The module is cached in
    ``sys.modules``; errors propagate (see :func:`checkout_reason`).
    """
    import importlib
    import importlib.util
    import sys
    from pathlib import Path

    from kanbench import sources

    rec = sources.installed(source)
    if rec is None or not rec.path:
        raise ImportError(f"not installed (run: kanbench install {source})")
    root = Path(rec.path)
    path = root / target
    if target.endswith(".py"):
        name = f"_kanbench_{source}_{path.stem}"
        init, search = path, None
    else:
        name = path.name
        init, search = path / "__init__.py", [str(path)]
    cached = sys.modules.get(name)
    if cached is not None and str(getattr(cached, "__file__", "")).startswith(str(root)):
        return cached
    if not init.exists():
        raise ImportError(f"{target} is not in the {source} checkout at {root}")
    if package_root:
        sys.path.insert(0, str(root))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(root))
    return load_module_file(name, init, search)


def load_module_file(name: str, path, search=None):
    """Execute the file ``path`` as module ``name`` (a package when ``search`` lists its directory)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=search)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def checkout_reason(source: str, target: str, package_root: bool = False):
    """None when :func:`import_from_checkout` works, else the one-line reason a row is skipped."""
    try:
        import_from_checkout(source, target, package_root)
    except ImportError as exc:
        if str(exc).startswith("not installed"):
            return str(exc)
        return f"{target} from the {source} checkout failed to import ({one_line(exc)})"
    except Exception as exc:
        return f"{target} from the {source} checkout failed to import ({one_line(exc)})"
    return None


def import_package_file(package: str, relative: str):
    """Import one file of an installed package without running the package's ``__init__``.

    For packages whose ``__init__`` imports undeclared or unrelated heavy dependencies
    (ikan's imports timm, which needs torchvision, for one class the adapters do not use).
    The file is loaded as ``_kanbench_<package>_<stem>``; ImportError when the package is absent.
    """
    import importlib.util
    import sys
    from pathlib import Path

    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ImportError(f"package {package!r} is not installed", name=package)
    path = Path(list(found.submodule_search_locations)[0]) / relative
    name = f"_kanbench_{package}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    return load_module_file(name, path)


def package_file_reason(package: str, relative: str, install: str):
    """None when :func:`import_package_file` works, else the reason a row is skipped."""
    try:
        import_package_file(package, relative)
    except ImportError as exc:
        if getattr(exc, "name", None) == package:
            return f"optional package '{package}' is not installed; install: {install}"
        return f"{package}/{relative} failed to import ({one_line(exc)}); install: {install}"
    except Exception as exc:
        return f"{package}/{relative} failed to import ({one_line(exc)}); install: {install}"
    return None


def checkout_or_installed(source: str, target: str, module: str):
    """The package ``module``: from kanbench's pinned checkout of ``source`` when there is one
    (at ``target`` inside it), else the installed package (ImportError when neither)."""
    import importlib

    from kanbench import sources

    if sources.installed(source) is not None:
        return import_from_checkout(source, target)
    return importlib.import_module(module)


def checkout_or_installed_reason(source: str, target: str, module: str):
    """None when :func:`checkout_or_installed` works, else the reason a row is skipped."""
    import importlib

    from kanbench import sources

    if sources.installed(source) is not None:
        return checkout_reason(source, target)
    try:
        importlib.import_module(module)
    except ImportError:
        return "not installed"
    except Exception as exc:
        return f"optional package '{module}' failed to import ({one_line(exc)})"
    return None
