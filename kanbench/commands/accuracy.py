"""``kanbench accuracy``: train every implementation at an equal parameter budget on the task suite."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kanbench.commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_discovery,
    discover_for,
    err,
    extra_dirs,
    select_implementations,
    split_impls,
)
from kanbench.commands.executor import add_executor_arguments, submit_from

NAME = "accuracy"
HELP = "train every implementation, parameter-matched, on the accuracy suite: how well and how fast each learns"


def setup_arguments(sub) -> None:
    from kanbench.accuracy import tasks

    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Every implementation is matched to our B-spline KAN's parameter count at each task's reference "
        "widths, trained full-batch with the same optimizer budget, its learning rate and checkpoint chosen on a "
        "validation split, and scored on a test split: test RMSE and NRMSE (regression), accuracy, macro-F1 and "
        "cross-entropy (classification), time per step, steps to a validation target. Tasks: "
        + ", ".join(f"{t.name} ({t.tier})" for t in tasks.catalogue().values())
        + ".",
    )
    add_arguments(p)


def add_arguments(p, task_default: str = None) -> None:
    """The options of ``kanbench accuracy`` (and of ``kanbench fit``, its toy-function form)."""
    from kanbench.accuracy import tasks

    p.add_argument("--impl", action="append", metavar="A,B", help="implementations (default: every available one)")
    p.add_argument(
        "--protocol",
        choices=("budget", "grid-extension"),
        default="budget",
        help="budget (default): every implementation at matched parameter budgets, tuned alike; grid-extension: the KAN "
        "paper's scaling law -- [2,1,1] and [2,5,1] KANs on exp(sin(pi x) + y^2), grid 3 -> 5 -> ... -> 1000 with LBFGS "
        "at each grid, for every implementation whose model can extend its grid",
    )
    p.add_argument("--grids", metavar="A,B", help="grid-extension: the grid schedule (default 3,5,10,20,50,100,200,500,1000)")
    p.add_argument(
        "--lm-steps",
        type=int,
        metavar="N",
        help="grid-extension: Levenberg-Marquardt iterations after LBFGS at each grid below the interpolation threshold "
        "(default 40; 0: LBFGS alone, the paper's protocol)",
    )
    p.add_argument("--tier", default="default", help=f"task tier: {', '.join(tasks.TIERS)} (default: default)")
    p.add_argument("--task", default=task_default, metavar="A,B", help="tasks by name instead of a tier")
    p.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="model seeds 0..N-1, each with its own data split (tier default: default 5, full 3)",
    )
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="tuning trials per row: random search over the row's own hyperparameters and the learning rate, "
        "the same N for every row (tier default: default 4, full 6)",
    )
    p.add_argument("--lr", metavar="A,B", help="a learning-rate grid instead of tuning trials (every seed x every rate)")
    p.add_argument("--budgets", metavar="A,B", help="parameter budgets as multiples of each task's reference (default tier: 1)")
    p.add_argument(
        "--params",
        metavar="A,B",
        help="absolute budgets instead: parameter counts (FLOPs per sample with --match flops), the same for every "
        "task (full tier: 100,316,1000,3162); a task whose smallest model is larger gets that model, flagged off budget",
    )
    p.add_argument(
        "--steps",
        type=int,
        help="most optimizer steps (Adam) or iterations (LBFGS) per run (tier default: default 800, full 1000)",
    )
    p.add_argument(
        "--patience",
        type=int,
        metavar="N",
        help="stop a run after N steps without a better validation metric (tier default: default 150, full 150; 0: never)",
    )
    p.add_argument(
        "--match",
        choices=["params", "flops"],
        default="params",
        help="what the budget counts: trainable parameters (default) or forward FLOPs per sample (kanbench.flops)",
    )
    p.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam", help="full-batch Adam (default) or LBFGS as pykan")
    p.add_argument("--eval-every", type=int, default=10, metavar="N", help="validation every N steps (default 10)")
    p.add_argument("--scaling", choices=["minmax", "standard"], default="minmax", help="input scaling fitted on training")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads (of each worker with --jobs)")
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="train N units at a time in worker processes of one thread each (default: one per CPU; 1: in this process)",
    )
    p.add_argument("--budget", type=float, default=120.0, metavar="S", help="time budget of one training run (default 120 s)")
    p.add_argument("--shard", metavar="I/N", help="train only every N-th unit, from the I-th (Slurm array jobs)")
    p.add_argument("--out", metavar="FILE", help="results file (must not exist; default: a new file in --results-dir)")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--markdown", metavar="FILE", help="also write the markdown report here")
    p.add_argument("--plots", metavar="DIR", help="Pareto figures here (default: next to the results file)")
    p.add_argument("--no-save", action="store_true", help="write no results file")
    add_discovery(p)
    add_executor_arguments(p)
    p.set_defaults(func=run)


def _floats(text, name):
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--{name} takes comma-separated numbers, not {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"--{name} needs positive numbers")
    return values


def config_from(args):
    """The typed request of one run: (tasks, SuiteConfig, shard). Raises UsageError/TaskError."""
    from kanbench.accuracy import suite, tasks
    from kanbench.accuracy.train import TrainConfig
    from kanbench.sweep import parse_shard

    selected = tasks.select(args.task, args.tier)
    tier = suite.TIER_DEFAULTS[args.tier]
    seeds = args.seeds if args.seeds is not None else tier["seeds"]
    if seeds < 1:
        raise UsageError("--seeds must be at least 1")
    lrs = _floats(args.lr, "lr") if args.lr else ((1.0,) if args.optimizer == "lbfgs" else tier["lrs"])
    trials = None if (args.lr or args.optimizer == "lbfgs") else (args.trials if args.trials is not None else tier["trials"])
    if trials is not None and trials < 1:
        raise UsageError("--trials must be at least 1")
    if args.budgets and getattr(args, "params", None):
        raise UsageError("--budgets and --params exclude each other")
    if getattr(args, "params", None):
        absolute, budgets = True, _floats(args.params, "params")
    elif args.budgets:
        absolute, budgets = False, _floats(args.budgets, "budgets")
    else:
        absolute, budgets = tier.get("absolute_budgets", False), tier["budgets"]
    steps = args.steps if args.steps is not None else tier["steps"]
    patience = args.patience if args.patience is not None else tier["patience"]
    try:
        train = TrainConfig(
            optimizer=args.optimizer,
            steps=steps,
            eval_every=args.eval_every,
            budget_s=args.budget,
            patience=patience or None,
        )
        shard = parse_shard(args.shard)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = suite.SuiteConfig(
        seeds=tuple(range(seeds)),
        lrs=lrs,
        trials=trials,
        budgets=budgets,
        train=train,
        scaling=args.scaling,
        device=args.device,
        dtype=args.dtype,
        match=getattr(args, "match", "params"),
        absolute_budgets=absolute,
    )
    return selected, config, shard


def _bar(done: int, total: int, elapsed: float) -> str:
    width = 24
    filled = int(width * done / total) if total else width
    left = elapsed / done * (total - done) if done else 0.0
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:.0f} s, ~{left:.0f} s left"


def run(args) -> int:
    if args.executor == "slurm":
        return submit_from(args, args.command)
    if getattr(args, "protocol", "budget") == "grid-extension":
        return run_grid_extension(args)
    import torch

    from kanbench import results as results_mod
    from kanbench import runner
    from kanbench.accuracy import plots, render, suite, tasks
    from kanbench.machine import fingerprint

    try:
        selected, config, shard = config_from(args)
        registry = discover_for(args)
        names, skipped = select_implementations(registry, split_impls(args.impl))
        if not args.impl:
            names, duplicates = suite.default_implementations(names)
            for name, same in duplicates:
                err(f"leaving out {name}: it learns what {same} learns (name it with --impl to train it too)")
    except (UsageError, tasks.TaskError, ValueError) as exc:
        err(str(exc))
        return EXIT_USAGE
    runnable = []
    for task in selected:
        reason = tasks.missing_requirement(task)
        if reason:
            err(f"skipping task {task.name}: {reason}")
        else:
            runnable.append(task)
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        err(runner.cuda_absent_reason())
        return EXIT_USAGE
    from kanbench.accuracy import parallel

    jobs = args.jobs if args.jobs is not None else min(parallel.default_jobs(), len(runnable) * len(names) or 1)
    if jobs < 1:
        err("--jobs must be at least 1")
        return EXIT_USAGE
    threads = args.threads or (1 if jobs > 1 else None)
    if threads:
        torch.set_num_threads(threads)
    if not runnable or not names:
        err("nothing to train")
        return EXIT_FAILED
    units = suite.plan(runnable, names, config, shard)
    machine = fingerprint(threads)
    document = results_mod.new_document(
        machine,
        {
            "mode": "accuracy",
            "accuracy": config.to_dict(),
            "tier": args.tier if not args.task else None,
            "tasks": [t.name for t in runnable],
            "shard": f"{shard[0]}/{shard[1]}",
            "threads": machine["torch"]["threads"],
            "jobs": jobs,
            "command": runner.command_line(),
        },
    )
    document.skipped = skipped
    path = None
    if not args.no_save:
        try:
            label = "accuracy" + (f"-{args.tier}" if not args.task else "") + ("-flops" if config.match == "flops" else "")
            path = results_mod.reserve_path(args.out, Path(args.results_dir), machine.get("hostname", "host"), label)
        except (results_mod.ResultsError, OSError) as exc:
            err(str(exc))
            return EXIT_USAGE
        results_mod.write_atomic(path, document)
    err(
        f"accuracy: {len(runnable)} task(s) x {len(names)} implementation(s) x {len(config.budgets)} budget(s) = "
        f"{len(units)} unit(s), each "
        + (
            f"{config.trials} tuning trial(s) + {len(config.seeds) - 1} more seed(s)"
            if config.trials
            else f"{len(config.seeds)} seed(s) x {len(config.lrs)} learning rate(s)"
        )
        + f", at most {config.train.steps} {config.train.optimizer} steps"
        + (f" (early stop after {config.train.patience} without improvement)" if config.train.patience else "")
        + (f"; {jobs} worker processes of {threads} thread(s)" if jobs > 1 else "")
    )

    def progress(done, total, unit, records, elapsed):
        document.results.extend(records)
        if path is not None:
            results_mod.write_atomic(path, document)
        ok = [r for r in records if not r.failed and r.score is not None]
        what = (
            f"error {sorted(r.score for r in ok)[len(ok) // 2]:.3g}, {records[0].step_ms:.3g} ms/step"
            if ok and records[0].step_ms
            else f"{records[0].error_kind}: {records[0].error}"
        )
        print(f"{_bar(done, total, elapsed)}  {unit.impl} on {unit.task.name}: {what}", file=sys.stderr, flush=True)

    try:
        started = time.monotonic()
        if jobs > 1:
            plan = parallel.WorkerPlan(
                tuple(t.name for t in runnable), tuple(names), config, shard, tuple(extra_dirs(args)), threads
            )
            document.results[:] = parallel.run(units, plan, jobs, progress)  # plan order
        else:
            suite.run(units, registry, config, progress)
        document.config["elapsed_s"] = round(time.monotonic() - started, 1)
    except KeyboardInterrupt:
        document.interrupted = True
        if path is not None:
            results_mod.write_atomic(path, document)
        err(f"interrupted; {len(document.results)} result(s) kept" + (f" in {path}" if path else ""))
        return EXIT_INTERRUPTED
    document.complete = True
    if path is not None:
        results_mod.write_atomic(path, document)
        err(f"results written to {path}")
    text = render.report(document.results)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
        err(f"markdown written to {args.markdown}")
    if path is not None or args.plots:
        folder = Path(args.plots) if args.plots else path.with_suffix("")
        for x in ("step_ms", "params"):
            fig = plots.pareto_figure(document.results, folder / f"pareto_{x}.png", x)
            if fig:
                err(f"figure written to {fig}")
    return EXIT_OK if any(not r.failed for r in document.results) else EXIT_FAILED


def run_grid_extension(args) -> int:
    """``--protocol grid-extension``: the KAN paper's scaling law (kanbench.accuracy.grid_scaling)."""
    import torch

    from kanbench import results as results_mod
    from kanbench import runner
    from kanbench.accuracy import grid_scaling
    from kanbench.machine import fingerprint

    try:
        grids = tuple(int(g) for g in _floats(args.grids, "grids")) if args.grids else grid_scaling.GRIDS
        if list(grids) != sorted(set(grids)) or grids[0] < 1:
            raise UsageError("--grids must be increasing positive integers")
        registry = discover_for(args)
        names, skipped = select_implementations(registry, split_impls(args.impl or ["splines-better_kan"]))
    except (UsageError, ValueError) as exc:
        err(str(exc))
        return EXIT_USAGE
    steps = args.steps if args.steps is not None else grid_scaling.STEPS
    lm_steps = args.lm_steps if args.lm_steps is not None else grid_scaling.LM_STEPS
    if lm_steps < 0:
        err("--lm-steps must be 0 or more")
        return EXIT_USAGE
    data = grid_scaling.exp_sin_data()
    runs = []
    for impl in names:
        spec = registry.get(impl).spec
        if "grid_size" not in spec.options:
            err(f"skipping {impl}: its spec takes no grid_size")
            continue
        for widths in ((2, 1, 1), (2, 5, 1)):

            def build(grid, spec=spec, widths=widths):
                torch.manual_seed(0)
                return spec.build(widths, device=torch.device("cpu"), dtype=torch.float64, grid_size=grid)

            extend = getattr(spec, "extend_grid", None)
            if extend is None and not hasattr(build(grids[0]), "extend_grid"):
                err(f"skipping {impl}: neither its spec nor its model has extend_grid")
                break

            def progress(point, impl=impl, widths=widths):
                what = point.error or f"train {point.train_rmse:.3e}, test {point.test_rmse:.3e}"
                err(
                    f"  {impl} {'x'.join(map(str, widths))} G={point.grid} ({point.params} params): {what}, {point.seconds:.1f} s"
                )

            update = getattr(spec, "update_grid", None)
            runs.append(
                grid_scaling.run(build, data, impl, "exp-sin", widths, grids, steps, 3, progress, extend, update, lm_steps)
            )
    if not runs:
        err("nothing to train")
        return EXIT_FAILED
    text = grid_scaling.markdown(runs)
    print(text)
    if not args.no_save:
        machine = fingerprint(args.threads)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        folder = Path(args.results_dir) / "grid-extension"
        path = Path(args.out) if args.out else folder / f"{stamp}_{machine.get('hostname', 'host')}.json"
        document = {
            "kind": "grid-extension",
            "machine": machine,
            "command": runner.command_line(),
            "runs": [r.to_dict() for r in runs],
        }
        results_mod.write_atomic(path, document)
        path.with_suffix(".md").write_text(text + "\n")
        grid_scaling.figure(runs, path.with_suffix(".png"))
        err(f"wrote {path}, {path.with_suffix('.md')} and {path.with_suffix('.png')}")
    return 0
