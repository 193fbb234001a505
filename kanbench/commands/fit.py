"""``kanbench fit``: every implementation trained with the same budget on KAN toy tasks."""

from __future__ import annotations

import sys
from pathlib import Path

from kanbench.commands.common import (
    EXIT_FAILED,
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

NAME = "fit"
HELP = "train every implementation with the same budget on KAN toy tasks; RMSE, ms/step, time to target"
DEFAULT_IMPLS = ("mlp", "splines-better_kan", "rbf-better_kan", "pykan")


def setup_arguments(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Tasks: seed exp(sin(pi x1)+x2^2) [2,5,1]; xy x1*x2 [2,5,1]; bessel J0(20x) [1,5,1]; "
        "exp4d exp((sin(pi(x1^2+x2^2))+sin(pi(x3^2+x4^2)))/2) [4,4,2,1]. 1000 train / 1000 test points in [-1,1]^d, "
        "full-batch, fixed seeds; the target is 2% of the test targets' std.",
    )
    add_selection(p, device_default="cpu", impl_default="mlp, splines-better_kan, rbf-better_kan, and pykan when installed")
    p.add_argument("--task", default="seed,xy,bessel,exp4d", metavar="A,B")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--budget", type=float, default=300.0, metavar="S", help="per-fit time budget in seconds (default 300)")
    p.add_argument("--out", metavar="FILE")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--plots", metavar="DIR", help="where the loss-curve figure goes (default: next to the results file)")
    p.add_argument("--no-save", action="store_true")
    add_discovery(p)
    add_executor_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.executor == "slurm":
        return submit_from(args, NAME)
    import torch

    from kanbench import fit, runner
    from kanbench import results as results_mod
    from kanbench import workload as workload_mod
    from kanbench.machine import fingerprint
    from kanbench.plots import fit_figure
    from kanbench.render import fit_table

    try:
        tasks = []
        for t in (t.strip() for t in args.task.split(",")):
            if t and t not in fit.TASKS:
                raise ValueError(f"unknown task {t!r}; known: {', '.join(fit.TASKS)}")
            if t:
                tasks.append(fit.TASKS[t])
        dtype = workload_mod.torch_dtype(args.dtype)
        if not tasks:
            raise ValueError("--task is empty")
        if args.steps < 1 or args.lr <= 0:
            raise ValueError("--steps must be positive and --lr above 0")
        registry = discover_for(args)
        names, _ = select_implementations(registry, split_impls(args.impl), default=DEFAULT_IMPLS)
    except ValueError as exc:
        err(str(exc))
        return EXIT_USAGE
    if args.threads:
        torch.set_num_threads(args.threads)
    specs = [registry.get(n).spec for n in names]
    devices, note = resolve_devices(args.device)
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        err(runner.cuda_absent_reason())
        devices = [d for d in devices if not d.startswith("cuda")]
    if not specs or not devices:
        err("nothing to fit")
        return EXIT_FAILED
    config = fit.FitConfig(steps=args.steps, lr=args.lr, optimizer=args.optimizer, seed=args.seed, budget_s=args.budget)
    machine = fingerprint(args.threads)

    def progress(rec):
        status = f"{rec.error_kind}: {rec.error}" if rec.failed else (f"test RMSE {rec.test_rmse:.3g}, {rec.step_ms:.3g} ms/step")
        print(f"{rec.impl}-{rec.device} {rec.task}: {status}", file=sys.stderr, flush=True)

    records = fit.run(specs, tasks, config, devices, dtype, progress)
    print(fit_table(records))
    if not args.no_save:
        doc = results_mod.new_document(
            machine,
            {
                "mode": "fit",
                "fit": config.to_dict(),
                "tasks": [t.name for t in tasks],
                "threads": machine["torch"]["threads"],
                "command": runner.command_line(),
            },
        )
        doc.results = records
        doc.complete = True
        try:
            path = results_mod.reserve_path(args.out, Path(args.results_dir), machine.get("hostname", "host"), "fit")
        except (results_mod.ResultsError, OSError) as exc:
            err(str(exc))
            return EXIT_USAGE
        results_mod.write_atomic(path, doc)
        err(f"results written to {path}")
        fig = fit_figure(records, (Path(args.plots) if args.plots else path.with_suffix("")) / "fit_curves.png")
        if fig:
            err(f"loss curves written to {fig}")
    return EXIT_OK if any(not r.failed for r in records) else EXIT_FAILED
