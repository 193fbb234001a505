"""``kanbench leaderboard``: every available implementation, param-matched, on each device.

The rows are measured like ``kanbench run`` (interleaved, sanity gate first) after
``--match params`` (default) chose each implementation's hidden widths; the accuracy column
comes from the accuracy suite's results (``kanbench accuracy``, ``--accuracy FILE``): each
implementation's mean rank over its tasks and its win rate against the MLP. Prints the markdown leaderboard
(:mod:`kanbench.leaderboard`), writes the results file (mode ``leaderboard``) and, with
``--markdown PATH``, the table for a README.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kanbench.commands import run as run_cmd
from kanbench.commands.common import EXIT_INTERRUPTED, EXIT_USAGE, err

NAME = "leaderboard"
HELP = "every available implementation, param-matched, sorted by forward+backward time"


def setup_arguments(sub) -> None:
    p = sub.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    run_cmd.add_run_arguments(p)
    p.add_argument(
        "--accuracy",
        default="auto",
        metavar="FILE|auto|none",
        help="the accuracy-suite results (kanbench accuracy) whose mean rank and win rate against the MLP fill the "
        "accuracy column (default auto: the newest *accuracy*.json in --results-dir)",
    )
    p.add_argument(
        "--workloads",
        metavar="A,B",
        help="one board per workload, then a summary across them: preset names ('users': the users' workloads, "
        "seed,science,science-deep,mnist,ffn,large), your own as widths=8,64,1,batch=256,dtype=float32, or a JSON "
        "file of them; overrides --preset",
    )
    p.add_argument("--markdown", metavar="PATH", help="also write the leaderboard's markdown to PATH")
    p.set_defaults(func=run, match="params", device="cpu")


def accuracy_file(choice: str, results_dir: str):
    """The accuracy results file the leaderboard's accuracy column reads: ``--accuracy FILE``, or for
    ``auto`` the newest default-tier run in the results directory (``*accuracy-default*.json``),
    else the newest ``*accuracy*.json`` (None: no column)."""
    if choice == "none":
        return None
    if choice != "auto":
        return Path(choice)
    for pattern in ("*accuracy-default*.json", "*accuracy*.json"):
        found = sorted(Path(results_dir).glob(pattern), key=lambda p: p.name)
        if found:
            return found[-1]
    return None


@dataclass(frozen=True)
class WorkloadChoice:
    """One board of ``--workloads``: a preset, or the user's own widths, batch and dtype."""

    preset: str = "seed"
    shape: Optional[str] = None  #: "8,64,1"; None: the preset's
    batch: Optional[int] = None
    dtype: Optional[str] = None

    @property
    def label(self) -> str:
        if self.shape is None:
            return self.preset
        return f"widths={self.shape} batch={self.batch} dtype={self.dtype}"


_CUSTOM_KEYS = {"widths": "widths", "shape": "widths", "batch": "batch", "dtype": "dtype"}


def _custom(fields: dict, where: str) -> WorkloadChoice:
    """A custom workload from its fields (widths required; batch 32 and float32 by default)."""
    from kanbench import workload as workload_mod
    from kanbench.commands.common import UsageError

    if not fields.get("widths"):
        raise UsageError(f"--workloads: {where} has no widths (e.g. widths=8,64,1,batch=256,dtype=float32)")
    shape = ",".join(str(w) for w in fields["widths"])
    try:
        w = workload_mod.resolve("seed", workload_mod.parse_shape(shape), int(fields.get("batch", 32)), fields.get("dtype"))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--workloads: {where}: {exc}") from None
    return WorkloadChoice("seed", ",".join(map(str, w.widths)), w.batch, w.dtype)


def _from_file(path: str) -> list:
    """Workloads from a JSON file: one object or a list of them, each {"widths": [...], "batch": N,
    "dtype": "..."} or {"preset": "name"}."""
    from kanbench.commands.common import UsageError

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--workloads {path}: {exc}") from None
    out = []
    for i, item in enumerate(data if isinstance(data, list) else [data]):
        if not isinstance(item, dict):
            raise UsageError(f"--workloads {path}: item {i} is not an object")
        if "preset" in item:
            out.extend(parse_workloads(str(item["preset"])))
        else:
            out.append(_custom(item, f"{path} item {i}"))
    return out


def parse_workloads(text: str) -> list:
    """``--workloads``: preset names ('users' expands), custom workloads written
    ``widths=8,64,1,batch=256,dtype=bfloat16`` among them, and JSON workload files; a list of
    :class:`WorkloadChoice`. Anything else raises UsageError with one line."""
    from kanbench.commands.common import UsageError
    from kanbench.workload import PRESETS, USER_WORKLOADS

    choices: list = []
    current: Optional[dict] = None
    key = None

    def flush():
        nonlocal current
        if current is not None:
            text = ",".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in current.items())
            choices.append(_custom(current, text))
        current = None

    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if "=" in token:
            name, value = (part.strip() for part in token.split("=", 1))
            if name not in _CUSTOM_KEYS:
                raise UsageError(f"--workloads: unknown field {name!r} (widths=, batch=, dtype=)")
            key = _CUSTOM_KEYS[name]
            if current is None or key in current:
                flush()
                current = {}
            current[key] = [value] if key == "widths" else value
        elif current is not None and key == "widths" and token.isdigit():
            current["widths"].append(token)
        else:
            flush()
            if token == "users":
                choices.extend(WorkloadChoice(n) for n in USER_WORKLOADS)
            elif token in PRESETS:
                choices.append(WorkloadChoice(token))
            elif token.endswith(".json"):
                choices.extend(_from_file(token))
            else:
                raise UsageError(
                    f"unknown workload {token!r}; known: users, {', '.join(PRESETS)}, "
                    "a custom one (widths=8,64,1,batch=256,dtype=float32) or a JSON workload file"
                )
    flush()
    if not choices:
        raise UsageError("--workloads is empty")
    return list(dict.fromkeys(choices))


def run(args) -> int:
    from kanbench import leaderboard
    from kanbench import results as results_mod

    if args.executor == "slurm":
        from kanbench.commands.executor import submit_from

        return submit_from(args, NAME)
    started = time.monotonic()
    if args.workloads:
        from kanbench.commands.common import UsageError

        try:
            presets = parse_workloads(args.workloads)
        except UsageError as exc:
            err(str(exc))
            return EXIT_USAGE
    else:
        presets = [None]  # the --preset/--shape/--batch/--dtype of the command line
    source = accuracy_file(args.accuracy, args.results_dir)
    accuracy = None
    if source is not None:
        try:
            accuracy = leaderboard.accuracy_column(results_mod.load(source))
            err(f"accuracy column from {source}")
        except (results_mod.ResultsError, OSError) as exc:
            err(f"no accuracy column: {exc}")
    texts, docs, status = [], [], 0
    given = (args.shape, args.batch, args.dtype)  # the command line's, for the presets
    for preset in presets:
        if preset is not None:
            args.preset = preset.preset
            args.shape, args.batch, args.dtype = (preset.shape, str(preset.batch), preset.dtype) if preset.shape else given
        if len(presets) > 1:
            err(f"workload {preset.label} ({presets.index(preset) + 1} of {len(presets)})")
        status, document, path = run_cmd.measure(args, mode="leaderboard")
        if document is None:
            return status
        if source is not None and accuracy is not None:
            document.config["accuracy_source"] = str(source)
            if path is not None:
                results_mod.write_atomic(path, document)
        docs.append(document)
        texts.append(leaderboard.render(document, accuracy=accuracy))
        if status == EXIT_INTERRUPTED:
            break
    text = "\n\n".join(texts) + "\n\n" + extras(docs, args)
    print(text)
    if args.markdown:
        try:
            Path(args.markdown).write_text(text + "\n")
        except OSError as exc:
            err(f"cannot write {args.markdown}: {exc}")
            return EXIT_USAGE
    err(f"leaderboard took {time.monotonic() - started:.0f} s")
    return status


def extras(docs, args) -> str:
    """Under the boards: the summary across workloads (several), and the published claims checked."""
    from kanbench import claims, multiboard

    parts = []
    if len(docs) > 1:
        placed = multiboard.boards(docs)
        parts += ["### Across workloads: rank band (f+b / MLP)", "", multiboard.summary(placed), ""]
        if args.markdown:
            fig = multiboard.figure(placed, Path(args.markdown).with_suffix("") / "workloads.png", multiboard.not_ranked(docs))
            if fig:
                parts += [f"![every workload's board]({Path(fig).parent.name}/{Path(fig).name})", ""]
    verdicts, unmeasurable = [], set()
    for v in (v for doc in docs for v in claims.check(doc)):
        if v.status.startswith("not measurable"):  # once per claim, not once per workload
            if v.claim in unmeasurable:
                continue
            unmeasurable.add(v.claim)
        verdicts.append(v)
    if verdicts:
        parts += ["### Published claims, measured", "", claims.render(verdicts)]
    return "\n".join(parts)
