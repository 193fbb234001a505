"""``--executor local|slurm`` for run, sweep, leaderboard and fit (see :mod:`kanbench.cluster`, :mod:`kanbench.cluster_jobs`).

Not a command: the options every measuring command takes, and what they do when the
executor is ``slurm``: check, submit, wait with a progress line (or return with
``--no-wait``), collect and print the tables.
"""

from __future__ import annotations

from kanbench.commands.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, err, split_impls


def add_executor_arguments(p) -> None:
    g = p.add_argument_group("cluster (--executor slurm, through submitit)")
    g.add_argument("--executor", choices=["local", "slurm"], default="local", help="where to measure (default local)")
    g.add_argument("--partition", action="append", metavar="NAME[,NAME]", help="Slurm partition(s): one results file each")
    g.add_argument(
        "--slurm-folder",
        default="kanbench-jobs",
        metavar="DIR",
        help="job folder, on a shared filesystem (default ./kanbench-jobs)",
    )
    g.add_argument("--slurm-array-parallelism", type=int, default=16, metavar="N", help="array jobs running at once (default 16)")
    g.add_argument(
        "--slurm-shards",
        type=int,
        default=1,
        metavar="N",
        help="sweep and accuracy: split the points (units) over N array jobs per partition",
    )
    g.add_argument("--gpus-per-job", type=int, default=0, metavar="N", help="GPUs per job (default 0)")
    g.add_argument("--cpus-per-job", type=int, metavar="N", help="CPUs per job (also the default --threads)")
    g.add_argument("--slurm-time", type=int, default=60, metavar="MIN", help="time limit per job in minutes (default 60)")
    g.add_argument("--slurm-account", metavar="NAME")
    g.add_argument("--slurm-qos", metavar="NAME")
    g.add_argument("--slurm-constraint", metavar="EXPR")
    g.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE", help="any other sbatch option, repeatable")
    g.add_argument("--no-wait", action="store_true", help="submit, print the job ids and `kanbench collect DIR`, return")
    g.add_argument(
        "--cancel-on-interrupt", action="store_true", help="Ctrl-C while waiting cancels the jobs (default: they keep running)"
    )


def options_from(args):
    from kanbench.cluster import SlurmOptions, parse_option, parse_partitions

    return SlurmOptions(
        partitions=parse_partitions(args.partition),
        folder=args.slurm_folder,
        array_parallelism=args.slurm_array_parallelism,
        gpus_per_job=args.gpus_per_job,
        cpus_per_job=args.cpus_per_job,
        time_min=args.slurm_time,
        account=args.slurm_account,
        qos=args.slurm_qos,
        constraint=args.slurm_constraint,
        options=dict(parse_option(o) for o in args.slurm_option),
        shards=args.slurm_shards,
        wait=not args.no_wait,
        cancel_on_interrupt=args.cancel_on_interrupt,
    )


def submit_from(args, command: str) -> int:
    """``kanbench COMMAND ... --executor slurm``: check, submit, then wait and collect (or not)."""
    from kanbench import cluster

    try:
        options = options_from(args)
        cluster.check(options, getattr(args, "threads", None), getattr(args, "in_process", False))
    except cluster.ClusterError as exc:
        err(str(exc))
        return EXIT_USAGE
    argv = list(getattr(args, "_argv", []) or [])
    entry = getattr(args, "_entry", None)  # the command's own entry point (kanbench.commands.entry), set by the dispatcher
    if entry is None:
        err(f"--executor slurm: {command} was not started through its entry point (kanbench {command} ...)")
        return EXIT_USAGE
    if options.cpus_per_job and not getattr(args, "threads", None) and "--threads" not in argv:
        argv += ["--threads", str(options.cpus_per_job)]
    impls = split_impls(getattr(args, "impl", None)) or []
    if not impls and command not in ("fit", "accuracy"):
        from kanbench.commands.common import discover_for, select_implementations

        try:
            impls, _ = select_implementations(discover_for(args), None)
        except ValueError:
            impls = []
    import os

    from kanbench import runner

    os.environ.setdefault(runner.COMMAND_ENV, runner.command_line())  # the jobs record the user's command
    try:
        sub = cluster.submit(command, argv, options, getattr(args, "results_dir", "results"), impls, entry=entry)
    except Exception as exc:  # sbatch refused: say what it said
        err(f"submission failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
        return EXIT_FAILED
    ids = ", ".join(f"{j.job_id} ({j.partition})" for j in sub.jobs)
    err(f"submitted {len(sub.jobs)} job(s): {ids}; job folder {sub.folder}")
    if not options.wait:
        err(f"collect the results with: kanbench collect {sub.folder}")
        return EXIT_OK
    return wait_and_collect(sub, options.cancel_on_interrupt)


def wait_and_collect(sub, cancel_on_interrupt: bool = False, results_dir=None) -> int:
    from kanbench import cluster_jobs

    try:
        cluster_jobs.wait(sub, lambda line: err(line))
    except KeyboardInterrupt:
        if cancel_on_interrupt:
            cluster_jobs.cancel(sub)
            err(
                f"interrupted: cancelled {len(sub.jobs)} job(s); what finished can still be collected: kanbench collect {sub.folder}"
            )
        else:
            err(f"interrupted: the jobs keep running; collect them later with: kanbench collect {sub.folder}")
        return EXIT_INTERRUPTED
    return print_collected(sub, results_dir)


def print_collected(sub, results_dir=None) -> int:
    from kanbench import cluster_jobs, cross_hardware, leaderboard
    from kanbench.render import render_document

    written = cluster_jobs.collect(sub, results_dir)
    docs = []
    for partition, (path, doc) in written.items():
        print(f"## partition {partition} ({path})\n")
        if sub.command == "leaderboard":
            print(leaderboard.render(doc))
        elif doc.mode == "accuracy" or sub.command in ("accuracy", "fit"):
            from kanbench.accuracy.render import report

            print(report([r for r in doc.results if hasattr(r, "task_family")]))
        else:
            print(render_document(doc, "seed"))
        print()
        err(f"{partition}: results written to {path}")
        if doc.machine:
            docs.append(doc)
    if len(docs) > 1 and sub.command in ("run", "leaderboard"):
        try:
            print(cross_hardware.machine_table(docs))
        except cross_hardware.CrossHardwareError as exc:
            err(f"no cross-hardware table: {exc}")
    failed = [
        r
        for _, doc in written.values()
        for r in doc.results
        if getattr(r, "error_kind", "") and str(r.error_kind).startswith("job-")
    ]
    return EXIT_FAILED if failed and len(failed) == sum(len(d.results) for _, d in written.values()) else EXIT_OK
