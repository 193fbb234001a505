"""``kanbench sweep``: one axis at a time (batch, width, grid, compile, dtype), with figures and a summary."""

from __future__ import annotations

from pathlib import Path

from kanbench.commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_discovery,
    add_selection,
    discover_for,
    err,
    resolve_devices,
    select_implementations,
    split_impls,
)
from kanbench.commands.executor import add_executor_arguments, submit_from

NAME = "sweep"
HELP = "vary batch, width, grid size, torch.compile and dtype; plots and a summary"


def setup_arguments(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="One axis at a time from the preset's workload: --batch sets the batch, --width W sets widths "
        "[W, W, out], --grid the grid size of implementations that take one, --compile off,on, --dtype. "
        "Every implementation is also measured at the base point. Writes one results file, figures next to it "
        "and a markdown summary (stdout and sweep.md).",
    )
    add_selection(p)
    p.add_argument("--preset", default=None, help="base workload (default seed)")
    p.add_argument("--shape", metavar="IN,HIDDEN,OUT", help="base widths (overrides the preset's)")
    p.add_argument("--base-batch", metavar="N", help="base batch size (overrides the preset's)")
    for axis, example in (
        ("batch", "16,32,64,128"),
        ("width", "16,64,256"),
        ("grid", "3,5,10,20"),
        ("compile", "off,on"),
        ("dtype", "float32,float64,bfloat16"),
    ):
        p.add_argument(f"--{axis}", metavar="LIST", help=f"values of the {axis} axis, e.g. {example}")
    p.add_argument("--shard", metavar="I/N", help="measure only every N-th point, from the I-th (0-based)")
    p.add_argument("--min-time", type=float, default=0.5, metavar="S", help="minimum measured seconds per point (default 0.5)")
    p.add_argument("--min-samples", type=int, default=10, metavar="N", help="minimum samples per point (default 10)")
    p.add_argument("--budget", type=float, default=60.0, metavar="S", help="per-point time budget in seconds (default 60)")
    p.add_argument("--out", metavar="FILE")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--plots", metavar="DIR", help="where figures go (default: a directory named after the results file)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--mode",
        choices=["interleaved", "sequential"],
        default="interleaved",
        help="interleaved (default): up to --max-live points take turns in short chunks, several processes each; "
        "sequential: one worker process per point",
    )
    p.add_argument("--rounds", type=int, default=6, help="interleaved: rounds per point (default 6)")
    p.add_argument("--processes", type=int, default=2, help="interleaved: worker processes per point (default 2)")
    p.add_argument("--max-live", type=int, default=8, help="interleaved: points measured side by side (default 8)")
    p.add_argument("--in-process", action="store_true", help="measure points one after another in this process")
    add_discovery(p)
    add_executor_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.executor == "slurm":
        return submit_from(args, NAME)
    from kanbench import results as results_mod
    from kanbench import runner, sweep
    from kanbench import workload as workload_mod
    from kanbench.machine import fingerprint
    from kanbench.plots import sweep_report
    from kanbench.timing import TimingConfig
    from kanbench.worker import measure_row_isolated

    try:
        shape = workload_mod.parse_shape(args.shape) if args.shape else None
        batch = workload_mod.parse_batch(args.base_batch) if args.base_batch is not None else None
        base = workload_mod.resolve(args.preset, shape, batch, None)
        axes = {a: sweep.parse_axis(a, getattr(args, a)) for a in sweep.AXES}
        shard = sweep.parse_shard(args.shard)
        timing = TimingConfig(min_time=args.min_time, min_samples=args.min_samples, max_samples=max(2000, args.min_samples))
        registry = discover_for(args)
        impls, skipped = select_implementations(registry, split_impls(args.impl))
        if not impls:
            raise ValueError("no implementation to sweep")
        devices, note = resolve_devices(args.device)
        points = sweep.plan(impls, devices, base, axes, lambda n: "grid_size" in registry.get(n).spec.options)
    except (ValueError, sweep.SweepError) as exc:
        err(str(exc))
        return EXIT_USAGE
    if note and args.device == "all":
        err(note)
    i, n = shard
    points = points[i::n]
    machine = fingerprint(args.threads)
    config = {
        "mode": "sweep",
        "workload": base.to_dict(),
        "axes": {k: v for k, v in axes.items() if v},
        "shard": f"{i}/{n}",
        "timing": timing.to_dict(),
        "threads": machine["torch"]["threads"],
        "devices": devices,
        "budget_s": args.budget,
        "command": runner.command_line(),
    }
    document = results_mod.new_document(machine, config)
    document.skipped = skipped
    try:
        path = results_mod.reserve_path(
            args.out, Path(args.results_dir), machine.get("hostname", "host"), "sweep" + (f"-shard{i}of{n}" if n > 1 else "")
        )
    except (results_mod.ResultsError, OSError) as exc:
        err(str(exc))
        return EXIT_USAGE
    extra = [str(Path(d).resolve()) for d in args.implementations]

    def measure(job):
        return runner.measure_row(job, registry) if args.in_process else measure_row_isolated(job)

    batch_size, measure_many = 1, None
    if args.mode == "interleaved" and not args.in_process:
        from kanbench.commands.run import interleave_config
        from kanbench.interleave import measure_batch

        weave = interleave_config(args)
        config["interleave"] = weave.to_dict()
        batch_size = weave.max_live

        def measure_many(jobs):
            return measure_batch(jobs, weave)

    err(f"sweep: {len(points)} point(s){' in shard ' + args.shard if n > 1 else ''}, base {base.key}")
    try:
        sweep.run(
            points,
            document,
            lambda d: results_mod.write_atomic(path, d),
            measure,
            timing,
            threads=args.threads,
            extra_dirs=extra,
            budget_s=args.budget,
            progress=sweep.progress_bar(),
            measure_many=measure_many,
            batch_size=batch_size,
        )
    except KeyboardInterrupt as exc:
        document.results.extend(getattr(exc, "records", []))  # an interleaved batch's partial rows
        document.interrupted = True
        results_mod.write_atomic(path, document)
        err(f"interrupted; {len(document.results)} point(s) kept in {path}")
        return EXIT_INTERRUPTED
    err(f"results written to {path}")
    plots = None
    if not args.no_plots and n == 1:
        plots = Path(args.plots) if args.plots else path.with_suffix("")
    print(sweep_report([document], plots))
    if plots:
        err(f"figures and sweep.md written to {plots}")
    elif n > 1:
        err("merge the shards with: kanbench report --plots DIR <shard files>")
    return EXIT_OK if any(not r.failed for r in document.results) else EXIT_FAILED
