"""``kanbench publish RESULTS... --out DIR``: a self-contained static HTML site of results files.

Leaderboards (sortable, filterable), sample distributions, machines side by side, the
history per machine with regressions marked, sweeps and fits; plotly.js is written into
DIR, so the site needs no network and opens from the file system.
"""

from __future__ import annotations

import time
from pathlib import Path

from kanbench.commands.common import EXIT_OK, EXIT_USAGE, err

NAME = "publish"
HELP = "write a static HTML site (leaderboards, distributions, machines, history, sweeps, fits)"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", metavar="RESULTS", help="results files (JSON)")
    p.add_argument("--out", required=True, metavar="DIR", help="the site's directory")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory that is not a kanbench site")
    p.set_defaults(func=run)


def run(args) -> int:
    from kanbench.site import PublishError, publish

    if not args.files:
        err("publish: no results files given (e.g. kanbench publish results/*.json --out site)")
        return EXIT_USAGE
    started = time.monotonic()
    try:
        summary = publish(args.files, Path(args.out), force=args.force)
    except PublishError as exc:
        err(str(exc))
        return EXIT_USAGE
    for name, reason in summary["skipped"]:
        err(f"skipped {name}: {reason}")
    err(
        f"published {len(summary['pages'])} pages ({summary['bytes'] / 2**20:.1f} MB) in {time.monotonic() - started:.1f} s: "
        f"{Path(args.out) / 'index.html'}"
    )
    return EXIT_OK
