"""``kanbench list``: the discovered implementations and whether each is available."""

from __future__ import annotations

from kanbench.commands.common import EXIT_OK, EXIT_USAGE, UsageError, add_discovery, err, extra_dirs

NAME = "list"
HELP = "list discovered implementations and whether each is available"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP)
    add_discovery(p)
    p.add_argument("-v", "--verbose", action="store_true", help="also print each implementation's notes")
    p.set_defaults(func=run)


def source_revision(impl: str) -> str:
    """``owner/name@abc1234`` (pinned: yes/no) for rows that ``kanbench install`` provides."""
    from kanbench import sources

    for source in sources.SOURCES.values():
        if impl in source.implementations:
            rec = sources.installed(source.name)
            if rec is None:
                return f"{source.name}: not installed"
            if source.kind == "pypi":
                pinned = source.pypi.split("==")[1]
                return f"{source.name} {rec.revision}" + ("" if rec.revision == pinned else f" (tested: {pinned})")
            tested = "" if rec.revision == source.rev else f" (tested: {source.rev[:7]})"
            return f"{source.name}@{rec.revision[:7]}{tested}"
    return ""


def run(args) -> int:
    from tabulate import tabulate

    from kanbench.discovery import discover

    try:
        registry = discover(extra_dirs(args))
    except UsageError as exc:
        err(str(exc))
        return EXIT_USAGE
    rows = []
    for e in sorted(registry, key=lambda e: e.name):
        spec = e.spec
        rows.append(
            [
                e.name,
                "available" if e.available else "unavailable",
                spec.family if spec else "",
                source_revision(e.name),
                spec.description if spec else "",
                e.origin,
            ]
        )
    headers = ["name", "status", "family", "installed source", "description", "origin"]
    print(tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True))
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
