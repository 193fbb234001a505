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
  grid-extension`` (``results/grid-extension/*.json``): exponent per shape and the figure;
- ``seed-table`` and ``seed-table-gpu``: the newest seed-workload tables (``results/*_seed.json``,
  ``results/gpu/*_seed.json``);
- ``accuracy-headline``: our layers, the MLP and the two best public KANs of the newest default tier;
- ``kanbefair``: KANbeFair's published KAN/MLP ratios per parameter band
  (``results/kanbefair/published-ratios.json``) beside ours on its definitions
  (``results/kanbefair/*_accuracy-kanbefair.json``);
- the timing tables of ``kanbench.fragment_runs`` (``large-table``, ``cross-hardware-example``,
  ``variants-cost``, ``compile-seed``, ``roofline``, ``native-goals``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Callable

from kanbench import fragment_runs
from kanbench.fragment_sources import RESULTS, ROOT, _duration, _link, _newest

#: the pages whose marked blocks are generated
PAGES = (
    "README.md",
    "docs/accuracy.md",
    "docs/gpu.md",
    "docs/getting-started.md",
    "docs/better-kan.md",
    "docs/cross-hardware.md",
    "docs/results-files.md",
    "docs/measuring.md",
    "docs/native-kernels.md",
)
BLOCK = re.compile(r"(<!-- kanbench:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- /kanbench:(?P=name) -->)", re.S)


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
        f"{_link(page, RESULTS / 'accuracy.md')}:\n\n" + render.summary_table(records) + "\n\n" + _caveats(records) + "\n"
    )


def accuracy_full(page: str = "README.md") -> str:
    """The newest full-tier accuracy run (``results/*_accuracy-full.json``): its settings, the error
    ratio to the MLP at each budget with its interval, and its caveats."""
    from kanbench import results as results_mod
    from kanbench.accuracy import render

    path = _newest("*_accuracy-full.json")
    if path is None:
        return "(no full-tier accuracy results committed yet: `kanbench accuracy --tier full --executor slurm`)\n"
    raw = json.loads(path.read_text())
    records = [r for r in results_mod.load(path).results if hasattr(r, "task_family")]
    config = (raw.get("config") or {}).get("accuracy") or {}
    budgets = sorted({r.budget_scale for r in records})
    shards = (raw.get("config") or {}).get("shards")
    took = "" if shards else _duration(raw)  # a sharded run's elapsed_s is one shard's
    settings = (
        f"{len({r.impl for r in records})} implementations, {len({r.task for r in records})} tasks, "
        f"{len(config.get('seeds') or [])} seeds, {config.get('trials')} tuning trials per row, at most "
        f"{config.get('steps')} {config.get('optimizer', 'adam')} steps (early stop after {config.get('patience')}), "
        + (
            "budgets of " + ", ".join(f"{b:g}" for b in budgets) + " parameters"
            if config.get("absolute_budgets")
            else "budgets x" + ", x".join(f"{b:g}" for b in budgets)
        )
        + (f"; {shards} Slurm jobs" if shards else "")
    )
    return (
        f"From {_link(page, path)} ({settings}{'; ' + took if took else ''}). Error relative to the MLP's on the "
        "same task, seed and budget (geometric mean; 95% bootstrap interval over tasks and seeds) and the share "
        "of (task, seed) pairs won:\n\n" + render.budget_table(records, budgets) + "\n\n" + _caveats(records) + "\n"
    )


def accuracy_steps(page: str = "README.md") -> str:
    """The convergence check: the newest ``*_accuracy-full-steps-*.json`` (some tasks and budgets of the
    full tier, trained longer) beside the full tier's own runs of the same tasks and budgets."""
    from kanbench import results as results_mod
    from kanbench.accuracy import summary

    longer_path, full_path = _newest("*_accuracy-full-steps-*.json"), _newest("*_accuracy-full.json")
    if longer_path is None or full_path is None:
        return "(no convergence check committed yet)\n"
    longer = [r for r in results_mod.load(longer_path).results if hasattr(r, "task_family")]
    keys = {(r.task, r.budget_scale) for r in longer}
    full = [r for r in results_mod.load(full_path).results if hasattr(r, "task_family") and (r.task, r.budget_scale) in keys]
    impls = [i for i in ("splines-better_kan", "rbf-better_kan") if any(r.impl == i for r in longer)]
    lines = [
        f"{_link(page, longer_path)} trains {len({t for t, _ in keys})} tasks of the full tier at its two largest budgets "
        f"with three times the steps; beside it, the same tasks and budgets from {_link(page, full_path)}:",
        "",
        "| budget | most steps | "
        + " | ".join(f"{i}: error / MLP's [95%]" for i in impls)
        + " | not converged: MLP, "
        + ", ".join(impls)
        + " |",
        "|---|---|" + "---|" * len(impls) + "---|",
    ]
    for budget in sorted({b for _, b in keys}):
        for records in (full, longer):
            steps = max((r.steps for r in records if r.steps), default=0)
            ratios = summary.error_ratios(records, budget_scale=budget)
            cells = [f"{q.ratio:.2f}x [{q.low:.2f}-{q.high:.2f}]" if (q := ratios.get(i)) else "-" for i in impls]
            runs = [r for r in records if r.budget_scale == budget and not r.failed]
            shares = [_share(r.converged is False for r in runs if r.impl == i) for i in ["mlp", *impls]]
            lines.append(f"| {budget:g} | {steps} | " + " | ".join(cells) + " | " + ", ".join(shares) + " |")
    return "\n".join(lines) + "\n"


def _share(values) -> str:
    values = [bool(v) for v in values]
    return f"{sum(values) / len(values):.0%}" if values else "-"


def _caveats(records) -> str:
    """The run's own caveats, counted from its records: convergence, budget distance, edge rates."""
    runs = [r for r in records if not r.failed]
    mlp = [r for r in runs if r.impl == "mlp"]
    errors = [
        (r.flops_error if getattr(r, "match", "params") == "flops" else r.param_error)
        for r in runs
        if (r.flops_error if getattr(r, "match", "params") == "flops" else r.param_error) is not None
    ]
    return (
        f"Caveats, counted in this file: {_share(r.converged is False for r in runs)} of the runs (the MLP's: "
        f"{_share(r.converged is False for r in mlp)}) had their best checkpoint in the last 5% of their steps "
        f'("not converged"); {_share(e <= 0.03 for e in errors)} of the models are within 3% of their budget and '
        f"{_share(e <= 0.10 for e in errors)} within 10% (the rest: families whose width moves in coarse steps, or a task whose smallest model is larger than the budget); "
        f"{_share(r.lr_at_edge for r in runs)} chose a learning rate at an end of the range; "
        f"{len(records) - len(runs)} of {len(records)} runs failed."
    )


def _seed_block(page: str, path: Path) -> str:
    from kanbench import render
    from kanbench import results as results_mod
    from kanbench.machine import machine_label

    doc = results_mod.load(path)
    took = _duration(json.loads(path.read_text()))
    device = "cuda" if any(r.device.startswith("cuda") for r in doc.results) else "cpu"
    torch_version = (doc.machine.get("torch") or {}).get("version", "")
    head = f"{machine_label(doc.machine, device, doc.threads)}, torch {torch_version}; {_link(page, path)}" + (
        f"; {took}" if took else ""
    )
    return f"{head}:\n\n```\n{render.render_document(doc, 'seed')}\n```\n"


def seed_table(page: str = "README.md") -> str:
    """The newest seed-workload run of this project's CPU machine (``results/*_seed.json``), in the
    seed README's table format."""
    path = _newest("*_seed.json")
    return _seed_block(page, path) if path else "(no seed results committed yet: `make bench`)\n"


def seed_table_gpu(page: str = "README.md") -> str:
    """The newest seed-workload run of a GPU machine (``results/gpu/*_seed.json``)."""
    path = _newest("*_seed.json", RESULTS / "gpu")
    return _seed_block(page, path) if path else "(no GPU seed results committed yet: `scripts/device_check.sh`)\n"


def accuracy_headline(page: str = "README.md") -> str:
    """A few rows of the newest default-tier summary: our layers, the MLP and the two best-ranked
    public KANs, with intervals; the full table is in the accuracy guide."""
    from kanbench import results as results_mod
    from kanbench.accuracy import summary

    path = _newest("*_accuracy-default.json")
    if path is None:
        return "  (no default-tier accuracy results committed yet: `make accuracy`)\n"
    records = [r for r in results_mod.load(path).results if hasattr(r, "task_family")]
    ranks = summary.mean_ranks(summary.task_rows(records))
    ratios = summary.error_ratios(records)
    ours = [n for n in ranks if n.endswith("better_kan")]
    public = [n for n in ranks if n not in ours and n != summary.BASELINE][:2]
    lines = [
        f"  From {_link(page, path)} ({len({r.task for r in records})} tasks, {len(ranks)} implementations, "
        f"{len({r.seed for r in records})} seeds). Error relative to the MLP's on the same task and seed "
        "(geometric mean; 95% bootstrap interval over tasks and seeds), mean rank (1 = best):",
        "",
    ]
    for name in ours + public + [summary.BASELINE]:
        if name not in ranks:
            continue
        q = ratios.get(name)
        ratio = "the baseline" if name == summary.BASELINE else (f"{q.ratio:.2f}x [{q.low:.2f}-{q.high:.2f}]" if q else "-")
        lines.append(f"  - `{name}`: error {ratio}, mean rank {ranks[name][0]:.1f} of {len(ranks)}")
    return "\n".join(lines + _headline_full(page) + _headline_scaling(page)) + "\n"


def _headline_full(page: str) -> list:
    """The full tier's error ratios of our layers, lowest and highest over its budgets, with intervals."""
    from kanbench import results as results_mod
    from kanbench.accuracy import summary

    path = _newest("*_accuracy-full.json")
    if path is None:
        return []
    records = [r for r in results_mod.load(path).results if hasattr(r, "task_family")]
    budgets = sorted({r.budget_scale for r in records})
    parts = []
    for name in sorted({r.impl for r in records if r.impl.endswith("better_kan")}, reverse=True):
        qs = sorted(
            (q for q in (summary.error_ratios(records, budget_scale=b).get(name) for b in budgets) if q), key=lambda q: q.ratio
        )
        if qs:
            lo, hi = qs[0], qs[-1]
            parts.append(f"`{name}` {lo.ratio:.2f}x [{lo.low:.2f}-{lo.high:.2f}] to {hi.ratio:.2f}x [{hi.low:.2f}-{hi.high:.2f}]")
    if not parts:
        return []
    return [
        f"  - The full tier ({_link(page, path)}: {len({r.task for r in records})} tasks at "
        f"{len(budgets)} budgets from {budgets[0]:g} to {budgets[-1]:g} parameters): error " + "; ".join(parts)
    ]


def _headline_scaling(page: str) -> list:
    """The grid-extension exponent of our [2,1,1] KAN on the paper's metric, from the newest run."""
    from kanbench.accuracy import grid_scaling

    path = _newest("*.json", RESULTS / "grid-extension")
    if path is None:
        return []
    for raw in json.loads(path.read_text())["runs"]:
        run = grid_scaling.GridRun.from_dict(raw)
        beta = grid_scaling.fit_exponent(run, metric="test_rmedse")
        if list(run.widths) == [2, 1, 1] and beta is not None:
            return [
                f"  - The KAN paper's scaling law ({_link(page, path)}): our [2,1,1] KAN's test error falls as "
                f"G^-{beta:.2f} on the paper's metric up to the interpolation threshold (the paper: about G^-4)"
            ]
    return []


def grid_extension(page: str = "README.md") -> str:
    """The KAN paper's scaling law as measured: every committed grid-extension run (one file per
    optimizer: the paper's LBFGS alone, and LBFGS with the Levenberg-Marquardt refinement), its
    fitted exponents and local exponents, and the newest run's figure."""
    from kanbench.accuracy import grid_scaling

    folder = RESULTS / "grid-extension"
    paths = sorted(folder.glob("*.json"), key=lambda p: p.name)
    if not paths:
        return "(no grid-extension results committed yet: `kanbench accuracy --protocol grid-extension`)\n"
    files = [(path, [grid_scaling.GridRun.from_dict(r) for r in json.loads(path.read_text())["runs"]]) for path in paths]
    newest = paths[-1]
    lines = [
        f"{files[0][1][0].train_points} training points; one file per optimizer "
        + ", ".join(_link(page, path) for path, _ in files)
        + f"; the figure of the newest: {_link(page, newest.with_suffix('.png'))}.",
        "",
        "| implementation | shape | each grid | grids | fitted exponent, test RMSE ~ G^-alpha "
        "| the same on the paper's metric (RMedSE) | interpolation threshold | best test RMSE | best test RMedSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, runs in files:
        for run in runs:
            points = run.points
            alpha = grid_scaling.fit_exponent(run)
            beta = grid_scaling.fit_exponent(run, metric="test_rmedse")
            errors = [p.test_rmse for p in points if p.test_rmse]
            medians = [p.test_rmedse for p in points if p.test_rmedse]
            lines.append(
                f"| {run.impl} | {'x'.join(map(str, run.widths))} | {run.optimizer} | {points[0].grid}-{points[-1].grid} | "
                + ("-" if alpha is None else f"{alpha:.2f}")
                + " | "
                + ("-" if beta is None else f"{beta:.2f}")
                + f" | {'G = ' + str(run.threshold_grid) if run.threshold_grid else 'not reached'} | "
                + (f"{min(errors):.2e}" if errors else "-")
                + " | "
                + (f"{min(medians):.2e}" if medians else "-")
                + " |"
            )
    lines += [
        "",
        "Local exponents of the test RMedSE between consecutive grids (where the power law holds, and where it stops):",
        "",
    ]
    for _, runs in files:
        for run in runs:
            steps = grid_scaling.local_exponents(run)
            if steps:
                lines.append(
                    f"- {run.impl} {'x'.join(map(str, run.widths))}, {run.optimizer}: "
                    + ", ".join(f"G {a}->{b}: {alpha:.1f}" for a, b, alpha in steps)
                )
    figure = newest.with_suffix(".png").relative_to(ROOT).as_posix()
    lines += ["", f"![test RMSE against grid size]({'../' if page.startswith('docs/') else ''}{figure})"]
    return "\n".join(lines) + "\n"


def kanbefair(page: str = "README.md") -> str:
    """KANbeFair's published KAN/MLP error ratios per parameter band beside ours on its definitions."""
    from kanbench import results as results_mod
    from kanbench.accuracy import kanbefair as kbf

    published_path = RESULTS / "kanbefair" / "published-ratios.json"
    ours_path = _newest("*_accuracy-kanbefair.json", RESULTS / "kanbefair")
    if not published_path.exists() or ours_path is None:
        return "(no KANbeFair comparison committed yet: see the accuracy guide)\n"
    published = json.loads(published_path.read_text())
    ours = kbf.our_ratios(results_mod.load(ours_path).results)
    config = (json.loads(ours_path.read_text()).get("config") or {}).get("accuracy") or {}

    def band(b):
        return f"[{b[0]:.0e}, {b[1]:.0e})".replace("e+0", "e")

    def num(x):
        return "-" if x is None else f"{x:.3g}"

    theirs = {(r["task"], tuple(r["band"])): r for r in published["ratios"]}
    lines = [
        f"KANbeFair: {_link(page, published_path)} (from {published['source']}, {published['rows']} rows; "
        f"{published['metric']}). Ours: {_link(page, ours_path)} ({len(config.get('seeds') or [])} seeds, "
        f"{config.get('trials')} tuning trials per row, median over seeds, test MAE; interval: bootstrap over seeds).",
        "",
        "| task | band (parameters) | KANbeFair KAN/MLP | KANbeFair best KAN / best MLP (MAE) | ours KAN/MLP [95%] | ours: best KAN row and MLP (median MAE) |",
        "|---|---|---|---|---|---|",
    ]
    for r in ours:
        t = theirs.get((r.task, tuple(r.band)))
        lines.append(
            f"| {r.task} | {band(r.band)} | {num(t and t['ratio'])} | "
            + (f"{num(t['kan'])} / {num(t['mlp'])}" if t else "-")
            + f" | {num(r.ratio)} [{num(r.interval[0])}-{num(r.interval[1])}] | {r.kan_impl}: {num(r.kan)}, mlp: {num(r.mlp)} |"
        )
    if published.get("tabular"):
        lines += [
            "",
            f"Its tabular datasets, from the same file ({published['tabular_metric']}):",
            "",
            "| dataset | what it is | best KAN / best MLP error rate | KAN/MLP | rows (KAN, MLP) |",
            "|---|---|---|---|---|",
        ]
        for t in published["tabular"]:
            lines.append(
                f"| {t['dataset']} | {t['what']} | {num(t['kan'])} / {num(t['mlp'])} | {num(t['ratio'])} | "
                f"{t['kan_rows']}, {t['mlp_rows']} |"
            )
    return "\n".join(lines) + "\n"


FRAGMENTS: dict[str, Callable[[str], str]] = {
    "accuracy-summary": accuracy_summary,
    "accuracy-full": accuracy_full,
    "accuracy-steps": accuracy_steps,
    "grid-extension": grid_extension,
    "kanbefair": kanbefair,
    "seed-table": seed_table,
    "seed-table-gpu": seed_table_gpu,
    "accuracy-headline": accuracy_headline,
    **fragment_runs.FRAGMENTS,
}


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
