"""A command's entry point from its argv: what ``kanbench`` dispatches to and what a Slurm job runs.

:class:`CommandEntry` wraps one command's ``setup_arguments``: called with an argv (the
command's name first, as typed after ``kanbench``) it parses it with that command's parser
alone and runs the command through :func:`invoke`. The dispatcher (:mod:`kanbench.cli`)
hands it to the command as ``args._entry``, so ``--executor slurm`` can give each job the
command's own entry point (:mod:`kanbench.cluster`), never the dispatcher's ``main``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from kanbench.commands.common import EXIT_INTERRUPTED, EXIT_OK, err


def invoke(args) -> int:
    """Run a parsed command: its exit status; Ctrl-C is one line and 130, a closed stdout (``| head``) is success."""
    try:
        return args.func(args)
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK


@dataclass(frozen=True)
class CommandEntry:
    """One command's entry point: ``entry(argv) -> exit status`` (picklable: it holds a module-level function)."""

    setup_arguments: Callable

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="kanbench")
        self.setup_arguments(parser.add_subparsers(dest="command", metavar="COMMAND"))
        return parser

    def __call__(self, argv: Sequence[str]) -> int:
        argv = list(argv)
        args = self.parser().parse_args(argv)
        prepare(args, argv, self)
        return invoke(args)


def prepare(args, argv: Sequence[str], entry: CommandEntry) -> None:
    """What a command reads besides its options: the command line as typed and its own entry
    point (``--executor slurm`` resubmits the one through the other on the nodes)."""
    args._argv = list(argv)
    args._entry = entry
