"""Every measured figure a page states comes from a file it cites.

Outside the generated blocks (checked against their results files by tests/test_fragments.py) and
code blocks, a paragraph of the README or the manual that states a ratio (``1.08x``) or a time in
ms/us must cite a results file or a benchmark note (``results/...`` or ``benchmarks/results/...``)
in that paragraph or the one before it (a table's caption), and each figure must be one of that
file's numbers, rounded as the page rounds it -- or, for a results file, the quotient of two of
its rows' medians (forward, backward or their sum), as the ratio columns are. A figure retyped from
memory, or left behind when its file was replaced, fails here.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
FIGURE = re.compile(r"(?<![\w.])(\d+\.\d+)(?:x\b| ?(?:ms|us|µs)\b)|\| (\d+\.\d+)x? (?=\|)")
CITATION = re.compile(r"(?:\{repo\}`|\]\(|`)(?:\.\./)?((?:results|benchmarks/results)/[^`)\s]+)")
NUMBER = re.compile(r"\d+\.\d+|\d+")


def paragraphs(text: str) -> list[str]:
    text = re.sub(r"<!-- kanbench:(\S+) -->.*?<!-- /kanbench:\1 -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.split(r"\n\s*\n", text)


def _rounded(values) -> set[str]:
    out = set()
    for v in values:
        for digits in range(4):
            out.add(f"{round(v, digits):.{digits}f}")
    return out


def _ratios(doc) -> list[float]:
    """The ratios a results document supports: quotients of two rows' forward, backward or
    forward+backward medians, and the medians of their per-round quotients (what the tables print)."""
    import statistics

    rows = [r for r in (doc.get("results", []) if isinstance(doc, dict) else []) if isinstance(r, dict)]
    medians, rounds = [], []
    for row in rows:
        f, b = row.get("forward_ms"), row.get("backward_ms")
        if isinstance(f, (int, float)) and isinstance(b, (int, float)) and f > 0 and b > 0:
            medians += [f, b, f + b]
        r = row.get("rounds") or {}
        if r.get("forward_ms") and r.get("backward_ms"):
            rf, rb = r["forward_ms"], r["backward_ms"]
            rounds.append((rf, rb, [x + y for x, y in zip(rf, rb)]))
    out = [a / b for a, b in itertools.permutations(medians, 2)]
    for one, other in itertools.permutations(rounds, 2):
        for a, b in zip(one, other):
            if len(a) == len(b) and all(b):
                out.append(statistics.median(x / y for x, y in zip(a, b)))
    return out


def numbers_of(path: Path) -> set[str]:
    """The figures a cited file supports: its numbers (rounded to 0-3 decimals) and, for a results
    JSON, every quotient of two of its row medians."""
    files = [path] if path.is_file() else sorted(p for p in path.glob("*") if p.suffix in (".md", ".json"))
    found: set[str] = set()
    for file in files:
        text = file.read_text(errors="ignore")
        found |= _rounded(float(m) for m in NUMBER.findall(text))
        if file.suffix == ".json":
            try:
                found |= _rounded(_ratios(json.loads(text)))
            except ValueError:
                continue
    return found


def unsupported(page: str) -> list[str]:
    problems = []
    parts = paragraphs((ROOT / page).read_text())
    for i, para in enumerate(parts):
        figures = [a or b for a, b in FIGURE.findall(para)]
        if not figures:
            continue
        cited = [ROOT / c for c in CITATION.findall(para + "\n" + (parts[i - 1] if i else ""))]
        cited = [c for c in cited if c.exists()]
        if not cited:
            problems.append(f"{page}: {', '.join(figures)} with no results file cited: {para.strip()[:120]!r}")
            continue
        support = set().union(*(numbers_of(c) for c in cited))
        missing = [f for f in figures if f not in support]
        if missing:
            names = ", ".join(c.relative_to(ROOT).as_posix() for c in cited)
            problems.append(f"{page}: {', '.join(missing)} not in {names}: {para.strip()[:120]!r}")
    return problems


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_is_in_the_file_it_cites(page):
    problems = unsupported(page)
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_retyped_figure(tmp_path, monkeypatch):
    doc = {"results": [{"forward_ms": 1.0, "backward_ms": 3.0}, {"forward_ms": 2.0, "backward_ms": 2.0}]}
    results = tmp_path / "results"
    results.mkdir()
    (results / "run.json").write_text(json.dumps(doc))
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    page = tmp_path / "page.md"
    page.write_text("From {repo}`results/run.json`: 1.00x and 0.50 ms.\n\nA figure from nowhere: 1.37x.\n")
    problems = unsupported("page.md")
    assert len(problems) == 1 and "1.37 not in results/run.json" in problems[0]
    page.write_text("From {repo}`results/run.json`: 2.00x, 1.00x and 7.25 ms.\n")
    (problem,) = unsupported("page.md")
    assert "7.25 not in results/run.json" in problem
