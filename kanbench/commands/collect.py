"""``kanbench collect DIR``: gather the results of jobs submitted with ``--executor slurm``.

Reads the submission manifest in the job folder, waits for the jobs still queued or
running, and writes one results file per partition, exactly as a waiting submission
would have; failed jobs become rows carrying their state and log tail.
"""

from __future__ import annotations

from pathlib import Path

from kanbench.commands.common import EXIT_USAGE, err

NAME = "collect"
HELP = "gather the results of Slurm jobs submitted with --executor slurm --no-wait"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP, description=HELP)
    p.add_argument("folder", metavar="DIR", help="the job folder (--slurm-folder) of the submission")
    p.add_argument("--results-dir", help="where to write the results files (default: the submission's)")
    p.add_argument("--cancel-on-interrupt", action="store_true", help="Ctrl-C while waiting cancels the jobs")
    p.set_defaults(func=run)


def run(args) -> int:
    from kanbench import cluster
    from kanbench.commands.executor import wait_and_collect

    try:
        sub = cluster.Submission.load(Path(args.folder))
    except cluster.ClusterError as exc:
        err(str(exc))
        return EXIT_USAGE
    return wait_and_collect(sub, args.cancel_on_interrupt, args.results_dir)
