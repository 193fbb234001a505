"""``kanbench leaderboard``: every available implementation, param-matched, on each device.

The rows are measured like ``kanbench run`` (interleaved, sanity gate first) after
``--match params`` (default) chose each implementation's hidden widths; then each row's
model is trained on the seed function at those widths for a fixed Adam budget
(``--fit-steps``) and its test RMSE is added. Prints the markdown leaderboard
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
        "--fit-steps", type=int, default=300, metavar="N", help="Adam steps of the fit-quality column (default 300; 0: none)"
    )
    p.add_argument("--fit-lr", type=float, default=1e-2, help="learning rate of that fit (default 0.01)")
    p.add_argument("--markdown", metavar="PATH", help="also write the leaderboard's markdown to PATH")
    p.set_defaults(func=run, match="params", device="cpu")


def add_fits(document, steps: int, lr: float) -> None:
    """Train each row's implementation at its widths on the seed function; store test RMSE on the row."""
    import dataclasses

    import torch

    from kanbench import discovery, fit, workload

    registry = discovery.discover(document.config.get("implementations_dirs") or [], check=False)
    config = fit.FitConfig(steps=steps, lr=lr, eval_every=max(1, steps // 10), budget_s=120.0)
    for row in document.rows():
        widths = tuple(row.built_widths)
        if row.sanity_status == "fail" and row.forward_ms is None:
            continue
        if widths[0] != 2:
            row.fit = {"error": "fit quality: the seed function has 2 inputs", "error_kind": "n/a"}
            continue
        task = dataclasses.replace(fit.TASKS["seed"], widths=widths)
        spec = registry.get(row.impl).spec
        dtype = workload.torch_dtype((row.workload or {}).get("dtype", "float32"))
        started = time.monotonic()
        rec = fit.fit_one(spec, task, config, torch.device(row.device), dtype)
        row.fit = {
            "task": "seed",
            "steps": steps,
            "lr": lr,
            "optimizer": "adam",
            "test_rmse": rec.test_rmse,
            "train_rmse": rec.train_rmse,
            "best_test_rmse": rec.best_test_rmse,
            "step_ms": rec.step_ms,
            "curve": rec.curve,
            "error": rec.error,
            "error_kind": rec.error_kind,
        }
        err(
            f"fit {row.impl}: test RMSE {rec.test_rmse if rec.test_rmse is not None else 'n/a'} ({time.monotonic() - started:.1f} s)"
        )


def run(args) -> int:
    from kanbench import leaderboard
    from kanbench import results as results_mod

    if args.executor == "slurm":
        from kanbench.commands.executor import submit_from

        return submit_from(args, NAME)
    started = time.monotonic()
    status, document, path = run_cmd.measure(args, mode="leaderboard")
    if document is None:
        return status
    if status != EXIT_INTERRUPTED and args.fit_steps > 0:
        add_fits(document, args.fit_steps, args.fit_lr)
        document.config["fit"] = {"task": "seed", "steps": args.fit_steps, "lr": args.fit_lr, "optimizer": "adam"}
        if path is not None:
            results_mod.write_atomic(path, document)
    text = leaderboard.render(document)
    print(text)
    if args.markdown:
        try:
            Path(args.markdown).write_text(text + "\n")
        except OSError as exc:
            err(f"cannot write {args.markdown}: {exc}")
            return EXIT_USAGE
    err(f"leaderboard took {time.monotonic() - started:.0f} s" + (f"; results written to {path}" if path else ""))
    return status
