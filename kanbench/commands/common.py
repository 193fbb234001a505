"""What the subcommands share: exit codes, the one-line error, common options and the
implementation-selection policy.

Every command that measures selects its implementations through
:func:`select_implementations`, so they all behave alike: an unknown name is one line
listing the known ones and exit 2 before anything is measured; an unavailable one is
skipped with its reason and install line.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

from kanbench.records import Skipped

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: a valid request with nothing to do (``kanbench ab``: no implementation on both sides)
EXIT_NOTHING = 3
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """Bad input: the command prints the message as one line and exits 2."""


def err(message: str) -> None:
    print(f"kanbench: {message}", file=sys.stderr, flush=True)


def split_impls(values: Optional[Sequence[str]]) -> Optional[list[str]]:
    """``--impl a,b --impl c`` -> [a, b, c] (order kept, duplicates dropped); None when not given."""
    if not values:
        return None
    names: list[str] = []
    for v in values:
        names.extend(n.strip() for n in v.split(",") if n.strip())
    return list(dict.fromkeys(names))


def device_choice(text: str) -> str:
    """argparse type of ``--device``: cpu, cuda, cuda:N or all."""
    text = text.strip().lower()
    if text in ("cpu", "cuda", "all") or re.fullmatch(r"cuda:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"invalid device {text!r}: use cpu, cuda, cuda:N or all")


def resolve_devices(choice: str) -> tuple[list[str], Optional[str]]:
    """(devices to run, a note) for --device cpu|cuda|cuda:N|all."""
    import torch

    if choice == "cpu":
        return ["cpu"], None
    if choice.startswith("cuda"):
        return [choice], None
    if torch.cuda.is_available():
        return ["cpu", "cuda"], None
    return ["cpu"], "no CUDA device here: measuring the CPU only"


def add_discovery(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--implementations",
        metavar="DIR",
        action="append",
        default=[],
        help="also load implementation specs from DIR (every .py file and package in it); repeatable",
    )


def add_selection(p: argparse.ArgumentParser, device_default: str = "all", impl_default: str = "every available one") -> None:
    """``--impl``, ``--device`` and ``--threads``: what every measuring command asks first."""
    p.add_argument("--impl", action="append", metavar="A,B", help=f"implementations (default: {impl_default})")
    p.add_argument(
        "--device",
        type=device_choice,
        default=device_default,
        help=f"cpu, cuda, cuda:N or all (cpu, plus cuda when present); default {device_default}",
    )
    p.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads (default: torch's own choice, recorded)")


def add_output(p: argparse.ArgumentParser, no_save: bool = True) -> None:
    p.add_argument("--out", metavar="FILE", help="results file to write (must not exist; default: a new file in --results-dir)")
    p.add_argument(
        "--results-dir", default="results", metavar="DIR", help="where default-named results files go (default: results/)"
    )
    if no_save:
        p.add_argument("--no-save", action="store_true", help="do not write a results file")


def extra_dirs(args) -> list[str]:
    """The ``--implementations`` directories, resolved; a missing one is a usage error."""
    out = []
    for d in args.implementations:
        path = Path(d)
        if not path.is_dir():
            raise UsageError(f"--implementations {d}: no such directory")
        out.append(str(path.resolve()))
    return out


def discover_for(args, check: bool = True):
    """The registry for a command's ``--implementations``; load errors are reported, one line each."""
    from kanbench.discovery import discover

    registry = discover(extra_dirs(args), check=check)
    for e in registry.load_errors:
        err(f"{e.name}: {e.reason}")
    return registry


def select_implementations(registry, requested: Optional[list[str]], default: Optional[Sequence[str]] = None):
    """The implementations to measure and those skipped: ``(names, [Skipped])``.

    ``requested`` None means ``default`` (names kept only when discovered), or every
    discovered implementation. Unknown requested names raise :class:`UsageError`;
    unavailable ones are skipped with their reason (printed here, one line each)."""
    known = registry.names()
    if requested is not None:
        unknown = [n for n in requested if n not in known]
        if unknown:
            raise UsageError(f"unknown implementation(s) {', '.join(unknown)}; known: {', '.join(known) or '(none)'}")
        candidates = requested
    elif default is not None:
        candidates = [n for n in default if n in known]
    else:
        candidates = known
    names, skipped = [], []
    for name in candidates:
        entry = registry.get(name)
        if entry.available:
            names.append(name)
        else:
            skipped.append(Skipped(name, entry.reason or "unavailable"))
            err(f"skipping {name}: {entry.reason}")
    return names, skipped
