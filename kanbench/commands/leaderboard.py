"""``kanbench leaderboard``: every available implementation, param-matched, on each device.

The rows are measured like ``kanbench run`` (interleaved, sanity gate first) after
``--match params`` (default) chose each implementation's hidden widths; the accuracy column
comes from the accuracy suite's results (``kanbench accuracy``, ``--accuracy FILE``): each
implementation's mean rank over its tasks and its win rate against the MLP. Prints the markdown leaderboard
(:mod:`kanbench.leaderboard`), writes the results file (mode ``leaderboard``) and, with
``--markdown PATH``, the table for a README.
"""

from __future__ import annotations

import time
from pathlib import Path

from kanbench.commands import run as run_cmd
from kanbench.commands.common import EXIT_INTERRUPTED, EXIT_USAGE, err

NAME = "leaderboard"
HELP = "every available implementation, param-matched, sorted by forward+backward time"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    run_cmd.add_run_arguments(p)
    p.add_argument(
        "--accuracy",
        default="auto",
        metavar="FILE|auto|none",
        help="the accuracy-suite results (kanbench accuracy) whose mean rank and win rate against the MLP fill the "
        "accuracy column (default auto: the newest *accuracy*.json in --results-dir)",
    )
    p.add_argument(
        "--workloads",
        metavar="A,B",
        help="one board per workload preset, then a summary across them ('users': the users' workloads, "
        "seed,science,science-deep,mnist,ffn,large); overrides --preset",
    )
    p.add_argument("--markdown", metavar="PATH", help="also write the leaderboard's markdown to PATH")
    p.set_defaults(func=run, match="params", device="cpu")


def accuracy_file(choice: str, results_dir: str):
    """The accuracy results file the leaderboard's accuracy column reads: ``--accuracy FILE``, or for
    ``auto`` the newest default-tier run in the results directory (``*accuracy-default*.json``),
    else the newest ``*accuracy*.json`` (None: no column)."""
    if choice == "none":
        return None
    if choice != "auto":
        return Path(choice)
    for pattern in ("*accuracy-default*.json", "*accuracy*.json"):
        found = sorted(Path(results_dir).glob(pattern), key=lambda p: p.name)
        if found:
            return found[-1]
    return None


def parse_workloads(text: str) -> list:
    """The preset names of ``--workloads`` ('users' expands); raises UsageError listing the known ones."""
    from kanbench.commands.common import UsageError
    from kanbench.workload import PRESETS, USER_WORKLOADS

    names = []
    for name in (n.strip() for n in text.split(",")):
        if not name:
            continue
        if name == "users":
            names.extend(USER_WORKLOADS)
        elif name in PRESETS:
            names.append(name)
        else:
            raise UsageError(f"unknown workload {name!r}; known: users, {', '.join(PRESETS)}")
    if not names:
        raise UsageError("--workloads is empty")
    return list(dict.fromkeys(names))


def run(args) -> int:
    from kanbench import leaderboard
    from kanbench import results as results_mod

    if args.executor == "slurm":
        from kanbench.commands.executor import submit_from

        return submit_from(args, NAME)
    started = time.monotonic()
    if args.workloads:
        from kanbench.commands.common import UsageError

        try:
            presets = parse_workloads(args.workloads)
        except UsageError as exc:
            err(str(exc))
            return EXIT_USAGE
    else:
        presets = [args.preset]
    source = accuracy_file(args.accuracy, args.results_dir)
    accuracy = None
    if source is not None:
        try:
            accuracy = leaderboard.accuracy_column(results_mod.load(source))
            err(f"accuracy column from {source}")
        except (results_mod.ResultsError, OSError) as exc:
            err(f"no accuracy column: {exc}")
    texts, docs, status = [], [], 0
    for preset in presets:
        args.preset = preset
        if len(presets) > 1:
            err(f"workload {preset} ({presets.index(preset) + 1} of {len(presets)})")
        status, document, path = run_cmd.measure(args, mode="leaderboard")
        if document is None:
            return status
        if source is not None and accuracy is not None:
            document.config["accuracy_source"] = str(source)
            if path is not None:
                results_mod.write_atomic(path, document)
        docs.append(document)
        texts.append(leaderboard.render(document, accuracy=accuracy))
        if status == EXIT_INTERRUPTED:
            break
    text = "\n\n".join(texts) + "\n\n" + extras(docs, args)
    print(text)
    if args.markdown:
        try:
            Path(args.markdown).write_text(text + "\n")
        except OSError as exc:
            err(f"cannot write {args.markdown}: {exc}")
            return EXIT_USAGE
    err(f"leaderboard took {time.monotonic() - started:.0f} s")
    return status


def extras(docs, args) -> str:
    """Under the boards: the summary across workloads (several), and the published claims checked."""
    from kanbench import claims, multiboard

    parts = []
    if len(docs) > 1:
        placed = multiboard.boards(docs)
        parts += ["### Across workloads: rank band (f+b / MLP)", "", multiboard.summary(placed), ""]
        if args.markdown:
            fig = multiboard.figure(placed, Path(args.markdown).with_suffix("") / "workloads.png")
            if fig:
                parts += [f"![every workload's board]({Path(fig).parent.name}/{Path(fig).name})", ""]
    verdicts, unmeasurable = [], set()
    for v in (v for doc in docs for v in claims.check(doc)):
        if v.status.startswith("not measurable"):  # once per claim, not once per workload
            if v.claim in unmeasurable:
                continue
            unmeasurable.add(v.claim)
        verdicts.append(v)
    if verdicts:
        parts += ["### Published claims, measured", "", claims.render(verdicts)]
    return "\n".join(parts)
