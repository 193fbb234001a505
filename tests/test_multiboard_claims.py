"""The multi-workload leaderboard: presets, rank bands from round intervals, published claims checked."""

import pytest

from kanbench import claims, multiboard
from kanbench.records import ResultsDocument, RowResult
from kanbench.workload import PRESETS, USER_WORKLOADS
from tests.conftest import run_cli


def test_the_users_workloads_have_their_documented_shapes():
    expect = {
        "seed": ((2, 150, 1), 32),
        "science": ((2, 5, 1), 1000),
        "science-deep": ((4, 4, 2, 1), 1000),
        "mnist": ((784, 64, 10), 128),
        "ffn": ((128, 512, 128), 256),
        "ffn-gpu": ((512, 2048, 512), 4096),
        "large": ((1000, 1000, 1), 100),
    }
    for name, (widths, batch) in expect.items():
        assert (PRESETS[name].widths, PRESETS[name].batch, PRESETS[name].preset) == (widths, batch, name)
    assert USER_WORKLOADS == ("seed", "science", "science-deep", "mnist", "ffn", "large")


def _row(impl, fwd_rounds, bwd_rounds, preset="seed", device="cpu"):
    r = RowResult(impl=impl, device=device, workload={"widths": [2, 150, 1], "batch": 32, "dtype": "float32", "preset": preset})
    r.forward_ms, r.backward_ms = sorted(fwd_rounds)[len(fwd_rounds) // 2], sorted(bwd_rounds)[len(bwd_rounds) // 2]
    r.n_samples = len(fwd_rounds)
    r.samples = {"forward_ms": list(fwd_rounds), "backward_ms": list(bwd_rounds)}
    r.rounds = {"forward_ms": list(fwd_rounds), "backward_ms": list(bwd_rounds)}
    return r


def _doc(rows):
    return ResultsDocument(machine={}, config={"mode": "leaderboard"}, results=rows)


def test_rank_bands_join_rows_whose_intervals_overlap():
    mlp = _row("mlp", [1.0] * 12, [1.0] * 12)
    a = _row("a", [2.0] * 12, [2.0] * 12)  # exactly 2x in every round
    b = _row("b", [1.9, 2.1] * 6, [1.9, 2.1] * 6)  # 1.9x-2.1x: overlaps a
    c = _row("c", [3.0] * 12, [3.0] * 12)
    placed = multiboard.place(_doc([c, b, a, mlp]), [c, b, a, mlp], "seed")
    by = {p.impl: p for p in placed}
    assert [p.impl for p in placed] == ["mlp", "a", "b", "c"] or [p.impl for p in placed] == ["mlp", "b", "a", "c"]
    assert by["mlp"].band == (1, 1) and by["c"].band == (4, 4)
    assert by["a"].band == (2, 3) and by["b"].band == (2, 3) and by["a"].band_text == "2-3"
    assert by["a"].ratio == pytest.approx(2.0) and (by["a"].low, by["a"].high) == (2.0, 2.0)
    text = multiboard.summary({"seed": placed})
    assert "| c " in text and "4 (3.00x)" in text


def test_the_median_interval_uses_binomial_order_statistics():
    values = list(range(1, 13))  # n = 12: the 95% interval of the median is (3rd, 10th)
    assert claims.median_interval(values) == (3, 10)
    assert claims.median_interval([5.0]) == (5.0, 5.0)
    assert claims.median_interval([]) == (None, None)


def test_a_claim_that_does_not_hold_is_shown_as_not_holding():
    claim = claims.Claim("fast", "slow", 3.0, "forward", "any", "3x faster", "README, line 1")
    slow, fast = _row("slow", [2.0] * 12, [1.0] * 12), _row("fast", [1.0] * 12, [1.0] * 12)
    (v,) = claims.check(_doc([slow, fast]), [claim])
    assert v.measured == pytest.approx(2.0) and v.status == "does not hold"
    assert "claimed 3x faster than slow (forward, any); measured 2.00x [2.00-2.00]" in v.line()
    (v,) = claims.check(_doc([slow, fast]), [claims.Claim("fast", "slow", 1.5, "training step", "any", "q", "w")])
    assert v.measured == pytest.approx(1.5) and v.status == "holds"  # (2+1)/(1+1)


def test_gpu_claims_are_not_measurable_without_gpu_rows_and_missing_rivals_are_named():
    gpu_claim = claims.Claim("fast", "slow", 3.0, "forward", "gpu", "q", "w")
    (v,) = claims.check(_doc([_row("fast", [1.0], [1.0])]), [gpu_claim])
    assert v.status.startswith("not measurable here") and v.measured is None
    (v,) = claims.check(_doc([_row("fast", [1.0], [1.0])]), [claims.Claim("fast", "slow", 3.0, "forward", "any", "q", "w")])
    assert v.status == "not measured (slow not in this run)"
    gpu = [_row("fast", [1.0] * 4, [1.0] * 4, device="cuda"), _row("slow", [4.0] * 4, [1.0] * 4, device="cuda")]
    (v,) = claims.check(_doc(gpu), [gpu_claim])
    assert v.status == "holds" and v.measured == pytest.approx(4.0)


def test_every_shipped_claim_quotes_its_source():
    assert len(claims.CLAIMS) >= 5
    for c in claims.CLAIMS:
        assert c.quote and c.where and c.factor > 0 and c.phase in claims.PHASES and c.device in ("gpu", "cpu", "any")


def test_an_unknown_workload_is_one_line_and_exit_2():
    proc = run_cli("leaderboard", "--workloads", "seed,nope", "--no-save")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("kanbench: unknown workload 'nope'; known: users, seed, large")


def test_a_board_whose_intervals_overlap_everywhere_is_not_a_ranking():
    """The committed six-workload leaderboard: at the large workload most rows' bands span more than
    half the board, so that board is drawn and listed as not a ranking; the others are rankings."""
    from pathlib import Path

    from kanbench import multiboard
    from kanbench import results as results_mod

    root = Path(__file__).resolve().parent.parent / "results"
    files = sorted(root.glob("20261130T19*_vm_leaderboard-*.json")) + sorted(root.glob("20261130T2*_vm_leaderboard-large.json"))
    if len(files) < 6:
        pytest.skip("the six-workload leaderboard files are not committed")
    assert multiboard.not_ranked([results_mod.load(f) for f in files]) == frozenset({"large"})
