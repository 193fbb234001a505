"""``kanbench install NAME|all``: fetch the pinned public KAN implementations.

Each is checked out at the revision kanbench was tested with (or pip-installed at the tested
release), with its licence shown; ``--from`` installs from a local clone, a mirror or another
URL instead of GitHub (with ``all``: a directory holding one clone per source, named after the
source or ``owner+name``, as repository mirrors often are).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from kanbench.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, err

NAME = "install"
HELP = "fetch the pinned public KAN implementations (kanbench install NAME|all)"


def setup_arguments(sub) -> None:
    from kanbench.sources import SOURCES

    p = sub.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="+", metavar="NAME", help=f"all, or some of: {', '.join(SOURCES)}")
    p.add_argument(
        "--from",
        dest="from_",
        metavar="PATH|URL",
        help="install from this clone, mirror or URL instead of the upstream (with 'all': a directory of clones)",
    )
    p.set_defaults(func=run)


def mirror_for(source, base: Path) -> Optional[str]:
    """The clone of ``source`` under ``base``: ``base/<name>``, ``base/<owner>+<repo>[/repo]``."""
    owner_repo = source.repo.replace("/", "+")
    for candidate in (base / source.name, base / owner_repo / "repo", base / owner_repo):
        if candidate.exists():
            return str(candidate)
    return None


def run(args) -> int:
    from kanbench.install import InstallError, install
    from kanbench.sources import SOURCES

    names = list(SOURCES) if "all" in args.names else list(dict.fromkeys(args.names))
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        err(f"unknown source {', '.join(unknown)}; known: {', '.join(SOURCES)}, all")
        return EXIT_USAGE
    several = "all" in args.names or len(names) > 1
    base = Path(args.from_) if args.from_ and several and Path(args.from_).is_dir() else None
    failures = 0
    for name in names:
        source = SOURCES[name]
        origin = args.from_
        if base is not None:
            origin = mirror_for(source, base) if source.kind == "checkout" else None
            if source.kind == "checkout" and origin is None:
                err(f"{name}: no clone of {source.repo} under {base}; skipped")
                failures += 1
                continue
        print(f"{name}: {source.pinned} -- licence: {source.licence}", flush=True)
        if source.note:
            print(f"  note: {source.note}")
        try:
            rec = install(name, origin)
        except InstallError as exc:
            err(f"{name}: {exc}")
            failures += 1
            continue
        where = f" in {rec.path}" if rec.path else ""
        print(f"  installed {rec.revision[:12]}{where}; rows: {', '.join(source.implementations)}")
    return EXIT_FAILED if failures else EXIT_OK
