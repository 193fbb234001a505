"""The ``kanbench`` command (also ``python -m kanbench``): a thin dispatcher.

Each subcommand is a module of :mod:`kanbench.commands` with ``NAME``,
``setup_arguments(subparsers)`` and ``run(args) -> exit status``; shared options and the
implementation-selection policy are in :mod:`kanbench.commands.common`, a command's entry
point from its argv (what a Slurm job runs) in :mod:`kanbench.commands.entry`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from kanbench.commands import (
    ab,
    accuracy,
    collect,
    compare,
    export,
    fit,
    install,
    leaderboard,
    publish,
    report,
    run,
    sweep,
)
from kanbench.commands import list as list_cmd
from kanbench.commands.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, resolve_devices  # noqa: F401
from kanbench.commands.entry import CommandEntry, invoke, prepare

COMMANDS = (list_cmd, install, run, leaderboard, sweep, accuracy, fit, collect, report, publish, compare, ab, export)
#: each command's own entry point (argv -> exit status), by name
ENTRIES = {module.NAME: CommandEntry(module.setup_arguments) for module in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    from kanbench.version import __version__

    parser = argparse.ArgumentParser(
        prog="kanbench",
        description="Benchmark Kolmogorov-Arnold Network implementations: forward/backward time, peak memory, parameters.",
    )
    parser.add_argument("--version", action="version", version=f"kanbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.setup_arguments(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    prepare(args, argv, ENTRIES[args.command])
    return invoke(args)
