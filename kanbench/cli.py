"""The ``kanbench`` command (also ``python -m kanbench``)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _err(message: str) -> None:
    print(f"kanbench: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- list


def cmd_list(args) -> int:
    from tabulate import tabulate

    from kanbench.discovery import discover

    registry = discover(args.implementations)
    rows = []
    for e in sorted(registry, key=lambda e: e.name):
        spec = e.spec
        rows.append([e.name, "available" if e.available else "unavailable", spec.description if spec else "", e.origin])
    print(tabulate(rows, headers=["name", "status", "description", "origin"], tablefmt="pipe", disable_numparse=True))
    problems = sorted((e for e in registry if not e.available), key=lambda e: e.name) + list(registry.load_errors)
    if problems:
        print()
        for e in problems:
            print(f"- {e.name}: {e.reason}")
    if args.verbose:
        for e in registry:
            if e.spec and e.spec.notes:
                print(f"\n{e.name}: {e.spec.notes}")
    return EXIT_OK


# ----------------------------------------------------------------------------- run


def _split_impls(values: Optional[Sequence[str]]) -> Optional[list[str]]:
    if not values:
        return None
    names: list[str] = []
    for v in values:
        names.extend(n.strip() for n in v.split(",") if n.strip())
    return list(dict.fromkeys(names))


def resolve_devices(choice: str) -> tuple[list[str], Optional[str]]:
    """(devices to run, a note) for --device cpu|cuda|all."""
    import torch

    if choice == "cpu":
        return ["cpu"], None
    if choice == "cuda":
        return ["cuda"], None
    if torch.cuda.is_available():
        return ["cpu", "cuda"], None
    return ["cpu"], "no CUDA device here: measuring the CPU only"


def _progress(stream):
    tty = stream.isatty()

    def show(i: int, n: int, record: dict) -> None:
        from kanbench.render import fmt_ms_precise, label

        width = len(str(n))
        head = f"[{i:>{width}}/{n}] {label(record):<28}"
        if record.get("error") and record.get("forward_ms") is None:
            line = f"{head} {record['error_kind']}: {record['error']}"
        else:
            line = (
                f"{head} fwd {fmt_ms_precise(record['forward_ms'])} ms  bwd {fmt_ms_precise(record['backward_ms'])} ms"
                f"  (n={record.get('n_samples')}, {record.get('wall_s', 0):.1f} s)"
            )
            if record.get("error"):
                line += f"  {record['error_kind']}: {record['error']}"
        print(line, file=stream, flush=True)

    def start(i: int, n: int, job) -> None:
        if tty:
            from kanbench.runner import row_label

            print(f"[{i}/{n}] {row_label(job.impl, job.device)} ...", end="\r", file=stream, flush=True)

    return show, start


def cmd_run(args) -> int:
    from kanbench import results as results_mod
    from kanbench import runner, workload as workload_mod
    from kanbench.discovery import discover
    from kanbench.machine import fingerprint, machine_label
    from kanbench.render import render_document
    from kanbench.timing import TimingConfig

    try:
        shape = workload_mod.parse_shape(args.shape) if args.shape else None
        batch = workload_mod.parse_batch(args.batch) if args.batch is not None else None
        work = workload_mod.resolve(args.preset, shape, batch, args.dtype)
        timing = TimingConfig(
            min_time=args.min_time, min_samples=args.min_samples, max_samples=max(args.max_samples, args.min_samples),
            warmup_time=args.warmup,
        )
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if args.threads is not None and args.threads < 1:
        _err(f"--threads must be a positive integer, got {args.threads}")
        return EXIT_USAGE
    if args.budget is not None and args.budget <= 0:
        _err("--budget must be a positive number of seconds")
        return EXIT_USAGE

    registry = discover(args.implementations)
    for e in registry.load_errors:
        _err(f"{e.name}: {e.reason}")
    requested = _split_impls(args.impl)
    skipped = []
    if requested is None:
        impls = []
        for e in registry:
            if e.available:
                impls.append(e.name)
            else:
                skipped.append({"impl": e.name, "reason": e.reason})
                _err(f"skipping {e.name}: {e.reason}")
    else:
        impls = requested
        for name in requested:
            if name not in registry.names():
                _err(f"unknown implementation {name!r}; known: {', '.join(registry.names())}")
            elif not registry.get(name).available:
                _err(f"{name} is unavailable: {registry.get(name).reason}")
    if not impls:
        _err("no implementation to measure")
        return EXIT_FAILED

    devices, note = resolve_devices(args.device)
    if note and args.device == "all":
        _err(note)
    if "cuda" in devices:
        import torch

        if not torch.cuda.is_available():
            _err(runner.cuda_absent_reason())

    machine = fingerprint(args.threads)
    plan = runner.RunPlan(
        impls=impls,
        devices=devices,
        workload=work,
        timing=timing,
        threads=args.threads,
        extra_dirs=[str(Path(d).resolve()) for d in args.implementations],
        budget_s=args.budget,
        isolate=not args.in_process,
        memory=not args.no_memory,
    )
    config = {
        "workload": work.to_dict(),
        "timing": timing.to_dict(),
        "threads": machine["torch"]["threads"],
        "devices": devices,
        "isolation": "process" if plan.isolate else "in-process",
        "budget_s": args.budget,
        "command": runner.command_line(),
        "implementations_dirs": plan.extra_dirs,
    }
    document = results_mod.new_document(machine, config)
    document["skipped"] = skipped
    path = None
    if not args.no_save:
        try:
            label = work.preset or work.key
            path = results_mod.reserve_path(args.out, Path(args.results_dir), machine.get("hostname", "host"), label)
        except (results_mod.ResultsError, OSError) as exc:
            _err(str(exc))
            return EXIT_USAGE

    show, start = _progress(sys.stderr)
    jobs = plan.jobs()
    counter = {"i": 0}

    def measure(job):
        counter["i"] += 1
        start(counter["i"], len(jobs), job)
        if plan.isolate:
            return runner.measure_row_isolated(job)
        return runner.measure_row(job, registry)

    _err(
        f"measuring {len(impls)} implementation(s) x {len(devices)} device(s), {work.key}, "
        f"{machine_label(machine, 'cpu', machine['torch']['threads'])}"
    )
    try:
        runner.execute(plan, document, path, progress=show, measure=measure)
    except runner.Interrupted:
        print(render_document(document, args.format))
        _err(f"interrupted; {len(document['results'])} row(s) kept" + (f" in {path}" if path else ""))
        return EXIT_INTERRUPTED
    print(render_document(document, args.format))
    if path is not None:
        _err(f"results written to {path}")
    measured = [r for r in document["results"] if not r.get("error")]
    if not measured:
        _err("nothing could be measured")
        return EXIT_FAILED
    if args.strict and len(measured) < len(document["results"]):
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------------------- report


def cmd_report(args) -> int:
    from kanbench import cross_hardware
    from kanbench import results as results_mod
    from kanbench.render import render_documents

    try:
        docs = results_mod.load_many(args.files)
        modes = {d.get("config", {}).get("mode", "run") for d in docs}
        if modes - {"run"}:
            if len(modes) > 1:
                _err("these files mix modes (" + ", ".join(sorted(modes)) + "); report sweeps, fits and runs separately")
                return EXIT_USAGE
            mode = modes.pop()
            if mode == "sweep":
                from kanbench.plots import sweep_report

                print(sweep_report(docs, Path(args.plots) if args.plots else None))
                if args.plots:
                    _err(f"figures and sweep.md written to {args.plots}")
            else:
                from kanbench.fit import fit_table
                from kanbench.plots import fit_figure

                records = [r for d in docs for r in d["results"]]
                print(fit_table(records))
                if args.plots:
                    fig = fit_figure(records, Path(args.plots) / "fit_curves.png")
                    _err(f"loss curves written to {fig}")
            return EXIT_OK
        if args.by == "machine":
            print(cross_hardware.machine_table(docs, strict=args.strict))
        elif args.by == "history":
            print(cross_hardware.history_table(docs))
        else:
            print(render_documents(docs, args.format))
    except (results_mod.ResultsError, cross_hardware.CrossHardwareError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    return EXIT_OK


# ----------------------------------------------------------------------------- compare, ab, export


def _print_comparison(comparison, args) -> int:
    from kanbench import compare

    print(compare.render(comparison, only_changed=args.only_changed))
    return EXIT_FAILED if comparison.regressed else EXIT_OK


def cmd_compare(args) -> int:
    from kanbench import compare
    from kanbench import results as results_mod

    try:
        base, new = results_mod.load(args.base), results_mod.load(args.new)
        comparison = compare.compare_documents(
            base, new, threshold=args.threshold, alpha=args.alpha,
            normalize=None if args.normalize == "none" else args.normalize, impls=_split_impls(args.impl),
            test=args.test,
        )
    except (results_mod.ResultsError, compare.CompareError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    comparison.base_name = Path(args.base).stem
    comparison.new_name = Path(args.new).stem
    return _print_comparison(comparison, args)


def cmd_ab(args) -> int:
    from kanbench import ab, compare
    from kanbench import results as results_mod
    from kanbench import workload as workload_mod
    from kanbench.discovery import discover
    from kanbench.machine import fingerprint
    from kanbench.timing import TimingConfig

    try:
        shape = workload_mod.parse_shape(args.shape) if args.shape else None
        batch = workload_mod.parse_batch(args.batch) if args.batch is not None else None
        work = workload_mod.resolve(args.preset, shape, batch, args.dtype)
        if args.rounds < 2:
            raise ValueError("--rounds must be at least 2")
        needed = math.floor(math.log2(1 / args.alpha)) + 1 if 0 < args.alpha < 1 else 2
        if args.test != "mw" and args.rounds < needed:
            raise ValueError(
                f"--rounds {args.rounds} is too few for the paired test at alpha {args.alpha:g}: its smallest "
                f"p-value is 2^-rounds; use --rounds {needed} or more (or --test mw)"
            )
        if args.chunk_time <= 0:
            raise ValueError("--chunk-time must be positive")
        if not 1 <= args.workers <= args.rounds:
            raise ValueError("--workers must be between 1 and --rounds")
        base = ab.resolve_side(args.base, args.base_extra, "--base")
        new = ab.resolve_side(args.new, args.new_extra, "--new")
    except (ValueError, ab.ABError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    try:
        common = [str(Path(d).resolve()) for d in args.implementations]
        impls = _split_impls(args.impl)
        if impls is None:
            regs = [discover(side.dirs(common), builtin=False, entry_points=False) for side in (base, new)]
            impls = [e.name for e in regs[1].available() if e.name in {x.name for x in regs[0].available()}]
        devices, note = resolve_devices(args.device)
        if note and args.device == "all":
            _err(note)
        plan = ab.ABPlan(
            impls=impls, devices=devices, workload=work, rounds=args.rounds, chunk_time=args.chunk_time, workers=args.workers,
            warmup=TimingConfig(warmup_time=args.warmup), threads=args.threads, common_dirs=common,
        )
        machine = fingerprint(args.threads)
        _err(f"A/B: {base.name} vs {new.name}: {len(impls)} implementation(s) x {len(devices)} device(s), "
             f"{work.key}, {args.rounds} interleaved rounds of {args.chunk_time:g} s per side, {args.workers} worker(s) per side")

        def progress(i, n, b, w):
            from kanbench.render import fmt_ms_precise, label

            def cell(r):
                if r.get("error"):
                    return f"{r['error_kind']}: {r['error']}"
                return f"fwd {fmt_ms_precise(r['forward_ms'])} bwd {fmt_ms_precise(r['backward_ms'])} ms"

            print(f"[{i}/{n}] {label(b):<28} base {cell(b)} | new {cell(w)}", file=sys.stderr, flush=True)

        base_doc, new_doc = ab.run(plan, base, new, machine, progress)
    finally:
        base.cleanup()
        new.cleanup()
    if not args.no_save:
        out_dir = Path(args.out_dir)
        for key, doc in (("base", base_doc), ("new", new_doc)):
            path = results_mod.reserve_path(None, out_dir, machine.get("hostname", "host"), f"ab-{key}-{work.preset or work.key}")
            results_mod.write_atomic(path, doc)
            _err(f"{key} results written to {path}")
    try:
        comparison = compare.compare_documents(base_doc, new_doc, threshold=args.threshold, alpha=args.alpha, test=args.test)
    except compare.CompareError as exc:
        _err(str(exc))
        return EXIT_USAGE
    return _print_comparison(comparison, args)


def cmd_sweep(args) -> int:
    from kanbench import results as results_mod
    from kanbench import runner, sweep
    from kanbench import workload as workload_mod
    from kanbench.discovery import discover
    from kanbench.machine import fingerprint
    from kanbench.plots import sweep_report
    from kanbench.timing import TimingConfig

    try:
        shape = workload_mod.parse_shape(args.shape) if args.shape else None
        batch = workload_mod.parse_batch(args.base_batch) if args.base_batch is not None else None
        base = workload_mod.resolve(args.preset, shape, batch, None)
        axes = {a: sweep.parse_axis(a, getattr(args, a)) for a in sweep.AXES}
        shard = sweep.parse_shard(args.shard)
        timing = TimingConfig(min_time=args.min_time, min_samples=args.min_samples, max_samples=max(2000, args.min_samples))
    except (ValueError, sweep.SweepError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    registry = discover(args.implementations)
    requested = _split_impls(args.impl)
    impls = requested or [e.name for e in registry.available()]
    unknown = [n for n in impls if n not in registry.names()]
    if unknown:
        _err(f"unknown implementation(s) {', '.join(unknown)}; known: {', '.join(registry.names())}")
        return EXIT_USAGE
    devices, note = resolve_devices(args.device)
    if note and args.device == "all":
        _err(note)
    try:
        points = sweep.plan(impls, devices, base, axes, lambda n: "grid_size" in registry.get(n).spec.options)
    except sweep.SweepError as exc:
        _err(str(exc))
        return EXIT_USAGE
    i, n = shard
    points = points[i::n]
    machine = fingerprint(args.threads)
    config = {
        "mode": "sweep", "workload": base.to_dict(), "axes": {k: v for k, v in axes.items() if v},
        "shard": f"{i}/{n}", "timing": timing.to_dict(), "threads": machine["torch"]["threads"], "devices": devices,
        "budget_s": args.budget, "command": runner.command_line(),
    }
    document = results_mod.new_document(machine, config)
    try:
        path = results_mod.reserve_path(args.out, Path(args.results_dir), machine.get("hostname", "host"),
                                        "sweep" + (f"-shard{i}of{n}" if n > 1 else ""))
    except (results_mod.ResultsError, OSError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    extra = [str(Path(d).resolve()) for d in args.implementations]
    registry_for_rows = registry

    def measure(job):
        return runner.measure_row(job, registry_for_rows) if args.in_process else runner.measure_row_isolated(job)

    _err(f"sweep: {len(points)} point(s){' in shard ' + args.shard if n > 1 else ''}, base {base.key}")
    try:
        sweep.run(points, document, lambda d: results_mod.write_atomic(path, d), measure, timing,
                  threads=args.threads, extra_dirs=extra, budget_s=args.budget, progress=sweep.progress_bar())
    except KeyboardInterrupt:
        document["interrupted"] = True
        results_mod.write_atomic(path, document)
        _err(f"interrupted; {len(document['results'])} point(s) kept in {path}")
        return EXIT_INTERRUPTED
    _err(f"results written to {path}")
    plots = None
    if not args.no_plots and n == 1:
        plots = Path(args.plots) if args.plots else path.with_suffix("")
    print(sweep_report([document], plots))
    if plots:
        _err(f"figures and sweep.md written to {plots}")
    elif n > 1:
        _err("merge the shards with: kanbench report --plots DIR <shard files>")
    return EXIT_OK if any(not r.get("error") for r in document["results"]) else EXIT_FAILED


def cmd_fit(args) -> int:
    import torch

    from kanbench import fit
    from kanbench import results as results_mod
    from kanbench import runner
    from kanbench import workload as workload_mod
    from kanbench.discovery import discover
    from kanbench.machine import fingerprint
    from kanbench.plots import fit_figure

    try:
        tasks = [fit.TASKS[t.strip()] for t in args.task.split(",") if t.strip()]
        dtype = workload_mod.torch_dtype(args.dtype)
        if not tasks:
            raise ValueError("--task is empty")
        if args.steps < 1 or args.lr <= 0:
            raise ValueError("--steps must be positive and --lr above 0")
    except KeyError as exc:
        _err(f"unknown task {exc.args[0]!r}; known: {', '.join(fit.TASKS)}")
        return EXIT_USAGE
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = discover(args.implementations)
    requested = _split_impls(args.impl) or [
        n for n in ("mlp", "splines-better_kan", "rbf-better_kan", "pykan") if n in registry.names() and registry.get(n).available
    ]
    specs = []
    for name in requested:
        if name not in registry.names():
            _err(f"unknown implementation {name!r}; known: {', '.join(registry.names())}")
            return EXIT_USAGE
        if not registry.get(name).available:
            _err(f"skipping {name}: {registry.get(name).reason}")
            continue
        specs.append(registry.get(name).spec)
    devices, note = resolve_devices(args.device)
    if "cuda" in devices and not torch.cuda.is_available():
        _err(runner.cuda_absent_reason())
        devices = [d for d in devices if d != "cuda"]
    if not specs or not devices:
        _err("nothing to fit")
        return EXIT_FAILED
    config = fit.FitConfig(steps=args.steps, lr=args.lr, optimizer=args.optimizer, seed=args.seed, budget_s=args.budget)
    machine = fingerprint(args.threads)

    def progress(rec):
        status = f"{rec['error_kind']}: {rec['error']}" if rec.get("error") else (
            f"test RMSE {rec['test_rmse']:.3g}, {rec['step_ms']:.3g} ms/step")
        print(f"{rec['impl']}-{rec['device']} {rec['task']}: {status}", file=sys.stderr, flush=True)

    records = fit.run(specs, tasks, config, devices, dtype, progress)
    print(fit.fit_table(records))
    if not args.no_save:
        doc = results_mod.new_document(machine, {"mode": "fit", "fit": config.to_dict(), "tasks": [t.name for t in tasks],
                                                  "threads": machine["torch"]["threads"], "command": runner.command_line()})
        doc["results"] = records
        doc["complete"] = True
        try:
            path = results_mod.reserve_path(args.out, Path(args.results_dir), machine.get("hostname", "host"), "fit")
        except (results_mod.ResultsError, OSError) as exc:
            _err(str(exc))
            return EXIT_USAGE
        results_mod.write_atomic(path, doc)
        _err(f"results written to {path}")
        fig = fit_figure(records, (Path(args.plots) if args.plots else path.with_suffix("")) / "fit_curves.png")
        if fig:
            _err(f"loss curves written to {fig}")
    return EXIT_OK if any(not r.get("error") for r in records) else EXIT_FAILED


def cmd_export(args) -> int:
    import json

    from kanbench import export
    from kanbench import results as results_mod

    try:
        doc = results_mod.load(args.file)
    except results_mod.ResultsError as exc:
        _err(str(exc))
        return EXIT_USAGE
    text = json.dumps(export.github_action_benchmark(doc), indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def _add_discovery(p) -> None:
    p.add_argument(
        "--implementations",
        metavar="DIR",
        action="append",
        default=[],
        help="also load implementation specs from DIR (every *.py file and package in it); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    from kanbench import __version__
    from kanbench.runner import DEFAULT_BUDGET_S
    from kanbench.workload import PRESETS

    parser = argparse.ArgumentParser(
        prog="kanbench",
        description="Benchmark Kolmogorov-Arnold Network implementations: forward/backward time, peak memory, parameters.",
    )
    parser.add_argument("--version", action="version", version=f"kanbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list discovered implementations and whether each is available")
    _add_discovery(p)
    p.add_argument("-v", "--verbose", action="store_true", help="also print each implementation's notes")
    p.set_defaults(func=cmd_list)

    presets = ", ".join(f"{k} ({'x'.join(map(str, w.widths))}, batch {w.batch})" for k, w in PRESETS.items())
    p = sub.add_parser(
        "run",
        help="measure implementations and write a results file",
        description="Measure forward and backward time, peak memory and parameter counts; "
        "print a markdown table on stdout and write a JSON results file.",
    )
    p.add_argument("--impl", action="append", metavar="A,B", help="implementations to measure (default: every available one)")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="device(s); 'all' = cpu, plus cuda when present (default)")
    p.add_argument("--preset", default=None, help=f"workload preset: {presets}; default seed")
    p.add_argument("--shape", metavar="IN,HIDDEN,OUT", help="network widths, e.g. 2,150,1 (overrides the preset's)")
    p.add_argument("--batch", metavar="N", help="batch size (overrides the preset's)")
    p.add_argument("--dtype", help="float32 (default), float64, bfloat16 or float16")
    p.add_argument("--threads", type=int, metavar="N", help="torch intra-op threads (default: torch's own choice, recorded)")
    p.add_argument("--out", metavar="FILE", help="results file to write (must not exist; default: a new file in --results-dir)")
    p.add_argument("--results-dir", default="results", metavar="DIR", help="where default-named results files go (default: results/)")
    p.add_argument("--no-save", action="store_true", help="do not write a results file")
    p.add_argument("--format", choices=["seed", "full"], default="seed", help="table format: seed (default) or full (spread, ratio to MLP)")
    p.add_argument("--min-time", type=float, default=1.0, metavar="S", help="minimum measured seconds per row (default 1.0)")
    p.add_argument("--min-samples", type=int, default=20, metavar="N", help="minimum samples per row (default 20)")
    p.add_argument("--max-samples", type=int, default=5000, metavar="N", help="maximum samples per row (default 5000)")
    p.add_argument("--warmup", type=float, default=0.25, metavar="S", help="warm-up seconds per row (default 0.25, at least 2 steps)")
    p.add_argument(
        "--budget", type=float, default=DEFAULT_BUDGET_S, metavar="S",
        help=f"per-row time budget in seconds (default {DEFAULT_BUDGET_S:g}); a row over it is reported as such",
    )
    p.add_argument("--in-process", action="store_true", help="measure rows in this process instead of one worker process per row")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    p.add_argument("--strict", action="store_true", help="exit 1 when any row failed (default: only when none was measured)")
    _add_discovery(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="render tables from saved results files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=["seed", "full"], default="seed", help="seed (default) or full")
    p.add_argument(
        "--by", choices=["file", "machine", "history"], default="file",
        help="file: a table per file (default); machine: machines side by side; history: one machine over time",
    )
    p.add_argument("--strict", action="store_true", help="with --by machine: refuse files of different workloads")
    p.add_argument("--plots", metavar="DIR", help="for sweep or fit files: write the figures (and sweep.md) to DIR")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "sweep", help="vary batch, width, grid size, torch.compile and dtype; plots and a summary",
        description="One axis at a time from the preset's workload: --batch sets the batch, --width W sets widths "
        "[W, W, out], --grid the grid size of implementations that take one, --compile off,on, --dtype. "
        "Every implementation is also measured at the base point. Writes one results file, figures next to it "
        "and a markdown summary (stdout and sweep.md).",
    )
    p.add_argument("--impl", action="append", metavar="A,B", help="implementations (default: every available one)")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    p.add_argument("--preset", default=None, help="base workload (default seed)")
    p.add_argument("--shape", metavar="IN,HIDDEN,OUT", help="base widths (overrides the preset's)")
    p.add_argument("--base-batch", metavar="N", help="base batch size (overrides the preset's)")
    for axis, example in (("batch", "16,32,64,128"), ("width", "16,64,256"), ("grid", "3,5,10,20"),
                          ("compile", "off,on"), ("dtype", "float32,float64,bfloat16")):
        p.add_argument(f"--{axis}", metavar="LIST", help=f"values of the {axis} axis, e.g. {example}")
    p.add_argument("--shard", metavar="I/N", help="measure only every N-th point, from the I-th (0-based)")
    p.add_argument("--threads", type=int, metavar="N")
    p.add_argument("--min-time", type=float, default=0.5, metavar="S", help="minimum measured seconds per point (default 0.5)")
    p.add_argument("--min-samples", type=int, default=10, metavar="N", help="minimum samples per point (default 10)")
    p.add_argument("--budget", type=float, default=60.0, metavar="S", help="per-point time budget in seconds (default 60)")
    p.add_argument("--out", metavar="FILE")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--plots", metavar="DIR", help="where figures go (default: a directory named after the results file)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--in-process", action="store_true")
    _add_discovery(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "fit", help="train every implementation with the same budget on KAN toy tasks; RMSE, ms/step, time to target",
        description="Tasks: seed exp(sin(pi x1)+x2^2) [2,5,1]; xy x1*x2 [2,5,1]; bessel J0(20x) [1,5,1]; "
        "exp4d exp((sin(pi(x1^2+x2^2))+sin(pi(x3^2+x4^2)))/2) [4,4,2,1]. 1000 train / 1000 test points in [-1,1]^d, "
        "full-batch, fixed seeds; the target is 2% of the test targets' std.",
    )
    p.add_argument("--impl", action="append", metavar="A,B",
                   help="implementations (default: mlp, splines-better_kan, rbf-better_kan, and pykan when installed)")
    p.add_argument("--task", default="seed,xy,bessel,exp4d", metavar="A,B")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, metavar="N")
    p.add_argument("--budget", type=float, default=300.0, metavar="S", help="per-fit time budget in seconds (default 300)")
    p.add_argument("--out", metavar="FILE")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--plots", metavar="DIR", help="where the loss-curve figure goes (default: next to the results file)")
    p.add_argument("--no-save", action="store_true")
    _add_discovery(p)
    p.set_defaults(func=cmd_fit)

    def add_verdict_options(p):
        p.add_argument("--threshold", type=float, default=1.10, help="ratio NEW/BASE above which a row can be 'slower' (default 1.10)")
        p.add_argument("--alpha", type=float, default=0.01, help="significance level of the Mann-Whitney U test (default 0.01)")
        p.add_argument("--only-changed", action="store_true", help="list only rows that changed")
        p.add_argument(
            "--test", choices=["auto", "mw", "paired"], default="auto",
            help="mw: Mann-Whitney U on the raw samples; paired: Wilcoxon on per-round ratios of an A/B run; "
            "auto (default): paired when both sides have interleaved rounds, else mw",
        )

    p = sub.add_parser(
        "compare", help="compare two results files; exit 1 when something got slower",
        description="Ratio of medians NEW/BASE per row and phase; 'slower' needs the ratio above the threshold AND "
        "a significant Mann-Whitney U test on the raw samples. Exit status: 0 ok, 1 regression, 2 unusable input.",
    )
    p.add_argument("base", metavar="BASE")
    p.add_argument("new", metavar="NEW")
    p.add_argument(
        "--normalize", choices=["none", "mlp"], default="none",
        help="mlp: divide each row's samples by its run's MLP median (same device) first, for runs from "
        "differently loaded or different machines",
    )
    p.add_argument("--impl", action="append", metavar="A,B", help="compare only these implementations")
    add_verdict_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "ab", help="measure two source trees interleaved on this machine and compare them",
        description="A/B mode: one worker per side per row, taking turns measuring short chunks, so that drift of "
        "the machine hits both sides alike. A side is a directory holding implementations/ or a git ref.",
    )
    p.add_argument("--base", required=True, metavar="REF|DIR", help="the reference tree: a git ref (e.g. HEAD~1) or a directory")
    p.add_argument("--new", default=None, metavar="REF|DIR", help="the candidate tree (default: this working tree)")
    p.add_argument("--impl", action="append", metavar="A,B", help="implementations (default: every one available on both sides)")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu", help="device(s) (default cpu)")
    p.add_argument("--preset", default="gate", help="workload preset (default gate)")
    p.add_argument("--shape", metavar="IN,HIDDEN,OUT")
    p.add_argument("--batch", metavar="N")
    p.add_argument("--dtype")
    p.add_argument("--threads", type=int, metavar="N")
    p.add_argument("--rounds", type=int, default=12, help="interleaved rounds per side (default 12)")
    p.add_argument("--chunk-time", type=float, default=0.2, metavar="S", help="seconds per chunk (default 0.2)")
    p.add_argument("--workers", type=int, default=3, help="worker processes per side, taking the rounds in turn (default 3)")
    p.add_argument("--warmup", type=float, default=0.25, metavar="S")
    p.add_argument("--base-extra", action="append", default=[], metavar="DIR", help="implementations for the base side only")
    p.add_argument("--new-extra", action="append", default=[], metavar="DIR", help="implementations for the new side only")
    p.add_argument("--out-dir", default="results/ab", metavar="DIR", help="where both sides' results files go (default results/ab)")
    p.add_argument("--no-save", action="store_true")
    add_verdict_options(p)
    _add_discovery(p)
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("export", help="export a results file for CI dashboards")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=["github-action-benchmark"], default="github-action-benchmark",
                   help="customSmallerIsBetter JSON for github-action-benchmark (default)")
    p.add_argument("--out", metavar="FILE")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
