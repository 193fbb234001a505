"""The public KAN implementations kanbench knows how to fetch, each pinned to a tested revision.

Two kinds:

- ``checkout``: a git repository checked out at ``rev`` into kanbench's source cache
  (``$KANBENCH_HOME/sources/<name>``, default ``~/.cache/kanbench``); the adapter imports the
  package or file from there (:func:`implementations._adapter_util.import_from_checkout`).
  Every git source is of this kind, also the two that are pip-installable, because
  installing them breaks other things: fast-kan's setup.py installs its own copy of an
  ``efficient_kan`` package over efficient-kan's, faster-kan's pyproject calls itself
  "efficient-kan", and efficient-kan declares torchvision, whose resolution replaces a
  CPU build of torch with a CUDA one.
- ``pypi``: a PyPI release, ``pip install``-ed with torch pinned to the installed version
  (a constraints file), ``--no-deps`` where a declared dependency is unused by the layers and
  would pull torchvision (ikan declares timm for one class).

``kanbench install NAME|all`` fetches them (:mod:`kanbench.install`); ``kanbench list``
shows what is installed at which revision (:func:`installed`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Source:
    """Where one public implementation comes from, at which revision, under which licence."""

    name: str  #: the name ``kanbench install`` takes
    repo: str  #: ``owner/name`` on GitHub (for PyPI sources: the project's repository)
    licence: str  #: as found in the repository at ``rev`` (file and metadata)
    kind: str = "checkout"  #: ``checkout`` or ``pypi``
    rev: str = ""  #: the full commit tested (checkout sources)
    date: str = ""  #: that commit's date
    pypi: str = ""  #: ``name==version`` (pypi sources)
    deps: tuple = ()  #: extra pip requirements the adapters need (installed with torch pinned)
    no_deps: bool = False  #: install the PyPI release without its declared dependencies
    implementations: tuple = ()  #: kanbench rows it enables
    note: str = ""

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}.git"

    @property
    def pinned(self) -> str:
        """What is pinned, for humans: ``owner/name@abc1234 (2024-05-14)`` or ``ikan==1.3.0``."""
        if self.kind == "pypi":
            return self.pypi
        return f"{self.repo}@{self.rev[:7]} ({self.date})"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "effkan",
            "Blealtan/efficient-kan",
            "MIT",
            rev="7b6ce1c87f18c8bc90c208f6b494042344216b11",
            date="2024-07-03",
            implementations=("effkan",),
        ),
        Source(
            "fastkan",
            "ZiyaoLi/fast-kan",
            "Apache-2.0",
            rev="17b65401c252334fffb5e63c9852dd8316d29e69",
            date="2024-06-20",
            implementations=("fastkan",),
        ),
        Source(
            "chebykan",
            "SynodicMonth/ChebyKAN",
            "none stated",
            rev="5f7efdd18e749bcc99481bd87dc90bdeafb920d8",
            date="2024-05-14",
            implementations=("chebykan",),
        ),
        Source(
            "fasterkan",
            "AthanasiosDelis/faster-kan",
            "Apache-2.0 (LICENSE.txt; its pyproject says MIT)",
            rev="3bcabc25c1ed5bceb04d58a8c73756a9fe54e81b",
            date="2024-05-25",
            implementations=("fasterkan",),
        ),
        Source(
            "fourierkan",
            "GistNoesis/FourierKAN",
            "MIT",
            rev="ef8079129dd08ce8fbe322b758ca29c8420819e4",
            date="2024-05-24",
            implementations=("fourierkan",),
        ),
        Source(
            "wavkan",
            "zavareh1/Wav-KAN",
            "MIT",
            rev="f7ab5215e69b1a32e9e289159d2fd55d078fa051",
            date="2025-06-09",
            deps=("tqdm",),
            implementations=("wavkan",),
            note="KAN.py imports torchvision and tqdm at the top (unused by the layers): torchvision must "
            "import, built for the installed torch (pip install torchvision with the matching version)",
        ),
        Source(
            "sinekan",
            "ereinha/SineKAN",
            "none stated",
            rev="64aaf8e2f3153a336475bea226673347fa9f4cbb",
            date="2024-12-19",
            implementations=("sinekan",),
        ),
        Source(
            "relukan",
            "quiqi/relu_kan",
            "none stated",
            rev="79eab7a27392eb5f33e119710f0e75ec902764c0",
            date="2024-06-05",
            implementations=("relukan",),
        ),
        Source(
            "katrational",
            "Adamdad/rational_kat_cu",
            "none stated (the kat repository is MIT)",
            rev="181bae8baf19075bef94b5f62dac320b3d4b27d3",
            date="2025-02-03",
            implementations=("grkan",),
        ),
        Source(
            "convkan",
            "IvanDrokin/torch-conv-kan",
            "MIT",
            rev="7a0e83c3b55981e530dc83ad44ecc4d24beb5d20",
            date="2024-11-19",
            deps=("einops", "pillow", "matplotlib"),
            implementations=("kagn",),
        ),
        Source(
            "ikan",
            "lgy112112/Efficient-KAN-in-Chinese",
            "MIT",
            kind="pypi",
            pypi="ikan==1.3.0",
            deps=("torchinfo",),
            no_deps=True,
            implementations=("ikan-jacobi", "ikan-taylor", "ikan-fourier", "ikan-wavelet"),
            note="installed --no-deps: it declares timm (for GroupKAN only), which needs torchvision",
        ),
        Source(
            "rkan",
            "alirezaafzalaghaei/rKAN",
            "BSD-3-Clause",
            kind="pypi",
            pypi="rkan==0.0.3",
            implementations=("rkan",),
        ),
        Source(
            "flashkan",
            "naveenmysore/flashkan",
            "MIT",
            kind="pypi",
            pypi="flashkan==0.2.0",
            implementations=("flashkan",),
        ),
        Source(
            "torch-wavelet-kan",
            "(placeholder URL in its metadata)",
            "MIT",
            kind="pypi",
            pypi="torch-wavelet-kan==0.0.2",
            implementations=("morlet-kan",),
        ),
    )
}


def home() -> Path:
    """kanbench's cache: ``$KANBENCH_HOME`` or ``~/.cache/kanbench``."""
    env = os.environ.get("KANBENCH_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kanbench"


def checkout_dir(name: str) -> Path:
    return home() / "sources" / name


def _record_path(name: str) -> Path:
    return home() / "sources" / f"{name}.json"


@dataclass
class Installed:
    """What ``kanbench install`` left for one source (written next to its checkout)."""

    name: str
    kind: str
    revision: str  #: the commit checked out, or the installed version
    origin: str  #: where it was fetched from (URL, local path, or PyPI)
    path: Optional[str] = None  #: the checkout
    licence: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def write_record(rec: Installed) -> None:
    from kanbench.results import write_atomic

    path = _record_path(rec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, rec.to_dict())


def installed(name: str) -> Optional[Installed]:
    """The install record of ``name`` when its checkout (or package) is present, else None."""
    source = SOURCES.get(name)
    if source is not None and source.kind == "pypi":
        import importlib.metadata

        dist = source.pypi.split("==")[0]
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None
        return Installed(name, "pypi", version, "PyPI", licence=source.licence)
    path = _record_path(name)
    try:
        data = json.loads(path.read_text())
        rec = Installed(**data)
    except (OSError, ValueError, TypeError):
        return None
    if not rec.path or not Path(rec.path).is_dir():
        # the cache was moved or copied ($KANBENCH_HOME elsewhere, another machine): its checkout
        # lies beside the record
        if rec.kind != "checkout" or not checkout_dir(name).is_dir():
            return None
        rec.path = str(checkout_dir(name))
    return rec


def checkout_missing(name: str) -> Optional[str]:
    """None when ``name``'s checkout is present, else the line a skipped row shows."""
    if installed(name) is None:
        return f"not installed (run: kanbench install {name})"
    return None
