"""Figures in the README and the manual come from committed results files (kanbench/fragments.py):
a generated block that differs from what its results file gives fails here."""

from __future__ import annotations

import pytest

from kanbench import fragments


@pytest.mark.parametrize("page", fragments.PAGES)
def test_every_generated_block_matches_its_results_file(page):
    text = (fragments.ROOT / page).read_text()
    found = fragments.blocks(text)
    assert found, f"{page} has no generated block"
    for name, body in found:
        assert name in fragments.FRAGMENTS, f"{page}: unknown block {name}"
        assert body == fragments.FRAGMENTS[name](page), f"{page}: block {name} is out of date (make fragments)"


def test_the_accuracy_findings_are_generated_where_they_are_shown():
    readme = dict(fragments.blocks((fragments.ROOT / "README.md").read_text()))
    assert {"accuracy-headline", "seed-table"} <= set(readme)
    names = dict(fragments.blocks((fragments.ROOT / "docs/accuracy.md").read_text()))
    assert {"accuracy-summary", "grid-extension", "kanbefair"} <= set(names)
    assert "x [" in readme["accuracy-headline"]  # every ratio with its interval


def test_update_rewrites_only_marked_blocks(monkeypatch, tmp_path):
    monkeypatch.setitem(fragments.FRAGMENTS, "demo", lambda page: "new\n")
    text = "a 1.5x\n<!-- kanbench:demo -->\nold 2.0x\n<!-- /kanbench:demo -->\nb\n<!-- kanbench:other -->\nx\n<!-- /kanbench:other -->\n"
    out = fragments.update(text)
    assert out == text.replace("old 2.0x\n", "new\n")
    page = tmp_path / "page.md"
    page.write_text(text)
    monkeypatch.setattr(fragments, "ROOT", tmp_path)
    monkeypatch.setattr(fragments, "PAGES", ("page.md",))
    assert fragments.main(["--check"]) == 1 and page.read_text() == text  # stale: says so, writes nothing
    assert fragments.main([]) == 0 and page.read_text() == out
    assert fragments.main(["--check"]) == 0


def test_a_goal_is_met_only_when_its_whole_interval_is():
    from kanbench.fragment_runs import goal_verdict

    assert goal_verdict((0.86, 0.85, 0.89), 0.9) == "met"
    assert goal_verdict((0.88, 0.85, 0.93), 0.9) == "median under, interval not"
    assert goal_verdict((0.96, 0.93, 0.97), 0.9) == "not met"
    assert goal_verdict((0.9, 0.9, 0.9), 0.9) == "met"


def test_the_native_goals_table_is_generated_on_the_native_kernels_page():
    text = (fragments.ROOT / "docs" / "native-kernels.md").read_text()
    assert "<!-- kanbench:native-goals -->" in text
    assert "native-goals" in fragments.FRAGMENTS and "docs/native-kernels.md" in fragments.PAGES
