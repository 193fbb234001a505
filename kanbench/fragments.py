"""Generated fragments of the README and the manual: figures come from committed results files, never retyped.

A page marks a fragment with two comments::

    <!-- kanbench:accuracy-summary -->
    ...generated text...
    <!-- /kanbench:accuracy-summary -->

``python -m kanbench.fragments`` (``make fragments``) rewrites every marked block of the README and
the manual from the newest committed results file it names; ``tests/test_fragments.py`` fails when
a block differs from what its results file gives (a number typed by hand, or a results file
replaced without regenerating). Fragments:

- ``accuracy-summary``: the summary table of the newest default-tier accuracy run
  (``results/*_accuracy-default.json``), with its source file, tier settings and duration;
- ``grid-extension``: the KAN paper's scaling law as measured by ``kanbench accuracy --protocol
  grid-extension`` (``results/grid-extension/*.json``): exponent per shape and the figure.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
#: the pages whose marked blocks are generated
PAGES = ("README.md", "docs/accuracy.md")
BLOCK = re.compile(r"(<!-- kanbench:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /kanbench:(?P=name) -->)", re.S)


def _newest(pattern: str, folder: Path = RESULTS) -> Optional[Path]:
    found = sorted(folder.glob(pattern), key=lambda p: p.name)
    return found[-1] if found else None


def _duration(doc: dict) -> str:
    """The run's wall time (``config.elapsed_s``, written by kanbench accuracy), or ""."""
    elapsed = (doc.get("config") or {}).get("elapsed_s")
    if not isinstance(elapsed, (int, float)):
        return ""
    minutes, seconds = divmod(int(round(elapsed)), 60)
    return f"{minutes} min {seconds:02d} s"


def _link(page: str, path: Path, text: str = "") -> str:
    """A link to a repository file from ``page``: markdown from the README, the manual's ``{repo}`` role
    from docs/ (its target relative to the repository root)."""
    rel = path.relative_to(ROOT).as_posix()
    if page.startswith("docs/"):
        return f"{{repo}}`{text} <{rel}>`" if text else f"{{repo}}`{rel}`"
    return f"[{text or rel}]({rel})"


def accuracy_summary(page: str = "README.md") -> str:
    """The newest default-tier accuracy run's summary table, with its source and settings."""
    from kanbench import results as results_mod
    from kanbench.accuracy import render

    path = _newest("*_accuracy-default.json")
    if path is None:
        return "(no default-tier accuracy results committed yet: `make accuracy`)\n"
    doc = results_mod.load(path)
    raw = json.loads(path.read_text())
    records = [r for r in doc.results if hasattr(r, "task_family")]
    config = (raw.get("config") or {}).get("accuracy") or {}
    impls = len({r.impl for r in records})
    tasks = len({r.task for r in records})
    took = _duration(raw)
    settings = (
        f"{impls} implementations, {tasks} tasks, {len(config.get('seeds') or [])} seeds, "
        + (f"{config['trials']} tuning trials per row" if config.get("trials") else f"learning rates {config.get('lrs')}")
        + f", at most {config.get('steps')} {config.get('optimizer', 'adam')} steps"
        + (f" (early stop after {config['patience']})" if config.get("patience") else "")
    )
    return (
        f"From {_link(page, path)} ({settings}{'; ' + took if took else ''}); every table in "
        f"{_link(page, RESULTS / 'accuracy.md')}:\n\n" + render.summary_table(records) + "\n"
    )


def grid_extension(page: str = "README.md") -> str:
    """The KAN paper's scaling law as measured: the fitted exponent per shape, and the figure."""
    from kanbench.accuracy import grid_scaling

    path = _newest("*.json", RESULTS / "grid-extension")
    if path is None:
        return "(no grid-extension results committed yet: `kanbench accuracy --protocol grid-extension`)\n"
    doc = json.loads(path.read_text())
    lines = [
        f"From {_link(page, path)} ({doc['runs'][0]['train_points']} training points, "
        f"{doc['runs'][0]['steps']} LBFGS iterations per grid; the figure: {_link(page, path.with_suffix('.png'))}):",
        "",
        "| implementation | shape | grids | fitted exponent (test RMSE ~ G^-alpha) | interpolation threshold | best test RMSE |",
        "|---|---|---|---|---|---|",
    ]
    for r in doc["runs"]:
        points = [grid_scaling.GridPoint(**p) for p in r["points"]]
        run = grid_scaling.GridRun(r["impl"], r["task"], r["widths"], r["spline_order"], r["train_points"], r["steps"], points)
        alpha = grid_scaling.fit_exponent(run)
        errors = [p.test_rmse for p in points if p.test_rmse]
        lines.append(
            f"| {r['impl']} | {'x'.join(map(str, r['widths']))} | {points[0].grid}-{points[-1].grid} | "
            + ("-" if alpha is None else f"{alpha:.2f}")
            + f" | {'G = ' + str(run.threshold_grid) if run.threshold_grid else 'not reached'} | "
            + (f"{min(errors):.2e}" if errors else "-")
            + " |"
        )
    figure = path.with_suffix(".png").relative_to(ROOT).as_posix()
    lines += ["", f"![test RMSE against grid size]({'../' if page.startswith('docs/') else ''}{figure})"]
    return "\n".join(lines) + "\n"


FRAGMENTS: dict[str, Callable[[str], str]] = {"accuracy-summary": accuracy_summary, "grid-extension": grid_extension}


def blocks(text: str) -> list[tuple[str, str]]:
    """[(name, body)] of the marked blocks in ``text``."""
    return [(m.group("name"), m.group("body")) for m in BLOCK.finditer(text)]


def update(text: str, page: str = "README.md") -> str:
    """``text`` (of ``page``) with every marked block regenerated (unknown names are left alone)."""

    def replace(m):
        name = m.group("name")
        if name not in FRAGMENTS:
            return m.group(0)
        return m.group(1) + FRAGMENTS[name](page) + m.group(4)

    return BLOCK.sub(replace, text)


def main(argv=None) -> int:
    """Rewrite the marked blocks of :data:`PAGES`; ``--check``: exit 1 when any is stale."""
    argv = list(sys.argv[1:] if argv is None else argv)
    stale = []
    for page in PAGES:
        path = ROOT / page
        text = path.read_text()
        new = update(text, page)
        if new != text:
            stale.append(page)
            if "--check" not in argv:
                path.write_text(new)
    if "--check" in argv and stale:
        print(f"generated blocks out of date in {', '.join(stale)}: run make fragments", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
