"""``make mutate``'s driver: an incremental ``mutmut run``, of every configured module or of some.

    python scripts/mutate.py [--max-children N] [--fresh] [MODULE.py ...]

mutmut keeps each mutant's result in ``mutants/`` and, on its own, retests only the mutants of
functions whose source changed. This driver also retests the survivors (and the mutants that
had no test), so a test written against a survivor is credited on the next run, and leaves
killed mutants of unchanged functions killed. ``MODULE.py`` (a path in ``[tool.mutmut]
only_mutate``) limits the run to those modules; every mutant runs only the selected tests
that reach its function (mutmut's per-function test map, collected once and kept).

``--fresh`` removes ``mutants/`` first (a full run; after changing the test selection mutmut
resets every result anyway).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

MUTMUT = str(Path(sys.executable).with_name("mutmut"))
#: results retested on every run: survived (0), no tests (33), not checked yet (None)
RETEST = {None, 0, 33}


def module_name(path: str) -> str:
    """``implementations/better_kan/layers.py`` -> ``implementations.better_kan.layers``."""
    return str(Path(path).with_suffix("")).replace(os.sep, ".")


def generate(max_children: int) -> None:
    """mutmut's mutant generation (the first step of ``mutmut run``), so the results of changed
    functions are reset before this driver reads them."""
    from mutmut.__main__ import create_mutants
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir

    Path("mutants").mkdir(exist_ok=True)
    copy_src_dir()
    copy_also_copy_files()
    create_mutants(max_children)


def pending(modules: list[str]) -> tuple[list[str], int, bool]:
    """(the mutants of ``modules`` (all configured ones when empty) to run, how many there are in
    all, whether none of them has a result yet)."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.utils.file_utils import walk_mutatable_files

    wanted = {module_name(m) for m in modules}
    names, total, untested = [], 0, True
    for path in walk_mutatable_files():
        if wanted and module_name(str(path)) not in wanted:
            continue
        data = SourceFileMutationData(path=path)
        data.load()
        total += len(data.exit_code_by_key)
        names += [k for k, v in data.exit_code_by_key.items() if v in RETEST]
        untested = untested and all(v is None for v in data.exit_code_by_key.values())
    return sorted(names), total, untested


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="source files to mutate (default: every one in [tool.mutmut] only_mutate)")
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--fresh", action="store_true", help="remove mutants/ first")
    args = ap.parse_args()
    from mutmut.configuration import config

    unknown = [m for m in args.modules if not (Path(m).is_file() and config().should_mutate(m))]
    if unknown:
        print(f"mutate: not in [tool.mutmut] only_mutate: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.fresh:
        shutil.rmtree("mutants", ignore_errors=True)
    generate(args.max_children)
    names, total, untested = pending(args.modules)
    print(f"mutate: {len(names)} of {total} mutants to (re)test", flush=True)
    if not names:
        return 0
    if untested and not args.modules:
        names = []  # nothing tested yet: mutmut's own default, without a long command line
    sys.stdout.flush()
    # replace this process: a SIGINT (Ctrl-C, `timeout -s INT`) reaches mutmut, which stops its workers and keeps the results
    os.execv(MUTMUT, [MUTMUT, "run", "--max-children", str(args.max_children), *names])


if __name__ == "__main__":
    sys.exit(main())
