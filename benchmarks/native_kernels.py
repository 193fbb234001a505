"""Our networks on their native operator against the param-matched MLP, one layer at a time and on the PyTorch path.

    python benchmarks/native_kernels.py [--out benchmarks/results/native-kernels-cpu-DATE.md]
                                        [--presets seed,science,science-deep,mnist,large] [--rounds 8]
                                        [--impls mlp,splines-better_kan,...]

For each workload, one interleaved ``kanbench run`` (worker processes, rounds alternating between
rows, the machine's fingerprint in the results file) of the MLP, both of our networks as one
native operator (the default where better_kan._C is built), the same networks on the native
operator one layer at a time (``*-layered``) and, when named, on the PyTorch path
(``*-torch-path``; benchmarks/variants). Ratios are to the MLP *measured in the same run*, per
interleaved round (the median over rounds, with the 95% interval of that median), for the forward
alone and for forward + backward (a training step). The goals (:data:`kanbench.fragment_runs.NATIVE_GOALS`) are the network
operator's: at most the given multiple of the MLP's forward + backward per workload, and of the
MLP's forward at the seed workload. The results files go next to the markdown, in a folder of
its name.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kanbench import results as results_mod  # noqa: E402
from kanbench.fragment_runs import NATIVE_GOALS as GOALS  # noqa: E402
from kanbench.fragment_runs import NATIVE_PHASES as PHASES  # noqa: E402
from kanbench.fragment_runs import goal_verdict, round_ratios  # noqa: E402

IMPLS = ("mlp", "splines-better_kan", "rbf-better_kan", "splines-layered", "rbf-layered")


def ratios(path: Path) -> dict:
    """:func:`kanbench.fragment_runs.round_ratios` of the run, with each row's medians (ms) under
    ``_times`` and its parameter count under ``_params``."""
    doc = results_mod.load(path)
    rows = doc.rows()
    out = round_ratios(doc)
    out["_times"] = {r.impl: (r.median("forward"), r.median("backward")) for r in rows}
    out["_params"] = {r.impl: f"{r.params:,}" if r.params is not None else "-" for r in rows}
    return out


def measure(preset: str, out: Path, rounds: int, min_time: float, impls=IMPLS) -> Path:
    """One interleaved run of ``impls`` at ``preset``; the results file."""
    path = out / f"{preset}.json"
    path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "kanbench", "run", "--implementations", str(ROOT / "benchmarks" / "variants")]
    cmd += ["--impl", ",".join(impls), "--device", "cpu", "--preset", preset, "--rounds", str(rounds)]
    cmd += ["--processes", "2", "--min-time", str(min_time), "--match", "params", "--out", str(path)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return path


def render(measured: dict, date: str, command: str) -> str:
    lines = [
        f"# Native kernels against the MLP ({date})",
        "",
        f"Measured by `{command}` on this project's 2-core CI-class VM (torch CPU, 2 threads): one interleaved",
        "`kanbench run --match params` per workload (every row's hidden widths chosen so its trainable parameters",
        "match our B-spline KAN's at the workload's widths); ratios are per interleaved round to that param-matched",
        "MLP of the same run, the median over rounds with its 95% interval. The parameter counts are in the table.",
        "Our rows run the whole network as one native operator;",
        "`*-layered` is the same network on the native operator one layer at a time, `*-torch-path` without",
        "its native operator (what a machine without a C++ compiler runs).",
        "",
        "| workload | row | params | forward us | backward us | forward / MLP | fwd+bwd / MLP |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for preset, r in measured.items():
        times, params = r["_times"], r["_params"]
        f, b = times["mlp"]
        lines.append(f"| {preset} | mlp | {params['mlp']} | {f * 1e3:.1f} | {b * 1e3:.1f} | 1 | 1 |")
        for impl in [name for name in r if not name.startswith("_")]:
            f, b = times[impl]
            cells = []
            for name in PHASES:
                m = r[impl].get(name)
                cells.append(f"{m[0]:.2f}x [{m[1]:.2f}-{m[2]:.2f}]" if m else "-")
            lines.append(f"| {preset} | {impl} | {params[impl]} | {f * 1e3:.1f} | {b * 1e3:.1f} | {cells[0]} | {cells[1]} |")
    lines += ["", "## Goals", ""]
    for (preset, phase), goal in GOALS.items():
        for impl in ("splines-better_kan", "rbf-better_kan"):
            m = measured.get(preset, {}).get(impl, {}).get(phase)
            if m:
                verdict = goal_verdict(m, goal)
                lines.append(
                    f"- {preset}, {impl}: {phase} {m[0]:.2f}x [{m[1]:.2f}-{m[2]:.2f}] the MLP, goal <= {goal}x: {verdict}"
                )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="markdown to write (default benchmarks/results/native-kernels-cpu-DATE.md)")
    p.add_argument("--presets", default="seed,science,science-deep,mnist,large")
    p.add_argument("--impls", default=",".join(IMPLS), help="rows (benchmarks/variants names too)")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--min-time", type=float, default=2.0)
    args = p.parse_args(argv)
    date = datetime.date.today().isoformat()
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"native-kernels-cpu-{date}.md")
    files = out.parent / out.stem
    files.mkdir(parents=True, exist_ok=True)
    measured = {}
    for preset in args.presets.split(","):
        measured[preset] = ratios(measure(preset, files, args.rounds, args.min_time, args.impls.split(",")))
    command = "python benchmarks/native_kernels.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out.write_text(render(measured, date, command.strip()))
    print(out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
