"""``kanbench run``: measure implementations, print the table, write a results file.

The command line becomes a typed :class:`RunRequest` at the door (:meth:`RunRequest.from_args`:
the workload, timing and interleaving parsed, bad values a usage error); :func:`measure`
takes the request, never the argparse namespace.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from kanbench.commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_discovery,
    add_output,
    add_selection,
    discover_for,
    err,
    resolve_devices,
    select_implementations,
    split_impls,
)
from kanbench.commands.executor import add_executor_arguments, submit_from

NAME = "run"
HELP = "measure implementations and write a results file"


def add_workload_arguments(p, preset_default=None) -> None:
    from kanbench.workload import PRESETS

    presets = ", ".join(f"{k} ({'x'.join(map(str, w.widths))}, batch {w.batch})" for k, w in PRESETS.items())
    p.add_argument("--preset", default=preset_default, help=f"workload preset: {presets}; default {preset_default or 'seed'}")
    p.add_argument("--shape", metavar="IN,HIDDEN,OUT", help="network widths, e.g. 2,150,1 (overrides the preset's)")
    p.add_argument("--batch", metavar="N", help="batch size (overrides the preset's)")
    p.add_argument("--dtype", help="float32 (default), float64, bfloat16 or float16")


def parse_workload(args):
    """The workload of ``--preset/--shape/--batch/--dtype``; raises ValueError with a one-line message."""
    from kanbench import workload as workload_mod

    shape = workload_mod.parse_shape(args.shape) if args.shape else None
    batch = workload_mod.parse_batch(args.batch) if args.batch is not None else None
    return workload_mod.resolve(args.preset, shape, batch, args.dtype)


def setup_arguments(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Measure forward and backward time, peak memory and parameter counts; "
        "print a markdown table on stdout and write a JSON results file.",
    )
    add_run_arguments(p)
    p.set_defaults(func=run)


def add_run_arguments(p) -> None:
    """Every option of ``kanbench run`` (``kanbench leaderboard`` takes them too)."""
    from kanbench.runner import DEFAULT_BUDGET_S

    add_selection(p)
    add_workload_arguments(p)
    add_output(p)
    p.add_argument(
        "--format", choices=["seed", "full"], default="seed", help="table format: seed (default) or full (spread, ratio to MLP)"
    )
    p.add_argument("--min-time", type=float, default=1.0, metavar="S", help="minimum measured seconds per row (default 1.0)")
    p.add_argument("--min-samples", type=int, default=20, metavar="N", help="minimum samples per row (default 20)")
    p.add_argument("--max-samples", type=int, default=5000, metavar="N", help="maximum samples per row (default 5000)")
    p.add_argument(
        "--warmup", type=float, default=0.25, metavar="S", help="warm-up seconds per row (default 0.25, at least 2 steps)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_S,
        metavar="S",
        help=f"per-row time budget in seconds (default {DEFAULT_BUDGET_S:g}); a row over it is reported as such",
    )
    p.add_argument(
        "--mode",
        choices=["interleaved", "sequential"],
        default="interleaved",
        help="interleaved (default): rows take turns in short chunks, several worker processes per row; "
        "sequential: one worker process per row, rows one after another",
    )
    p.add_argument(
        "--rounds", type=int, default=12, help="interleaved: rounds per row (default 12); --min-time is spread over them"
    )
    p.add_argument(
        "--processes", type=int, default=3, help="interleaved: worker processes per row, one after another (default 3)"
    )
    p.add_argument("--max-live", type=int, default=8, help="interleaved: rows measured side by side at most (default 8)")
    p.add_argument("--in-process", action="store_true", help="measure rows one after another in this process (debugging)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    p.add_argument("--strict", action="store_true", help="exit 1 when any row failed (default: only when none was measured)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="measure every implementation under torch.compile (rows marked 'compile'; the first, "
        "compiling step's time is recorded as first_step_s)",
    )
    add_match_arguments(p)
    add_discovery(p)
    add_executor_arguments(p)


def _progress(stream):
    tty = stream.isatty()

    def show(i: int, n: int, record) -> None:
        from kanbench.render import fmt_ms_precise

        width = len(str(n))
        head = f"[{i:>{width}}/{n}] {record.label:<28}"
        if record.failed and record.forward_ms is None:
            line = f"{head} {record.error_kind}: {record.error}"
        else:
            line = (
                f"{head} fwd {fmt_ms_precise(record.forward_ms)} ms  bwd {fmt_ms_precise(record.backward_ms)} ms"
                f"  (n={record.n_samples}, {record.wall_s or 0:.1f} s)"
            )
            if record.failed:
                line += f"  {record.error_kind}: {record.error}"
        print(line, file=stream, flush=True)

    def start(i: int, n: int, job) -> None:
        if tty:
            from kanbench.records import row_label

            print(f"[{i}/{n}] {row_label(job.impl, job.device)} ...", end="\r", file=stream, flush=True)

    return show, start


def _options(args):
    from kanbench.timing import TimingConfig

    timing = TimingConfig(
        min_time=args.min_time,
        min_samples=args.min_samples,
        max_samples=max(args.max_samples, args.min_samples),
        warmup_time=args.warmup,
    )
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    if args.budget is not None and args.budget <= 0:
        raise UsageError("--budget must be a positive number of seconds")
    return timing


def add_match_arguments(p) -> None:
    p.add_argument(
        "--match",
        metavar="params|flops[=N]",
        help="choose every implementation's hidden widths so its trainable parameters (or forward FLOPs) "
        "are closest to N (default: our B-spline KAN's at the workload's widths)",
    )
    p.add_argument("--time-broken", action="store_true", help="also time rows that fail the sanity gate (flagged in the table)")


def resolve_matches(options, registry, impls, work) -> dict:
    """--match: {impl: Match}; prints what was chosen and which rows could not be matched."""
    from kanbench import matching

    if not getattr(options, "match", None):
        return {}
    request = matching.MatchRequest.parse(options.match)
    matches, unmatched = matching.match_all(registry, impls, work.widths, request)
    if matches:
        target = next(iter(matches.values())).target
        err(f"--match {request.metric}: target {target:,.0f}")
    for impl, m in matches.items():
        flag = "" if m.within_tolerance else f" (granularity: {100 * m.error:.1f}% off)"
        built = "".join(f", {k}={v}" for k, v in m.options.items())
        err(f"  {impl}: widths {list(m.widths)}{built}, {m.value:,.0f}{flag}")
    for impl, reason in unmatched.items():
        err(f"  {impl}: not matched ({reason}); measured at {list(work.widths)}")
    return matches


def interleave_config(args):
    """The interleaving of ``--rounds/--processes/--max-live``, ``--min-time`` and ``--min-samples``
    spread over the rounds."""
    import math

    from kanbench.interleave import InterleaveConfig

    return InterleaveConfig(
        rounds=args.rounds,
        processes=args.processes,
        max_live=args.max_live,
        chunk_time=args.min_time / max(args.rounds, 1),
        chunk_min_samples=max(1, math.ceil(args.min_samples / max(args.rounds, 1))),
        memory=not getattr(args, "no_memory", False),
    )


@dataclass
class RunRequest:
    """What ``kanbench run`` (and ``kanbench leaderboard``) measures and how: its options, typed."""

    workload: object  #: kanbench.workload.Workload (--preset/--shape/--batch/--dtype)
    timing: object  #: kanbench.timing.TimingConfig (--min-time/--min-samples/--max-samples/--warmup)
    #: kanbench.interleave.InterleaveConfig; None: rows one after another (--mode sequential, --in-process)
    interleave: Optional[object] = None
    impls: Optional[list] = None  #: --impl (None: every available implementation)
    device: str = "all"
    threads: Optional[int] = None
    implementations: list = field(default_factory=list)  #: --implementations directories, as given
    budget_s: Optional[float] = None
    in_process: bool = False
    memory: bool = True
    match: Optional[str] = None  #: --match as given (parsed after the implementations are selected)
    time_broken: bool = False
    compile: bool = False
    save: bool = True
    out: Optional[str] = None
    results_dir: str = "results"
    strict: bool = False
    format: str = "seed"

    @property
    def interleaved(self) -> bool:
        return self.interleave is not None

    @classmethod
    def from_args(cls, args) -> "RunRequest":
        """The request of a parsed ``kanbench run`` command line; raises ValueError (one line) on a bad value."""
        workload = parse_workload(args)
        timing = _options(args)
        interleaved = args.mode == "interleaved" and not args.in_process
        return cls(
            workload=workload,
            timing=timing,
            interleave=interleave_config(args) if interleaved else None,
            impls=split_impls(args.impl),
            device=args.device,
            threads=args.threads,
            implementations=list(args.implementations),
            budget_s=args.budget,
            in_process=args.in_process,
            memory=not args.no_memory,
            match=getattr(args, "match", None),
            time_broken=args.time_broken,
            compile=args.compile,
            save=not args.no_save,
            out=args.out,
            results_dir=args.results_dir,
            strict=args.strict,
            format=getattr(args, "format", "seed"),
        )


def run(args) -> int:
    from kanbench.render import render_document

    if args.executor == "slurm":
        return submit_from(args, NAME)
    try:
        request = RunRequest.from_args(args)
    except ValueError as exc:
        err(str(exc))
        return EXIT_USAGE
    status, document, path = measure(request)
    if document is None:
        return status
    print(render_document(document, request.format))
    if status == EXIT_INTERRUPTED:
        err(f"interrupted; {len(document.results)} row(s) kept" + (f" in {path}" if path else ""))
        return status
    if path is not None:
        err(f"results written to {path}")
    return status


def measure(request, mode: str = "run"):
    """Measure what ``request`` (a :class:`RunRequest`; an argparse namespace is turned into one)
    selects: (exit status, the ResultsDocument or None, its path or None)."""
    from kanbench import results as results_mod
    from kanbench import runner
    from kanbench.machine import fingerprint, machine_label
    from kanbench.worker import worker_env

    try:
        if not isinstance(request, RunRequest):
            request = RunRequest.from_args(request)
        work = request.workload
        weave = request.interleave
        registry = discover_for(request)
        impls, skipped = select_implementations(registry, request.impls)
        matches = resolve_matches(request, registry, impls, work)
    except ValueError as exc:
        err(str(exc))
        return EXIT_USAGE, None, None
    if not impls:
        err("no implementation to measure")
        return EXIT_FAILED, None, None

    devices, note = resolve_devices(request.device)
    if note and request.device == "all":
        err(note)
    if any(d.startswith("cuda") for d in devices):
        import torch

        if not torch.cuda.is_available():
            err(runner.cuda_absent_reason())

    machine = fingerprint(request.threads)
    plan = runner.RunPlan(
        impls=impls,
        devices=devices,
        workload=work,
        timing=request.timing,
        threads=request.threads,
        extra_dirs=[str(Path(d).resolve()) for d in request.implementations],
        budget_s=request.budget_s,
        isolate=not request.in_process,
        memory=request.memory,
        matches=matches,
        time_broken=request.time_broken,
        compile=request.compile,
    )
    config = {
        "workload": work.to_dict(),
        "timing": request.timing.to_dict(),
        "threads": machine["torch"]["threads"],
        "devices": devices,
        "isolation": "interleaved" if request.interleaved else ("process" if plan.isolate else "in-process"),
        # the CPU rows' worker environment; CUDA rows' workers are not pinned (worker.pins_threads)
        "worker_env": _threading_env(worker_env("cpu")),
        "worker_env_cuda": _threading_env(worker_env("cuda")) if any(d.startswith("cuda") for d in devices) else None,
        "interleave": weave.to_dict() if weave else None,
        "budget_s": request.budget_s,
        "command": runner.command_line(),
        "implementations_dirs": plan.extra_dirs,
        "match": request.match,
        "mode": mode,
    }
    document = results_mod.new_document(machine, config)
    document.skipped = skipped
    path = None
    if request.save:
        try:
            label = ("" if mode == "run" else f"{mode}-") + (work.preset or work.key)
            path = results_mod.reserve_path(request.out, Path(request.results_dir), machine.get("hostname", "host"), label)
        except (results_mod.ResultsError, OSError) as exc:
            err(str(exc))
            return EXIT_USAGE, None, None

    show, start = _progress(sys.stderr)
    jobs = plan.jobs()

    err(
        f"measuring {len(impls)} implementation(s) x {len(devices)} device(s), {work.key}, "
        f"{machine_label(machine, 'cpu', machine['torch']['threads'])}"
        + (
            f"; interleaved: {weave.rounds} rounds of {weave.chunk_time:.3g} s per row, {weave.processes} processes per row"
            if request.interleaved
            else ""
        )
    )
    try:
        if request.interleaved:
            from kanbench.interleave import execute

            def generation(g, n):
                err(f"process {g}/{n} of every row done")

            def ready(g, n):
                err(f"process {g}/{n} of every row warmed up: the rows take turns")

            execute(jobs, weave, document, path, progress=show, on_generation=generation, on_ready=ready)
        else:
            runner.execute(plan, document, path, registry=registry, progress=show, on_start=start)
    except runner.Interrupted:
        return EXIT_INTERRUPTED, document, path
    measured = [r for r in document.results if not r.failed]
    if not measured:
        err("nothing could be measured")
        return EXIT_FAILED, document, path
    _attach_roofline(document, path)
    if request.strict and len(measured) < len(document.results):
        return EXIT_FAILED, document, path
    return EXIT_OK, document, path


def _attach_roofline(document, path) -> None:
    """After the rows: the machine's peaks (measured once per machine and dtype, then cached) and every
    row's achieved GFLOP/s against them; the results file is written again with them."""
    from kanbench import results as results_mod
    from kanbench import roofline

    try:
        roofline.attach(document)
    except Exception as exc:  # the figures are an addition: never lose the measured rows over them
        err(f"no roofline figures: {type(exc).__name__}: {exc}")
        return
    if path is not None:
        results_mod.write_atomic(path, document)


def _threading_env(env: dict) -> dict:
    """The variables of a worker environment that decide threads and memory."""
    return {k: v for k, v in env.items() if k.startswith(("OMP_", "MKL_", "KMP_", "MALLOC_", "KANBENCH_MALLOC"))}
