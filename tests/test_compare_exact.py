"""compare_documents end to end on hand-made rows: every field of every verdict, exactly.

Written against the survivors of a mutation run (benchmarks/results/mutation-report.md):
the verdict functions were tested exactly, the plumbing around them (which step judges a
row, which medians it shows, what it normalizes by, which machines differ) was not. The
expected values here are worked out by hand or with plain ``statistics``/``math``/scipy,
never with kanbench's own summaries.
"""

import math
import statistics

import pytest
from scipy.stats import mannwhitneyu, wilcoxon

from kanbench import compare
from kanbench.records import ResultsDocument, RowResult

WL = {"widths": [2, 150, 1], "batch": 32, "dtype": "float32"}
WKEY = "2x150x1-b32-float32"


def row(impl, f, b, *, rounds=None, raw=None, device="cpu", error=None, iqr=(0.1, 0.2), options=None, compile=False):
    """A row with exactly these medians, spreads, per-round medians and raw samples."""
    r = RowResult(
        impl=impl,
        device=device,
        workload=dict(WL),
        forward_ms=f,
        backward_ms=b,
        forward_iqr_ms=iqr[0],
        backward_iqr_ms=iqr[1],
        error=error,
        options=options or {},
        compile=compile,
    )
    if rounds is not None:
        r.rounds = {"forward_ms": list(rounds[0]), "backward_ms": list(rounds[1])}
    if raw is not None:
        r.samples = {"forward_ms": list(raw[0]), "backward_ms": list(raw[1])}
    return r


def document(*rows, isolation=None, machine=None, name=None, commit=""):
    machine = dict(machine or {})
    if commit:
        machine["kanbench"] = {"commit": commit}
    return ResultsDocument(machine=machine, config={"isolation": isolation} if isolation else {}, results=list(rows), name=name)


def one(comparison, impl, phase):
    (pc,) = [r for r in comparison.rows if r.impl == impl and r.phase == phase]
    return pc


UP8 = [1.5 * (1 + 0.01 * i) for i in range(8)]  # eight distinct ratios above 1.5: exact p = 2^-8
FLAT8 = [2.0 * (1 + 0.001 * i) for i in range(8)]  # within 1.01 of 2.0: unchanged


# ----------------------------------------------------------------------------- which step judges


def test_the_two_sides_of_one_ab_run_are_paired_round_by_round():
    base = row("kan", 0.5, 1.0, rounds=([1.0] * 8, [2.0] * 8), raw=([0.5] * 3, [1.0] * 3))
    new = row("kan", 0.75, 1.1, rounds=(UP8, FLAT8), raw=([0.75] * 3, [1.1] * 3))
    c = compare.compare_documents(document(base, isolation="ab-interleaved"), document(new, isolation="ab-interleaved"))
    f = one(c, "kan", "forward")
    logs = [math.log(v) for v in UP8]
    # the medians shown are the raw samples' (not the rounds'); the ratio and p are the rounds'
    assert (f.base_median, f.new_median, f.base_spread, f.new_spread) == (0.5, 0.75, 0.0, 0.0)
    assert f.ratio == pytest.approx(math.exp(statistics.median(logs)), rel=1e-12)
    assert f.p_value == 2.0**-8 and f.verdict == "slower" and f.note == "Wilcoxon over 8 paired rounds"
    b = one(c, "kan", "backward")
    assert b.verdict == "unchanged" and b.p_value is None and b.note == "Wilcoxon over 8 paired rounds"
    assert b.ratio == pytest.approx(math.exp(statistics.median(math.log(v / 2.0) for v in FLAT8)), rel=1e-12)


@pytest.mark.parametrize(
    "isolations, test",
    [
        (("ab-interleaved", None), "auto"),  # only one side from an A/B run
        ((None, None), "auto"),  # two separate runs
        (("interleaved", "interleaved"), "auto"),  # both interleaved, but not against each other
        (("ab-interleaved", "ab-interleaved"), "mw"),  # asked for the unpaired test
    ],
)
def test_rounds_not_paired_in_time_get_the_unpaired_test(isolations, test):
    base = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8))
    new = row("kan", 1.5, 2.0, rounds=(UP8, [2.0] * 8))
    c = compare.compare_documents(document(base, isolation=isolations[0]), document(new, isolation=isolations[1]), test=test)
    f = one(c, "kan", "forward")
    assert f.note == "Mann-Whitney over 8 vs 8 round medians" and f.verdict == "slower"
    assert f.p_value == pytest.approx(mannwhitneyu(UP8, [1.0] * 8, alternative="greater").pvalue, rel=1e-12)
    assert f.ratio == pytest.approx(statistics.median(UP8) / 1.0, rel=1e-12)
    # the unpaired step shows the medians and spreads of the units it compared
    assert (f.base_median, f.new_median, f.base_spread) == (1.0, statistics.median(UP8), 0.0)


def test_asking_for_the_paired_test_pairs_two_separate_files():
    base = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8), raw=([1.0], [2.0]))
    new = row("kan", 1.5, 2.0, rounds=(UP8, [2.0] * 8), raw=([1.5], [2.0]))
    f = one(compare.compare_documents(document(base), document(new), test="paired"), "kan", "forward")
    assert f.note == "Wilcoxon over 8 paired rounds" and f.p_value == 2.0**-8 and f.verdict == "slower"


def test_paired_needs_the_same_number_of_rounds_and_at_least_two():
    base = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8))
    new = row("kan", 1.5, 2.0, rounds=(UP8 + [1.6], [2.0] * 9))
    f = one(compare.compare_documents(document(base), document(new), test="paired"), "kan", "forward")
    # 8 vs 9 rounds cannot be paired: the unpaired test, and the note says why
    assert f.note == "no interleaved rounds to pair: Mann-Whitney on the samples; Mann-Whitney over 8 vs 9 round medians"
    two_b = row("kan", 1.0, 2.0, rounds=([1.0, 1.0], [2.0, 2.0]), raw=([1.0], [2.0]))
    two_n = row("kan", 1.5, 2.0, rounds=([1.5, 1.5], [2.0, 2.0]), raw=([1.5], [2.0]))
    f = one(compare.compare_documents(document(two_b), document(two_n), test="paired"), "kan", "forward")
    assert f.note == "2 paired rounds cannot reach alpha 0.01 (smallest p 0.25): threshold-only"
    assert f.verdict == "slower" and f.p_value is None and f.ratio == 1.5


def test_paired_is_never_used_on_normalized_units():
    docs = [
        document(row("mlp", 1.0, 1.0, rounds=([1.0] * 8, [1.0] * 8)), row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8))),
        document(row("mlp", 1.0, 1.0, rounds=([1.0] * 8, [1.0] * 8)), row("kan", 1.5, 2.0, rounds=(UP8, [2.0] * 8))),
    ]
    f = one(compare.compare_documents(*docs, test="paired", normalize="mlp"), "kan", "forward")
    assert f.note.endswith("Mann-Whitney over 8 vs 8 round medians")


def test_exactly_two_rounds_a_side_are_units_not_one_process():
    base = row("kan", 1.0, 2.0, rounds=([1.0, 1.0], [2.0, 2.0]))
    new = row("kan", 1.5, 2.0, rounds=([1.5, 1.5], [2.0, 2.0]))
    f = one(compare.compare_documents(document(base), document(new)), "kan", "forward")
    assert f.note == "2 vs 2 rounds cannot reach alpha 0.01 (smallest p 0.17): threshold-only"


@pytest.mark.parametrize("side", ["base", "new"])
def test_one_side_without_rounds_is_threshold_only(side):
    with_rounds = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8), iqr=(0.25, 0.5))
    without = row("kan", 1.0, 2.0, iqr=(0.125, 0.5))
    b, n = (without, with_rounds) if side == "base" else (with_rounds, without)
    n.forward_ms = 1.25
    f = one(compare.compare_documents(document(b), document(n)), "kan", "forward")
    assert f.note == "one process per row, no rounds: no independent units, threshold-only verdict"
    assert (f.base_median, f.new_median, f.base_spread, f.new_spread) == (1.0, 1.25, b.forward_iqr_ms, n.forward_iqr_ms)
    assert f.ratio == 1.25 and f.verdict == "slower" and f.p_value is None


# ----------------------------------------------------------------------------- failures


def test_failed_fixed_and_failed_in_both_rows():
    # failed rows may keep partial medians (e.g. over budget): the failure decides, not the numbers
    ok = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8))
    bad_new = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8), error="boom")
    bad_base = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8), error="old")
    for b, n, verdict, note in [
        (ok, bad_new, "failed", "fails in NEW: boom"),
        (bad_base, ok, "fixed", "failed in BASE: old"),
        (bad_base, bad_new, "unchanged", "failed in both"),
    ]:
        c = compare.compare_documents(document(b), document(n))
        for phase in ("forward", "backward"):
            pc = one(c, "kan", phase)
            assert (pc.verdict, pc.note, pc.ratio, pc.p_value) == (verdict, note, None, None)
        assert c.regressed is (verdict == "failed")


@pytest.mark.parametrize("side", ["base", "new"])
def test_a_phase_without_a_median_on_one_side_is_not_compared(side):
    ok = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8))
    half = row("kan", 1.0, None, rounds=([1.0] * 8, []))
    b, n = (half, ok) if side == "base" else (ok, half)
    c = compare.compare_documents(document(b), document(n))
    assert (one(c, "kan", "backward").verdict, one(c, "kan", "backward").note) == ("unchanged", "failed in both")
    assert one(c, "kan", "forward").note == "Mann-Whitney over 8 vs 8 round medians"


# ----------------------------------------------------------------------------- normalization


def _norm_docs():
    base = document(
        row("mlp", 0.5, 1.0),
        row("kan", 1.5, 3.0, iqr=(0.3, 0.6)),
        row("other", 1.0, 1.0, iqr=(None, None)),
        row("kan", 2.0, 4.0, options={"grid_size": 10}, iqr=(0.2, 0.4)),
        row("mlp", 0.25, 0.25, device="cuda"),
        row("kan", 0.5, 0.5, device="cuda"),
    )
    new = document(
        row("mlp", 1.0, 2.0),
        row("kan", 3.6, 6.0, iqr=(0.2, 0.4)),
        row("other", 2.0, 2.0, iqr=(None, None)),
        row("kan", 4.0, 8.0, options={"grid_size": 10}, iqr=(0.2, 0.4)),
        row("mlp", 0.125, 0.25, device="cuda"),
        row("kan", 0.375, 0.5, device="cuda"),
    )
    return base, new


def test_normalized_threshold_only_rows_divide_medians_and_spreads_by_their_runs_mlp():
    c = compare.compare_documents(*_norm_docs(), normalize="mlp")
    assert not [r for r in c.rows if r.impl == "mlp"]  # the yardstick is not compared with itself
    f, b = [r for r in c.rows if r.label == "kan-cpu [2x150x1-b32-float32]"]
    assert (f.base_median, f.base_spread, f.new_median, f.new_spread) == (3.0, 0.6, 3.6, 0.2)
    assert f.ratio == pytest.approx(1.2) and f.verdict == "slower"
    assert (b.base_median, b.base_spread, b.new_median, b.new_spread) == (3.0, 0.6, 3.0, 0.2)
    assert b.ratio == 1.0 and b.verdict == "unchanged"
    other = one(c, "other", "forward")  # no spreads recorded: shown as 0 after dividing
    assert (other.base_median, other.base_spread, other.new_median, other.new_spread) == (2.0, 0.0, 2.0, 0.0)
    # a row with build options is normalized by the MLP (which has none) of its device
    opt = [r for r in c.rows if "grid_size=10" in r.label and r.phase == "forward"][0]
    assert (opt.base_median, opt.new_median, opt.verdict) == (4.0, 4.0, "unchanged")
    assert opt.workload == WKEY + ", grid_size=10" and opt.device == "cpu"
    # each device by its own MLP: cuda kan 0.5/0.25 = 2 -> 0.375/0.125 = 3
    g = [r for r in c.rows if r.device == "gpu" and r.phase == "forward"][0]
    assert (g.base_median, g.new_median, g.ratio, g.verdict) == (2.0, 3.0, 1.5, "slower")
    assert g.label == "kan-gpu [2x150x1-b32-float32]" and g.workload == WKEY


def test_normalized_units_divide_every_round_by_the_runs_mlp():
    mlp_b = row("mlp", 0.5, 1.0, rounds=([0.5] * 8, [1.0] * 8))
    mlp_n = row("mlp", 2.0, 1.0, rounds=([2.0] * 8, [1.0] * 8))
    kan_b = row("kan", 1.0, 2.0, rounds=([1.0] * 8, [2.0] * 8))
    kan_n = row("kan", 8.0, 2.0, rounds=([8.0 * v / 1.5 for v in UP8], [2.0] * 8))
    c = compare.compare_documents(document(mlp_b, kan_b), document(mlp_n, kan_n), normalize="mlp")
    f = one(c, "kan", "forward")
    units_b, units_n = [2.0] * 8, [4.0 * v / 1.5 for v in UP8]  # each round / its run's MLP median
    assert f.base_median == 2.0 and f.new_median == pytest.approx(statistics.median(units_n), rel=1e-12)
    assert f.ratio == pytest.approx(statistics.median(units_n) / 2.0, rel=1e-12)
    assert f.p_value == pytest.approx(mannwhitneyu(units_n, units_b, alternative="greater").pvalue, rel=1e-12)
    assert f.verdict == "slower"
    b = one(c, "kan", "backward")  # 2/1 -> 2/1: unchanged after normalizing
    assert b.ratio == 1.0 and b.verdict == "unchanged"


def test_normalized_units_pair_each_round_with_the_mlps_round():
    """Rounds of one interleaved run were measured in the same second: a machine that slows
    down during the run slows round i of every row alike, and round i over the MLP's round i
    cancels it. Here the machine drifts 1x..2x in both runs; the layer's rounds are 2x the
    MLP's (BASE) and 2.5x (NEW), so every unit is exactly 2 or 2.5 -- and 1.25x is significant."""
    drift = [1.0 + i / 7 for i in range(8)]
    b = document(
        row("mlp", 1.5, 1.0, rounds=(drift, [1.0] * 8)), row("kan", 3.0, 2.0, rounds=([2 * d for d in drift], [2.0] * 8))
    )
    n = document(
        row("mlp", 1.5, 1.0, rounds=(drift[::-1], [1.0] * 8)),
        row("kan", 3.75, 2.0, rounds=([2.5 * d for d in drift[::-1]], [2.0] * 8)),
    )
    f = one(compare.compare_documents(b, n, normalize="mlp"), "kan", "forward")
    assert (f.base_median, f.new_median, f.base_spread, f.new_spread) == pytest.approx((2.0, 2.5, 0.0, 0.0), abs=1e-12)
    assert f.ratio == pytest.approx(1.25, abs=1e-12) and f.verdict == "slower"
    # without the pairing (dividing by the MLP's median) the drift would swamp it
    units_b = [2 * d / 1.5 for d in drift]
    units_n = [2.5 * d / 1.5 for d in drift]
    assert mannwhitneyu(units_n, units_b, alternative="greater").pvalue > 0.01
    # rounds that do not line up (a row with fewer rounds than its MLP): divided by the median
    n.results[1].rounds = {"forward_ms": [2.5 * d for d in drift[:7]], "backward_ms": [2.0] * 7}
    f = one(compare.compare_documents(b, n, normalize="mlp"), "kan", "forward")
    assert f.new_median == pytest.approx(statistics.median([2.5 * d / 1.5 for d in drift[:7]]), rel=1e-12)
    b.results[1].rounds = {"forward_ms": [2 * d for d in drift[:7]], "backward_ms": [2.0] * 7}
    f = one(compare.compare_documents(b, n, normalize="mlp"), "kan", "forward")
    assert f.base_median == pytest.approx(statistics.median([2 * d / 1.5 for d in drift[:7]]), rel=1e-12)


@pytest.mark.parametrize("missing", ["base", "new"])
def test_normalizing_without_an_mlp_row_on_either_side_says_so(missing):
    base, new = _norm_docs()
    doc = base if missing == "base" else new
    doc.results = [r for r in doc.results if not (r.impl == "mlp" and r.device == "cuda")]
    c = compare.compare_documents(base, new, normalize="mlp")
    for g in [r for r in c.rows if r.device == "gpu"]:
        assert (g.verdict, g.note, g.ratio) == ("unchanged", "no MLP row in the same run to normalize by", None)
    # ... and with rounds (the unpaired step) the same
    rounds = ([1.0] * 8, [1.0] * 8)
    b = document(row("mlp", 1.0, 1.0, rounds=rounds), row("kan", 1.0, 1.0, rounds=rounds))
    n = document(row("kan", 1.0, 1.0, rounds=rounds))
    if missing == "base":
        b, n = n, document(row("mlp", 1.0, 1.0, rounds=rounds), row("kan", 1.0, 1.0, rounds=rounds))
    pc = one(compare.compare_documents(b, n, normalize="mlp"), "kan", "forward")
    assert (pc.verdict, pc.note) == ("unchanged", "no MLP row in the same run to normalize by")


def test_failed_and_compiled_mlp_rows_do_not_normalize():
    base = document(row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0))
    new = document(
        row("mlp", 1.0, 1.0, error="died"),
        row("mlp", 1.0, 1.0, compile=True),
        row("kan", 2.0, 2.0),
    )
    pc = one(compare.compare_documents(base, new, normalize="mlp"), "kan", "forward")
    assert pc.note == "no MLP row in the same run to normalize by"


# ----------------------------------------------------------------------------- the comparison


def test_the_comparison_carries_its_settings_names_and_labels():
    base = document(row("mlp", 1.0, 1.0), row("kan", 1.0, 1.0), row("gone", 1.0, 1.0), name="before")
    new = document(row("mlp", 1.0, 1.0), row("kan", 1.0, 1.0), row("fresh", 1.0, 1.0), commit="0123456789abcdef")
    c = compare.compare_documents(base, new, threshold=1.25, alpha=0.05, normalize="mlp")
    assert (c.threshold, c.alpha, c.normalize, c.base_name, c.new_name) == (1.25, 0.05, "mlp", "before", "01234567")
    assert c.only_base == ["gone-cpu [2x150x1-b32-float32]"] and c.only_new == ["fresh-cpu [2x150x1-b32-float32]"]
    pc = one(c, "kan", "forward")
    assert (pc.device, pc.workload, pc.label) == ("cpu", WKEY, "kan-cpu [2x150x1-b32-float32]")
    unnamed = compare.compare_documents(document(row("kan", 1.0, 1.0)), document(row("kan", 1.0, 1.0)))
    assert (unnamed.base_name, unnamed.new_name, unnamed.normalize) == ("BASE", "NEW", None)
    assert (unnamed.threshold, unnamed.alpha) == (1.10, 0.01)


def test_impls_selects_rows_on_both_sides():
    base = document(row("mlp", 1.0, 1.0), row("kan", 1.0, 1.0), row("gone", 1.0, 1.0))
    new = document(row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0), row("fresh", 1.0, 1.0))
    c = compare.compare_documents(base, new, impls=["kan"])
    assert {r.impl for r in c.rows} == {"kan"} and c.only_base == [] and c.only_new == []
    c = compare.compare_documents(base, new, impls=["kan", "gone"])
    assert {r.impl for r in c.rows} == {"kan"} and c.only_base == ["gone-cpu [2x150x1-b32-float32]"]


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(threshold=1.0), "threshold must be above 1.0 (e.g. 1.10 for 10%), got 1.0"),
        (dict(alpha=0.0), "alpha must be between 0 and 1, got 0.0"),
        (dict(alpha=1.0), "alpha must be between 0 and 1, got 1.0"),
        (dict(alpha=1.5), "alpha must be between 0 and 1, got 1.5"),
        (dict(normalize="median"), "unknown normalization 'median'; use 'mlp' or 'auto'"),
        (dict(test="t"), "unknown test 't'; use auto, mw or paired"),
    ],
)
def test_bad_options_are_refused_with_their_message(kw, message):
    d = document(row("kan", 1.0, 1.0))
    with pytest.raises(compare.CompareError) as info:
        compare.compare_documents(d, d, **kw)
    assert str(info.value) == message


def test_auto_normalizes_separate_runs_and_says_how_far_the_mlp_moved():
    """Two runs of an unchanged tree, the second on a machine 30% slower: absolute times call
    every row slower; "auto" compares them with their run's MLP and says the MLP moved."""
    r8 = lambda v: ([v] * 4 + [v * 1.01] * 4, [v] * 4 + [v * 1.01] * 4)  # noqa: E731
    base = document(row("mlp", 1.0, 1.0, rounds=r8(1.0)), row("kan", 2.0, 2.0, rounds=r8(2.0)))
    new = document(row("mlp", 1.3, 1.3, rounds=r8(1.3)), row("kan", 2.6, 2.6, rounds=r8(2.6)))
    absolute = compare.compare_documents(base, new)
    assert absolute.regressed and absolute.notes == [] and absolute.normalize is None
    auto = compare.compare_documents(base, new, normalize="auto")
    assert not auto.regressed and auto.normalize == "mlp" and {r.impl for r in auto.rows} == {"kan"}
    assert auto.notes == [
        "normalized by each run's MLP (--normalize auto: separate runs; --normalize none for absolute times)",
        "the MLP (forward+backward, cpu 2x150x1-b32-float32) took 1.30x its BASE time in NEW",
    ]
    assert "the MLP (forward+backward" in auto.render()
    # the two sides of one A/B run are paired in time: absolute, with the paired test
    ab = compare.compare_documents(
        document(*base.results, isolation="ab-interleaved"), document(*new.results, isolation="ab-interleaved"), normalize="auto"
    )
    assert ab.normalize is None and ab.notes == [] and one(ab, "kan", "forward").note.startswith("Wilcoxon")
    assert compare.compare_documents(base, new, normalize="auto", test="paired").normalize is None


def test_auto_falls_back_to_absolute_times_when_a_row_has_no_mlp():
    base = document(row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0), row("kan", 1.0, 1.0, device="cuda"))
    new = document(row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0), row("kan", 1.0, 1.0, device="cuda"))
    c = compare.compare_documents(base, new, normalize="auto")
    assert c.normalize is None
    assert c.notes == [
        "absolute times: no MLP row in the same run to normalize kan-gpu [2x150x1-b32-float32] by "
        "(--normalize none to silence this)"
    ]
    only_mlp = document(row("mlp", 1.0, 1.0))
    assert compare.compare_documents(only_mlp, only_mlp, normalize="auto").normalize is None
    # impls=["kan"] still holds kan-gpu, which has no MLP
    assert compare.compare_documents(base, new, normalize="auto", impls=["kan"]).normalize is None
    cpu_only = [r for r in base.results if r.device == "cpu"]
    assert compare.compare_documents(document(*cpu_only), document(*cpu_only), normalize="auto").normalize == "mlp"


@pytest.mark.parametrize("mlp_in", ["base", "new"])
def test_auto_needs_the_mlp_on_both_sides(mlp_in):
    rows = [row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0)]
    gpu = [row("mlp", 1.0, 1.0, device="cuda"), row("kan", 2.0, 2.0, device="cuda")]
    with_mlp = document(*rows, *gpu)
    without = document(*rows, gpu[1])
    b, n = (with_mlp, without) if mlp_in == "base" else (without, with_mlp)
    c = compare.compare_documents(b, n, normalize="auto")
    assert c.normalize is None and "kan-gpu [2x150x1-b32-float32]" in c.notes[0]


def test_auto_names_at_most_three_rows_without_an_mlp():
    def docs(n):
        rows = [row("mlp", 1.0, 1.0)] + [row(f"k{i}", 1.0, 1.0, device="cuda") for i in range(n)]
        return document(*rows), document(*rows)

    label = "k{}-gpu [2x150x1-b32-float32]"
    three = ", ".join(label.format(i) for i in range(3))
    by = " by (--normalize none to silence this)"
    start = "absolute times: no MLP row in the same run to normalize "
    assert compare.compare_documents(*docs(3), normalize="auto").notes == [start + three + by]
    assert compare.compare_documents(*docs(4), normalize="auto").notes == [start + three + " and 1 more" + by]
    assert compare.compare_documents(*docs(5), normalize="auto").notes == [start + three + " and 2 more" + by]


def test_auto_ignores_rows_outside_impls_and_on_one_side_only():
    base = document(row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0), row("gone", 1.0, 1.0), row("k", 1.0, 1.0, device="cuda"))
    new = document(row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0), row("k", 1.0, 1.0, device="cuda"))
    assert compare.compare_documents(base, new, normalize="auto", impls=["kan"]).normalize == "mlp"
    assert compare.compare_documents(base, new, normalize="auto").normalize is None  # k has no MLP


def test_auto_reports_each_mlp_it_could_measure():
    """An MLP without a backward median is not reported (nothing to divide); the others still are,
    one line per device, workload and thread count (rows of a file may differ in threads)."""
    half = row("mlp", 1.0, None)
    b = document(half, row("kan", 2.0, 2.0), row("mlp", 1.0, 1.0), row("kan", 1.0, 1.0))
    n = document(row("mlp", 1.0, 1.0), row("kan", 2.0, 2.0), row("mlp", 2.0, 2.0), row("kan", 1.0, 1.0))
    for d in (b, n):
        d.results[2].threads = d.results[3].threads = 2
    c = compare.compare_documents(b, n, normalize="auto")
    assert c.notes[1:] == ["the MLP (forward+backward, cpu 2x150x1-b32-float32, 2 threads) took 2.00x its BASE time in NEW"]
    b.results[0] = row("mlp", 1.0, 1.0)
    c = compare.compare_documents(b, n, normalize="auto")
    assert c.notes[1:] == [
        "the MLP (forward+backward, cpu 2x150x1-b32-float32) took 1.00x its BASE time in NEW",
        "the MLP (forward+backward, cpu 2x150x1-b32-float32, 2 threads) took 2.00x its BASE time in NEW",
    ]


def test_threshold_only_with_a_zero_base_median_has_no_ratio():
    c = compare.compare_documents(document(row("kan", 0.0, 1.0)), document(row("kan", 1.0, 1.0)))
    f = one(c, "kan", "forward")
    assert (f.ratio, f.verdict) == (None, "unchanged") and f.note.startswith("one process per row")


@pytest.mark.parametrize("test", ["auto", "mw", "paired"])
def test_every_named_test_is_accepted(test):
    d = document(row("kan", 1.0, 1.0))
    assert compare.compare_documents(d, d, test=test, normalize=None).rows


# ----------------------------------------------------------------------------- machines


def _machine(model="AMD EPYC", family=25, number=17, gpus=("H100",), torch_version="2.13.0", cuda="12.8"):
    m = {"cpu": {"model": model, "family": family, "model_number": number}, "torch": {"version": torch_version}}
    if cuda:
        m["torch"]["cuda"] = cuda
    if gpus:
        m["gpus"] = [{"name": g} for g in gpus]
    return m


def test_machine_differences_name_each_difference_exactly():
    a = document(machine=_machine())
    b = document(machine=_machine(number=1, gpus=("H200", "H200"), torch_version="2.14.1", cuda="13.0"))
    assert compare.machine_differences(a, b) == [
        "CPU AMD EPYC 25 17 vs AMD EPYC 25 1",
        "GPU H100 vs H200 H200",
        "torch 2.13.0 vs 2.14.1",
        "CUDA 12.8 vs 13.0",
    ]
    assert compare.machine_differences(a, document(machine=_machine(family=23))) == ["CPU AMD EPYC 25 17 vs AMD EPYC 23 17"]
    assert compare.machine_differences(a, document(machine=_machine())) == []


def test_different_allocators_are_a_machine_difference():
    kept, system = (
        "glibc, freed memory kept (mmap threshold 2 GiB, trim threshold 2 GiB)",
        "system default (KANBENCH_MALLOC=system)",
    )
    a = document(RowResult(impl="mlp", device="cpu", allocator=kept), machine=_machine())
    b = document(RowResult(impl="mlp", device="cpu", allocator=system), machine=_machine())
    assert compare.machine_differences(a, b) == [f"allocator {kept} vs {system}"]
    # rows of older files have no allocator: not compared
    assert compare.machine_differences(a, document(RowResult(impl="mlp", device="cpu"), machine=_machine())) == []


def test_machine_fields_a_file_lacks_are_not_compared():
    a = document(machine=_machine())
    assert compare.machine_differences(a, document(machine=_machine(gpus=(), cuda=None))) == []
    assert compare.machine_differences(document(machine={}), a) == []
    no_torch = _machine()
    del no_torch["torch"]
    assert compare.machine_differences(a, document(machine=no_torch)) == []


# ----------------------------------------------------------------------------- verdict edges


def test_paired_verdict_edges():
    base = [1.0] * 8
    # a ratio exactly at the threshold is not beyond it (no test is run)
    assert compare.compare_paired(base, [2.0] * 8, 2.0, 0.01)[1:3] == (None, "unchanged")
    assert compare.compare_paired([2.0] * 8, base, 2.0, 0.01)[1:3] == (None, "unchanged")
    # faster, significant
    down = [1 / v for v in UP8]
    ratio, p, verdict, _ = compare.compare_paired(base, down, 1.10, 0.01)
    assert (p, verdict) == (2.0**-8, "faster") and ratio < 1
    # p exactly at alpha is not below it: 8 rounds slower, the smallest one faster -> W+ = 44 of 45, p = 2/512
    mixed = [1.2 + 0.01 * i for i in range(9)]
    mixed[0] = 1 / 1.2
    p_ref = wilcoxon([math.log(v) for v in mixed], alternative="greater").pvalue
    assert p_ref == 2 / 512
    assert compare.compare_paired([1.0] * 9, mixed, 1.10, 2 / 512)[1:3] == (2 / 512, "not significant")
    assert compare.compare_paired([1.0] * 9, mixed, 1.10, 2 / 512 + 1e-9)[2] == "slower"
    # rounds with a zero or negative median are dropped before pairing
    ratio, p, verdict, note = compare.compare_paired(base + [0.0, -1.0, 1.0], UP8 + [1.5, -3.0, 0.0], 1.10, 0.01)
    assert note == "Wilcoxon over 8 paired rounds" and p == 2.0**-8


def test_unpaired_verdict_edges():
    ones, twos, halves = [1.0] * 6, [2.0] * 6, [0.5] * 6
    assert compare.compare_units(ones, twos, 2.0, 0.01)[1:3] == (None, "unchanged")  # ratio == threshold
    assert compare.compare_units(ones, halves, 2.0, 0.01)[1:3] == (None, "unchanged")  # ratio == 1/threshold
    lo, hi = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5], [1.8, 2.1, 1.35, 2.3, 2.4, 2.5]
    p_up = mannwhitneyu(hi, lo, alternative="greater").pvalue
    assert compare.compare_units(lo, hi, 1.10, p_up)[2] == "not significant"  # p == alpha
    assert compare.compare_units(lo, hi, 1.10, p_up * 1.0001)[2] == "slower"
    p_down = mannwhitneyu(lo, hi, alternative="less").pvalue
    assert compare.compare_units(hi, lo, 1.10, p_down)[1:3] == (p_down, "not significant")
    assert compare.compare_units(hi, lo, 1.10, p_down * 1.0001)[2] == "faster"
    # no usable base: an empty side, a zero or negative base median
    for base, new in (([1.0, 2.0, 3.0], []), ([], [1.0]), ([0.0] * 3, [1.0] * 3), ([-1.0] * 3, [1.0] * 3)):
        assert compare.compare_units(base, new, 1.10, 0.01) == (None, None, "unchanged", "no samples")


def test_round_ratios_use_the_mlp_measured_in_the_rows_own_batch():
    mlp = row("mlp", 1.0, 1.0, rounds=([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]))
    kan = row("kan", 4.0, 4.0, rounds=([4.0, 6.0, 8.0], [4.0, 4.0, 4.0]))
    assert kan.round_ratios(mlp, "forward") == [4.0, 6.0, 8.0]
    kan.extra["baseline_rounds"] = {"forward_ms": [2.0, 3.0, 4.0], "backward_ms": [2.0, 2.0, 2.0]}
    assert kan.round_ratios(mlp, "forward") == [2.0, 2.0, 2.0]  # its batch's own MLP
    assert kan.round_ratios(row("other", 1.0, 1.0, rounds=([1.0] * 3, [1.0] * 3)), "forward") == [4.0, 6.0, 8.0]
    assert kan.round_ratios(row("mlp", 1.0, 1.0, rounds=([1.0] * 2, [1.0] * 2)), "backward") == [2.0, 2.0, 2.0]
    kan.extra.clear()
    assert kan.round_ratios(row("mlp", 1.0, 1.0, rounds=([1.0] * 2, [1.0] * 2)), "forward") == []  # 3 vs 2 rounds
    assert kan.round_ratios(row("mlp", 1.0, 1.0, rounds=([1.0, 0.0, 1.0], [1.0] * 3)), "forward") == []  # a zero round
    assert row("kan", 1.0, 1.0).round_ratios(mlp, "forward") == []  # no rounds
