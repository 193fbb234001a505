"""``kanbench report``: tables (and sweep/fit figures) from saved results files."""

from __future__ import annotations

from pathlib import Path

from kanbench.commands.common import EXIT_OK, EXIT_USAGE, err

NAME = "report"
HELP = "render tables from saved results files"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=["seed", "full"], default="seed", help="seed (default) or full")
    p.add_argument(
        "--by",
        choices=["file", "machine", "history"],
        default="file",
        help="file: a table per file (default); machine: machines side by side; history: one machine over time",
    )
    p.add_argument("--strict", action="store_true", help="with --by machine: refuse files of different workloads")
    p.add_argument("--plots", metavar="DIR", help="for sweep or fit files: write the figures (and sweep.md) to DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from kanbench import cross_hardware
    from kanbench import results as results_mod
    from kanbench.render import render_documents

    try:
        docs = results_mod.load_many(args.files)
        modes = {d.mode for d in docs}
        if modes - {"run"}:
            if len(modes) > 1:
                err("these files mix modes (" + ", ".join(sorted(modes)) + "); report sweeps, fits and runs separately")
                return EXIT_USAGE
            return _report_mode(modes.pop(), docs, args)
        if args.by == "machine":
            print(cross_hardware.machine_table(docs, strict=args.strict))
        elif args.by == "history":
            print(cross_hardware.history_table(docs))
        else:
            print(render_documents(docs, args.format))
    except (results_mod.ResultsError, cross_hardware.CrossHardwareError) as exc:
        err(str(exc))
        return EXIT_USAGE
    return EXIT_OK


def _report_mode(mode: str, docs, args) -> int:
    if mode == "accuracy":
        from kanbench.accuracy import plots, render

        records = [r for d in docs for r in d.results if hasattr(r, "task_family")]
        print(render.report(records))
        if args.plots:
            for x in ("step_ms", "params"):
                fig = plots.pareto_figure(records, Path(args.plots) / f"pareto_{x}.png", x)
                if fig:
                    err(f"figure written to {fig}")
        return EXIT_OK
    if mode == "sweep":
        from kanbench.plots import sweep_report

        print(sweep_report(docs, Path(args.plots) if args.plots else None))
        if args.plots:
            err(f"figures and sweep.md written to {args.plots}")
        return EXIT_OK
    if mode == "leaderboard":
        from kanbench import leaderboard

        for doc in docs:
            print(leaderboard.render(doc, accuracy=_accuracy_column(doc)) + "\n")
        return EXIT_OK
    from kanbench.plots import fit_figure
    from kanbench.render import fit_table

    records = [r for d in docs for r in d.results]
    print(fit_table(records))
    if args.plots:
        fig = fit_figure(records, Path(args.plots) / "fit_curves.png")
        err(f"loss curves written to {fig}")
    return EXIT_OK


def _accuracy_column(doc):
    """A leaderboard file's accuracy column, from the accuracy results it recorded (``accuracy_source``:
    as recorded, else the file of that name beside the leaderboard file); None without one."""
    from kanbench import leaderboard
    from kanbench import results as results_mod

    source = doc.config.get("accuracy_source")
    if not source:
        return None
    for candidate in (Path(source), Path(doc.path or ".").parent / Path(source).name):
        if candidate.is_file():
            try:
                return leaderboard.accuracy_column(results_mod.load(candidate))
            except (results_mod.ResultsError, OSError) as exc:
                err(f"no accuracy column: {exc}")
                return None
    return None
