"""``kanbench fit``: the accuracy suite on the KAN paper's toy functions (``kanbench accuracy --task ...``).

One command trains and scores implementations: :mod:`kanbench.commands.accuracy`. ``fit`` is
that command with the four toy functions of the KAN paper's section 3.1 as its default tasks
(every option of ``kanbench accuracy`` applies, ``--task`` included).
"""

from __future__ import annotations

from kanbench.commands import accuracy

NAME = "fit"
TOY_TASKS = "bessel,exp-sin,xy,exp4d"
HELP = f"kanbench accuracy on the KAN paper's toy functions ({TOY_TASKS})"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    accuracy.add_arguments(p, task_default=TOY_TASKS)
