"""benchmarks/ratio_estimators.py: the estimators on hand-made rounds, and extract -> evaluate
on results files written by the harness's own types."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from kanbench import results
from kanbench.records import ResultsDocument, RowResult

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def est():
    spec = importlib.util.spec_from_file_location("ratio_estimators", ROOT / "benchmarks" / "ratio_estimators.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# rounds 3 and 4 measured while the MLP ran 2x slow, the layer only 1.25x
ROW = [4.0, 4.4, 5.0, 5.0]
MLP = [2.0, 2.0, 4.0, 4.0]


def test_estimators_on_hand_made_rounds(est):
    assert est.median_of_round_ratios(ROW, MLP) == pytest.approx((1.25 + 2.0) / 2)
    assert est.quiet_rounds(1.25)(ROW, MLP) == pytest.approx(2.1)  # rounds 1-2 only: 2.0, 2.2
    assert est.quiet_rounds(2.0)(ROW, MLP) == est.median_of_round_ratios(ROW, MLP)
    assert est.fastest_rounds(ROW, MLP) == 2.0


def test_largest_deviation_is_over_every_row(est):
    runs = [{"a": {"row": [2.0], "mlp": [1.0]}, "b": {"row": [3.0], "mlp": [1.0]}} for _ in range(2)]
    runs.append({"a": {"row": [2.2], "mlp": [1.0]}, "b": {"row": [3.0], "mlp": [1.0]}})
    assert est.largest_deviation(runs, est.median_of_round_ratios) == pytest.approx(0.1)


def _run_file(path: Path, ratio: float) -> None:
    rounds = {"forward_ms": [1.0, 1.0, 1.0], "backward_ms": [1.0, 1.0, 1.0]}
    mlp = RowResult(impl="mlp", device="cpu", forward_ms=1.0, backward_ms=1.0, n_samples=3, rounds=rounds)
    layer = RowResult(
        impl="splines-better_kan",
        device="cpu",
        forward_ms=ratio,
        backward_ms=ratio,
        n_samples=3,
        rounds={k: [ratio] * 3 for k in rounds},
    )
    for r in (mlp, layer):
        r.samples = {k: list(v) for k, v in r.rounds.items()}
    results.write_atomic(
        path, ResultsDocument(machine={"timestamp": "2026-11-29T10:00:00+00:00"}, config={}, results=[mlp, layer])
    )


def test_extract_then_evaluate(est, tmp_path):
    group = tmp_path / "g"
    group.mkdir()
    for i, ratio in enumerate((2.0, 2.0, 2.1)):
        _run_file(group / f"seed-{i}.json", ratio)
    out = tmp_path / "rounds.json"
    assert est.main(["extract", f"{group}=pinned", "--out", str(out)]) == 0
    (g,) = json.loads(out.read_text())
    assert g["group"] == "pinned" and g["started"] == "2026-11-29T10:00:00+00:00"
    assert g["runs"]["seed"][2]["splines-better_kan"] == {"row": [4.2] * 3, "mlp": [2.0] * 3}
    table = est.evaluate([g])
    assert "| 10:00 pinned | seed | 3 | 5.0% |" in table
    assert "**1 of 1**" in table  # 5.0% is within the goal
