"""``kanbench compare``: two results files, a verdict per row and phase; exit 1 on a regression."""

from __future__ import annotations

from pathlib import Path

from kanbench.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, err, split_impls

NAME = "compare"
HELP = "compare two results files; exit 1 when something got slower"


def add_verdict_options(p) -> None:
    """Options shared by ``compare`` and ``ab``."""
    p.add_argument(
        "--threshold", type=float, default=1.10, help="ratio NEW/BASE above which a row can be 'slower' (default 1.10)"
    )
    p.add_argument("--alpha", type=float, default=0.01, help="significance level of the test (default 0.01)")
    p.add_argument("--only-changed", action="store_true", help="list only rows that changed")
    p.add_argument(
        "--test",
        choices=["auto", "mw", "paired"],
        default="auto",
        help="mw: Mann-Whitney U on the round medians; paired: Wilcoxon on per-round ratios (rounds paired in "
        "time); auto (default): paired for the two sides of one A/B run, else mw",
    )


def print_comparison(comparison, args) -> int:
    from kanbench import compare

    print(compare.render(comparison, only_changed=args.only_changed))
    return EXIT_FAILED if comparison.regressed else EXIT_OK


def setup_arguments(sub) -> None:
    p = sub.add_parser(
        NAME,
        help=HELP,
        description="Ratio of medians NEW/BASE per row and phase; 'slower' needs the ratio above the threshold AND "
        "a significant one-sided test on the rounds (Mann-Whitney U on round medians; Wilcoxon on the rounds of "
        "an A/B run). Exit status: 0 ok, 1 regression, 2 unusable input.",
    )
    p.add_argument("base", metavar="BASE")
    p.add_argument("new", metavar="NEW")
    p.add_argument(
        "--normalize",
        choices=["auto", "none", "mlp"],
        default="auto",
        help="mlp: divide each row's round medians by its run's MLP median (same device and workload) first, so "
        "a machine that got slower between the runs is not a regression; none: absolute times; auto (default): "
        "mlp when every compared row has its run's MLP on both sides, else none (the note under the table says which)",
    )
    p.add_argument("--impl", action="append", metavar="A,B", help="compare only these implementations")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse files from different machines or software (CPU, GPU, torch, CUDA) unless normalized by the MLP",
    )
    add_verdict_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from kanbench import compare
    from kanbench import results as results_mod

    try:
        base, new = results_mod.load(args.base), results_mod.load(args.new)
        comparison = compare.compare_documents(
            base,
            new,
            threshold=args.threshold,
            alpha=args.alpha,
            normalize=None if args.normalize == "none" else args.normalize,
            impls=split_impls(args.impl),
            test=args.test,
            strict=args.strict,
        )
    except (results_mod.ResultsError, compare.CompareError) as exc:
        err(str(exc))
        return EXIT_USAGE
    comparison.base_name = Path(args.base).stem
    comparison.new_name = Path(args.new).stem
    return print_comparison(comparison, args)
