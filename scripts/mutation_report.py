"""Summarize a ``mutmut run`` (``make mutate``) as markdown: the score per module and every
surviving mutant with its diff, so each can be answered with a test or an explanation.

    python scripts/mutation_report.py [--out FILE.md]

Reads ``mutmut results --all true`` and ``mutmut show NAME``; run from the repository root
after ``mutmut run``.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

MUTMUT = [str(Path(sys.executable).with_name("mutmut"))]


def statuses() -> dict[str, str]:
    out = subprocess.run(MUTMUT + ["results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def module_of(name: str) -> str:
    """``kanbench.stats.x_summarize__mutmut_3`` -> ``kanbench.stats``."""
    return name.split(".x")[0].split(".xǁ")[0] if ".x" in name else name.rsplit(".", 1)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--diffs", action="store_true", help="include every survivor's diff")
    args = ap.parse_args()
    found = statuses()
    by_module: dict = collections.defaultdict(collections.Counter)
    for name, status in found.items():
        by_module[module_of(name)][status] += 1
    lines = [
        "# Mutation testing (mutmut)",
        "",
        "| module | mutants | killed | survived | no tests | timeout | not checked | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for module, c in sorted(by_module.items()):
        total = sum(c.values())
        tested = c["killed"] + c["survived"] + c["timeout"]
        score = f"{100 * (c['killed'] + c['timeout']) / tested:.0f}%" if tested else "-"
        lines.append(
            f"| {module} | {total} | {c['killed']} | {c['survived']} | {c['no tests']} | {c['timeout']} | "
            f"{c['not checked']} | {score} |"
        )
    lines += [
        "",
        "Score = (killed + timeout) / (killed + survived + timeout); 'no tests': no selected test runs that function.",
        "",
    ]
    survivors = sorted(n for n, s in found.items() if s == "survived")
    lines += [f"## Surviving mutants ({len(survivors)})", ""]
    for name in survivors:
        lines.append(f"- `{name}`")
        if args.diffs:
            diff = subprocess.run(MUTMUT + ["show", name], capture_output=True, text=True).stdout
            lines += [
                "",
                "```diff",
                *[l for l in diff.splitlines() if l.startswith(("+", "-")) and not l.startswith(("+++", "---"))],
                "```",
            ]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
