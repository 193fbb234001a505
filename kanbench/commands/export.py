"""``kanbench export``: a results file in a CI dashboard's format."""

from __future__ import annotations

import json
from pathlib import Path

from kanbench.commands.common import EXIT_OK, EXIT_USAGE, err

NAME = "export"
HELP = "export a results file for CI dashboards"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP)
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--format",
        choices=["github-action-benchmark"],
        default="github-action-benchmark",
        help="customSmallerIsBetter JSON for github-action-benchmark (default)",
    )
    p.add_argument("--out", metavar="FILE")
    p.set_defaults(func=run)


def run(args) -> int:
    from kanbench import export
    from kanbench import results as results_mod

    try:
        doc = results_mod.load(args.file)
    except results_mod.ResultsError as exc:
        err(str(exc))
        return EXIT_USAGE
    text = json.dumps(export.github_action_benchmark(doc), indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return EXIT_OK
