"""``kanbench ab``: two source trees measured interleaved on this machine, then compared."""

from __future__ import annotations

import sys
from pathlib import Path

from kanbench.commands.common import (
    EXIT_NOTHING,
    EXIT_USAGE,
    UsageError,
    add_discovery,
    add_selection,
    err,
    extra_dirs,
    resolve_devices,
    split_impls,
)
from kanbench.commands.compare import add_verdict_options, print_comparison
from kanbench.commands.run import add_workload_arguments, parse_workload

NAME = "ab"
HELP = "measure two source trees interleaved on this machine and compare them"


def setup_arguments(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="A/B mode: worker processes per side (--workers, default 3) for each row, taking turns measuring short chunks, so that drift of "
        "the machine hits both sides alike. A side is a git ref or a directory -- holding implementations/ (this repository's layout) or a "
        "Python package whose kanbench.implementations entry points are that side's implementations -- or pip:REQUIREMENT.",
    )
    p.add_argument(
        "--base",
        required=True,
        metavar="REF|DIR|pip:REQ",
        help="the reference: a git ref of --repo (e.g. HEAD~1, origin/main), a directory, or pip:REQUIREMENT (e.g. pip:mykan-pkg==1.2)",
    )
    p.add_argument("--new", default=None, metavar="REF|DIR|pip:REQ", help="the candidate (default: the working tree of --repo)")
    p.add_argument(
        "--repo",
        default=None,
        metavar="DIR",
        help="the git repository whose refs and working tree the sides name (default: the one holding the current directory, "
        "else kanbench's own)",
    )
    add_selection(p, device_default="cpu", impl_default="every one available on both sides")
    add_workload_arguments(p, preset_default="gate")
    p.add_argument("--rounds", type=int, default=12, help="interleaved rounds per side (default 12)")
    p.add_argument("--chunk-time", type=float, default=0.2, metavar="S", help="seconds per chunk (default 0.2)")
    p.add_argument("--workers", type=int, default=3, help="worker processes per side, taking the rounds in turn (default 3)")
    p.add_argument("--warmup", type=float, default=0.25, metavar="S")
    p.add_argument(
        "--base-extra",
        action="append",
        default=[],
        metavar="DIR",
        help="an implementations directory added to the base side only (repeatable)",
    )
    p.add_argument(
        "--new-extra",
        action="append",
        default=[],
        metavar="DIR",
        help="an implementations directory added to the new side only (repeatable)",
    )
    p.add_argument(
        "--out-dir", default="results/ab", metavar="DIR", help="where both sides' results files go (default results/ab)"
    )
    p.add_argument("--no-save", action="store_true")
    add_verdict_options(p)
    add_discovery(p)
    p.set_defaults(func=run)


def _select(base, new, common, requested) -> list[str]:
    """Implementations available on both sides (the shared policy: unknown names exit 2)."""
    from kanbench.discovery import discover, forget_site_modules

    regs = []
    for side in (base, new):
        regs.append(discover(side.dirs(common), builtin=False, entry_points=False, site_dirs=side.site_dirs))
        forget_site_modules(side.site_dirs)  # the other side imports its own build of the same package
    both = [e.name for e in regs[1].available() if e.name in {x.name for x in regs[0].available()}]
    if requested is None:
        if not both:
            from kanbench.ab import NothingToCompare

            raise NothingToCompare("no implementation is available on both sides: nothing to compare")
        return both
    known = set(regs[0].names()) | set(regs[1].names())
    unknown = [n for n in requested if n not in known]
    if unknown:
        raise UsageError(f"unknown implementation(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in requested:
        if name not in both:
            err(f"skipping {name}: not available on both sides")
    chosen = [n for n in requested if n in both]
    if not chosen:
        from kanbench.ab import NothingToCompare

        raise NothingToCompare("no implementation is available on both sides: nothing to compare")
    return chosen


def run(args) -> int:
    from kanbench import ab, compare
    from kanbench import results as results_mod
    from kanbench.machine import fingerprint
    from kanbench.timing import TimingConfig

    base = new = None
    try:
        work = parse_workload(args)
        plan = ab.ABPlan(
            impls=[],
            devices=[],
            workload=work,
            rounds=args.rounds,
            chunk_time=args.chunk_time,
            workers=args.workers,
            warmup=TimingConfig(warmup_time=args.warmup),
            threads=args.threads,
            common_dirs=extra_dirs(args),
        )
        plan.check_test(args.alpha, args.test)
        repo = ab.project_root(args.repo)
        base = ab.resolve_side(args.base, args.base_extra, "--base", repo)
        new = ab.resolve_side(args.new, args.new_extra, "--new", repo)
        plan.impls = _select(base, new, plan.common_dirs, split_impls(args.impl))
    except (ValueError, ab.ABError) as exc:
        for side in (base, new):
            if side is not None:
                side.cleanup()
        err(str(exc))
        return EXIT_NOTHING if isinstance(exc, ab.NothingToCompare) else EXIT_USAGE
    try:
        devices, note = resolve_devices(args.device)
        if note and args.device == "all":
            err(note)
        plan.devices = devices
        machine = fingerprint(args.threads)
        err(
            f"A/B: {base.name} vs {new.name}: {len(plan.impls)} implementation(s) x {len(devices)} device(s), "
            f"{work.key}, {args.rounds} interleaved rounds of {args.chunk_time:g} s per side, {args.workers} worker(s) per side"
        )

        def progress(i, n, b, w):
            from kanbench.render import fmt_ms_precise

            def cell(r):
                if r.failed:
                    return f"{r.error_kind}: {r.error}"
                return f"fwd {fmt_ms_precise(r.forward_ms)} bwd {fmt_ms_precise(r.backward_ms)} ms"

            print(f"[{i}/{n}] {b.label:<28} base {cell(b)} | new {cell(w)}", file=sys.stderr, flush=True)

        base_doc, new_doc = ab.run(plan, base, new, machine, progress)
    finally:
        base.cleanup()
        new.cleanup()
    if not args.no_save:
        out_dir = Path(args.out_dir)
        for key, doc in (("base", base_doc), ("new", new_doc)):
            path = results_mod.reserve_path(None, out_dir, machine.get("hostname", "host"), f"ab-{key}-{work.preset or work.key}")
            results_mod.write_atomic(path, doc)
            err(f"{key} results written to {path}")
    try:
        comparison = compare.compare_documents(base_doc, new_doc, threshold=args.threshold, alpha=args.alpha, test=args.test)
    except compare.CompareError as exc:
        err(str(exc))
        return EXIT_USAGE
    return print_comparison(comparison, args)
