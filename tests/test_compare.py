"""The regression gate, A/B mode, cross-hardware tables and exports (behaviour, not speed)."""

import copy
import json
import random
import statistics
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from kanbench import compare, cross_hardware, export, results
from kanbench.ab import ABError, resolve_side
from tests.conftest import ROOT, run_cli

WL = {"widths": [2, 150, 1], "batch": 32, "dtype": "float32", "pool": 1000, "seed": 0, "preset": "seed"}


def record(impl, fwd, bwd, n=60, noise=0.03, device="cpu", seed=0, samples=True, error=None, rounds=12):
    """A row as an interleaved run writes it: raw samples, and the medians of ``rounds`` rounds."""
    rng = random.Random(zlib.crc32(repr((impl, fwd, bwd, seed)).encode()))  # not hash(): it is salted per process
    f = [fwd * (1 + rng.gauss(0, noise)) for _ in range(n)]
    b = [bwd * (1 + rng.gauss(0, noise)) for _ in range(n)]
    rec = {
        "impl": impl,
        "device": device,
        "workload": WL,
        "forward_ms": sorted(f)[n // 2] if not error else None,
        "backward_ms": sorted(b)[n // 2] if not error else None,
        "forward_iqr_ms": fwd * noise,
        "backward_iqr_ms": bwd * noise,
        "n_samples": n,
        "samples": {"forward_ms": f if samples else [], "backward_ms": b if samples else []},
        "forward_peak_bytes": 1000,
        "backward_peak_bytes": 2000,
        "params": 10,
        "trainable_params": 10,
        "error": error,
        "error_kind": "crash" if error else None,
    }
    if rounds and samples and not error:
        size = n // rounds
        rec["rounds"] = {
            f"{phase}_ms": [sorted(v[i * size : (i + 1) * size])[size // 2] for i in range(rounds)]
            for phase, v in (("forward", f), ("backward", b))
        }
    return rec


def doc(records, cpu="AMD EPYC", host="h1", ts="2026-11-28T10:00:00+00:00", commit="a" * 40, gpus=None, threads=2):
    machine = {
        "hostname": host,
        "timestamp": ts,
        "cpu": {"model": cpu},
        "torch": {"threads": threads},
        "kanbench": {"version": "0.1.0", "commit": commit, "dirty": False},
    }
    if gpus:
        machine["gpus"] = [{"name": g} for g in gpus]
        machine["torch"]["cuda_devices"] = gpus
    return {
        "schema": 1,
        "kind": "kanbench-results",
        "machine": machine,
        "config": {"workload": WL, "threads": threads},
        "results": records,
        "skipped": [],
        "complete": True,
    }


def scaled(d, factor, impls=None, seed=1):
    out = copy.deepcopy(d)
    out["results"] = [
        record(
            r["impl"],
            r["forward_ms"] * (factor if impls is None or r["impl"] in impls else 1),
            r["backward_ms"] * (factor if impls is None or r["impl"] in impls else 1),
            seed=seed,
        )
        for r in d["results"]
    ]
    return out


BASE = doc([record("mlp", 1.0, 2.0), record("kan", 3.0, 4.0), record("other", 5.0, 5.0)])


def typed(d):
    """The typed document of a test's dict (the dicts stay editable in the tests)."""
    return results.ResultsDocument.from_dict(results.validate(copy.deepcopy(d)))


def compare_documents(base, new, **kw):
    return compare.compare_documents(typed(base), typed(new), **kw)


def verdicts(c):
    return {(r.impl, r.phase): r.verdict for r in c.rows}


def test_slower_needs_ratio_and_significance():
    new = scaled(BASE, 1.25, impls={"kan"})
    c = compare_documents(BASE, new)
    v = verdicts(c)
    assert v[("kan", "forward")] == v[("kan", "backward")] == "slower"
    assert v[("mlp", "forward")] == "unchanged"
    assert c.regressed
    assert "REGRESSION: 2 slower" in compare.render(c)


def test_faster_and_unchanged():
    new = scaled(BASE, 0.7, impls={"kan"}, seed=3)
    c = compare_documents(BASE, new)
    assert verdicts(c)[("kan", "forward")] == "faster"
    assert not c.regressed
    same = scaled(BASE, 1.0, seed=4)
    assert not compare_documents(BASE, same).regressed


def test_big_ratio_from_noise_is_not_significant():
    """Enough units to reach alpha (12 vs 12 rounds: smallest p 3.7e-7), a 1.2x ratio of medians,
    but rounds so noisy that the two sides overlap: the test, not the sample size, says no."""
    base = doc([record("kan", 3.0, 3.0, n=120, seed=1)])
    new = doc([record("kan", 3.0, 3.0, n=120, seed=2)])
    base["results"][0]["rounds"]["forward_ms"] = [float(v) for v in range(1, 13)]  # median 6.5
    new["results"][0]["rounds"]["forward_ms"] = [1.5, 2.5, 3.5, 4.5, 5.5, 7.7, 7.9, 8.5, 9.5, 10.5, 11.5, 12.5]  # 7.8
    c = compare_documents(base, new)
    row = [r for r in c.rows if r.phase == "forward"][0]
    assert compare.min_p_unpaired(12, 12) < 0.01
    assert row.ratio is not None and row.p_value is not None and row.p_value >= 0.01
    assert row.verdict == "not significant", row


def test_one_process_rows_get_a_threshold_only_verdict_that_says_so():
    """Thousands of steps of one process are not independent: no test on them."""
    base = doc([record("kan", 3.0, 4.0, rounds=0)])
    new = doc([record("kan", 3.6, 4.0, rounds=0, seed=5)])
    row = [r for r in compare_documents(base, new).rows if r.phase == "forward"][0]
    assert row.verdict == "slower" and row.p_value is None and "no independent units" in row.note


def test_too_few_rounds_for_alpha_say_so():
    base = doc([record("kan", 3.0, 4.0, rounds=3)])
    new = doc([record("kan", 3.6, 4.0, rounds=3, seed=5)])
    row = [r for r in compare_documents(base, new, alpha=0.01).rows if r.phase == "forward"][0]
    assert compare.min_p_unpaired(3, 3) == 1 / 20
    assert row.p_value is None and "cannot reach alpha 0.01" in row.note and "threshold-only" in row.note


def test_the_paired_verdict_needs_its_p_value():
    """A 1.5x ratio over rounds whose sign flips half the time: the paired test must say no."""
    base = [1.0] * 16
    new = [3.0, 0.9] * 8  # median ratio 1.95 > threshold, but 8 of 16 rounds are faster
    ratio, p, verdict, note = compare.compare_paired(base, new, 1.10, 0.01)
    assert ratio > 1.1 and p > 0.01 and verdict == "not significant" and "16 paired rounds" in note
    ratio, p, verdict, _ = compare.compare_paired(base, [1.3] * 16, 1.10, 0.01)
    assert verdict == "slower" and p < 0.01


def test_missing_samples_fall_back_to_the_threshold_and_say_so():
    base = doc([record("kan", 3.0, 4.0, samples=False)])
    new = doc([record("kan", 3.6, 4.0, samples=False)])
    c = compare_documents(base, new)
    row = [r for r in c.rows if r.phase == "forward"][0]
    assert row.verdict == "slower" and "threshold-only" in row.note


def test_newly_failing_row_is_a_regression():
    new = doc([record("mlp", 1.0, 2.0), record("kan", 3.0, 4.0, error="boom"), record("other", 5.0, 5.0)])
    c = compare_documents(BASE, new)
    assert verdicts(c)[("kan", "forward")] == "failed" and c.regressed


def test_normalized_mode_ignores_a_machine_that_got_slower():
    new = scaled(BASE, 1.3, seed=5)  # everything, the MLP included, 30% slower
    assert compare_documents(BASE, new).regressed
    norm = compare_documents(BASE, new, normalize="mlp")
    assert not norm.regressed
    assert ("mlp", "forward") not in verdicts(norm)  # the MLP is the yardstick
    # ...but a row that got slower relative to its MLP still is
    worse = scaled(new, 1.3, impls={"kan"}, seed=6)
    assert verdicts(compare_documents(BASE, worse, normalize="mlp"))[("kan", "forward")] == "slower"


def test_rows_only_on_one_side_and_no_overlap():
    new = doc([record("mlp", 1.0, 2.0), record("brand-new", 1.0, 1.0)])
    c = compare_documents(BASE, new)
    assert any("brand-new" in x for x in c.only_new) and any(x.startswith("kan-cpu") for x in c.only_base)
    with pytest.raises(compare.CompareError, match="no rows to compare"):
        compare_documents(doc([record("a", 1, 1)]), doc([record("b", 1, 1)]))


@pytest.mark.parametrize("args", [("--threshold", "0.9"), ("--alpha", "2")])
def test_bad_settings_exit_2(tmp_path, args):
    p = tmp_path / "b.json"
    p.write_text(json.dumps(BASE))
    res = run_cli("compare", p, p, *args)
    assert res.returncode == 2


def test_compare_cli_exit_codes(tmp_path):
    b, n, s = tmp_path / "base.json", tmp_path / "new.json", tmp_path / "same.json"
    b.write_text(json.dumps(BASE))
    n.write_text(json.dumps(scaled(BASE, 1.25, impls={"kan"})))
    s.write_text(json.dumps(scaled(BASE, 1.0, seed=9)))
    res = run_cli("compare", b, n)
    assert res.returncode == 1, res.stderr
    assert "| +" in res.stdout and "kan-cpu" in res.stdout
    assert run_cli("compare", b, s).returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 99, "results": []}')
    res = run_cli("compare", b, bad)
    assert res.returncode == 2 and "schema version 99" in res.stderr


# ----------------------------------------------------------------------------- A/B mode


def test_ab_flags_a_slower_tree_and_passes_an_identical_one(tmp_path):
    base_dir, slow_dir = tmp_path / "base", tmp_path / "slow"
    for d, seconds in ((base_dir, 0.004), (slow_dir, 0.012)):
        d.mkdir()
        (d / "nap.py").write_text(
            "import time\nfrom torch import nn\nfrom kanbench import Implementation\n"
            "class Nap(nn.Linear):\n"
            f"    def forward(self, x):\n        time.sleep({seconds})\n        return super().forward(x)\n"
            "spec = Implementation(name='nap', build=lambda w, device, dtype: Nap(w[0], w[-1]))\n"
        )
    common = [
        "ab",
        "--base",
        ".",
        "--new",
        ".",
        "--impl",
        "nap",
        "--shape",
        "2,4,1",
        "--batch",
        "8",
        "--rounds",
        "8",
        "--chunk-time",
        "0.05",
        "--warmup",
        "0",
        "--no-save",
        # the sleep makes the slow tree's forward 3x; the threshold keeps a 0.15 ms backward's
        # noise (1.2x between worker processes seen on this 2-core VM) from failing the identical tree
        "--threshold",
        "1.5",
        "--base-extra",
        base_dir,
    ]
    res = run_cli(*common, "--new-extra", slow_dir)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "nap-cpu" in res.stdout and "REGRESSION" in res.stdout
    res = run_cli(*common, "--new-extra", base_dir)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ab_refuses_too_few_rounds_for_the_paired_test():
    res = run_cli("ab", "--base", ".", "--impl", "mlp", "--rounds", "3")
    assert res.returncode == 2 and "too few for the paired test" in res.stderr


def test_ab_side_from_a_git_ref():
    side = resolve_side("HEAD", role="--base")
    try:
        assert (side.implementations / "mlp.py").is_file()
        assert "HEAD (" in side.name
    finally:
        side.cleanup()
    assert not side.implementations.exists()


def test_ab_bad_side_is_a_clear_error():
    with pytest.raises(ABError, match="neither a directory nor a git ref"):
        resolve_side("no-such-ref-xyz", role="--base")
    res = run_cli("ab", "--base", "no-such-ref-xyz", "--impl", "mlp")
    assert res.returncode == 2 and "no-such-ref-xyz" in res.stderr
    res = run_cli("ab", "--base", ".", "--impl", "no-such-impl")  # a typo fails CI: never a skip
    assert res.returncode == 2 and "unknown implementation(s) no-such-impl" in res.stderr


def test_ab_nothing_to_compare_has_its_own_status(tmp_path):
    """Exit 3, the one status CI may read as "skipped": a ref without implementations/, or no
    implementation on both sides."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README").write_text("before any implementation\n")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    import kanbench.ab as ab_mod

    real_root = ab_mod.source_root
    ab_mod.source_root = lambda: repo
    try:
        with pytest.raises(ab_mod.NothingToCompare, match="has no implementations/ directory: nothing to compare"):
            resolve_side(commit, role="--base")
    finally:
        ab_mod.source_root = real_root
    empty = tmp_path / "empty"
    (empty / "implementations").mkdir(parents=True)
    res = run_cli("ab", "--base", empty, "--new", empty, "--rounds", "8")
    assert res.returncode == 3 and "nothing to compare" in res.stderr


# ----------------------------------------------------------------------------- cross-hardware and history


def test_machine_table_puts_machines_side_by_side():
    laptop = doc(
        [record("mlp", 1.0, 2.0), record("kan", 3.0, 4.0)],
        cpu="Intel(R) Core(TM) i7-1185G7 CPU @ 3.00GHz",
        host="laptop",
        threads=4,
    )
    server = doc(
        [
            record("mlp", 0.3, 0.6, device="cuda"),
            record("kan", 0.6, 1.2, device="cuda"),
            record("gpu-only", 1.0, 1.0, device="cuda"),
            record("mlp", 0.8, 1.5),
            record("kan", 2.0, 3.0),
            record("broken", 1, 1, error="boom"),
        ],
        cpu="AMD EPYC 7763 64-Core Processor",
        host="srv",
        gpus=["NVIDIA H200"],
        threads=16,
    )
    text = cross_hardware.machine_table([typed(laptop), typed(server)])
    assert "i7-1185G7 (4t) fwd ms" in text and "H200 fwd ms" in text and "AMD EPYC 7763 (16t) fwd ms" in text
    kan_line = [l for l in text.splitlines() if l.startswith("| kan ")][0]
    lap = {r["impl"]: r["rounds"] for r in laptop["results"]}
    per_round = [
        (kf + kb) / (mf + mb)
        for kf, kb, mf, mb in zip(
            lap["kan"]["forward_ms"], lap["kan"]["backward_ms"], lap["mlp"]["forward_ms"], lap["mlp"]["backward_ms"]
        )
    ]
    expect = statistics.median(per_round)  # rounds measured side by side are paired
    assert abs(expect - 7 / 3) < 0.1 and f"{expect:.2f}x" in kan_line  # about (3+4)/(1+2) on the laptop
    assert "gpu-only (only on: H200)" in text
    assert "geometric mean" in text
    assert [l for l in text.splitlines() if l.startswith("| broken")][0].count("failed") == 2
    mlp_line = [l for l in text.splitlines() if l.startswith("| mlp ")][0]
    server_mlp = [r for r in server["results"] if r["impl"] == "mlp" and r["device"] == "cpu"][0]
    assert "failed" not in mlp_line and f"{server_mlp['forward_ms']:.3g}" in mlp_line


def test_different_workloads_are_never_mixed():
    a = doc([record("mlp", 1.0, 2.0)])
    b = copy.deepcopy(a)
    big = dict(WL, widths=[1000, 1000, 1], batch=100, preset="large")
    b["config"]["workload"] = big
    for r in b["results"]:
        r["workload"] = big
    text = cross_hardware.machine_table([typed(a), typed(b)])
    assert text.count("### ") == 2 and "[1000,1000,1]" in text
    with pytest.raises(cross_hardware.CrossHardwareError, match="different workloads"):
        cross_hardware.machine_table([typed(a), typed(b)], strict=True)


def test_history_orders_runs_by_time_and_refuses_other_machines():
    runs = [
        doc(
            [record("mlp", 1.0, 2.0), record("kan", 3.0 - i * 0.5, 4.0)],
            ts=f"2026-11-2{5 - i}T10:00:00+00:00",
            commit=f"{i}" * 40,
        )
        for i in range(3)
    ]
    text = cross_hardware.history_table([typed(r) for r in runs])
    header = [l for l in text.splitlines() if l.startswith("| implementation")][0]
    assert header.index("22222222") < header.index("11111111") < header.index("00000000")
    other = doc([record("mlp", 1.0, 2.0)], host="elsewhere")
    with pytest.raises(cross_hardware.CrossHardwareError, match="one machine"):
        cross_hardware.history_table([typed(r) for r in runs + [other]])


def test_report_by_machine_cli(tmp_path):
    paths = []
    for i, d in enumerate([doc([record("mlp", 1.0, 2.0)], host="a"), doc([record("mlp", 2.0, 3.0)], host="b")]):
        p = tmp_path / f"{i}.json"
        p.write_text(json.dumps(d))
        paths.append(p)
    res = run_cli("report", "--by", "machine", *paths)
    assert res.returncode == 0, res.stderr
    assert "[a]" in res.stdout and "[b]" in res.stdout


# ----------------------------------------------------------------------------- exports and pytest-benchmark


def test_github_action_benchmark_export(tmp_path):
    entries = export.github_action_benchmark(typed(BASE))
    assert len(entries) == 6
    e = entries[0]
    assert set(e) == {"name", "unit", "value", "range", "extra"} and e["unit"] == "ms"
    assert e["name"] == "mlp-cpu forward [2x150x1-b32-float32]"
    p = tmp_path / "r.json"
    p.write_text(json.dumps(BASE))
    res = run_cli("export", p)
    assert res.returncode == 0 and json.loads(res.stdout) == entries


def test_pytest_benchmark_suite_runs():
    """The pytest-benchmark suite works (run once per benchmark, timing disabled)."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/test_kan_benchmarks.py",
            "--benchmark-disable",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "KANBENCH_IMPLS": "mlp,splines-better_kan,rbf-better_kan", "PYTHONPATH": str(ROOT)},
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    import torch

    devices = 2 if torch.cuda.is_available() else 1  # the suite measures every device present
    assert f"{3 * 2 * devices} passed" in res.stdout  # 3 implementations x (forward, backward) x devices


def test_files_from_different_machines_warn_and_strict_refuses():
    other = doc([record("mlp", 1.0, 2.0), record("kan", 3.0, 4.0), record("other", 5.0, 5.0)], cpu="Intel Xeon")
    c = compare_documents(BASE, other)
    assert c.warnings and "CPU AMD EPYC vs Intel Xeon" in c.warnings[0]
    assert c.render().startswith("warning: different machines")
    with pytest.raises(compare.CompareError, match="different machines"):
        compare_documents(BASE, other, strict=True)
    assert not compare_documents(BASE, other, normalize="mlp", strict=True).warnings


def test_compile_options_and_threads_are_part_of_the_row_key():
    compiled = record("kan", 3.0, 4.0)
    compiled["compile"] = True
    grid = record("kan", 3.0, 4.0)
    grid["options"] = {"grid_size": 10}
    c = compare_documents(doc([record("kan", 3.0, 4.0)]), doc([record("kan", 3.0, 4.0), compiled, grid]))
    assert sorted(c.only_new) == ["kan-cpu [2x150x1-b32-float32, compile]", "kan-cpu [2x150x1-b32-float32, grid_size=10]"]
    threads = record("kan", 3.0, 4.0)
    threads["threads"] = 4
    with pytest.raises(compare.CompareError, match="share no"):
        compare_documents(doc([record("kan", 3.0, 4.0)]), doc([threads]))


# ----------------------------------------------------------------- the verdict functions, exactly
# (from the mutation report: boundaries, exact p-values and the returned words, each pinned)


def test_threshold_verdict_boundaries_and_words():
    from kanbench.compare import _threshold_verdict as tv

    assert tv(None, 1.1) == "unchanged"
    assert tv(1.1, 1.1) == "unchanged"  # at the threshold: not slower (strict >)
    assert tv(1.1000001, 1.1) == "slower"
    assert tv(1 / 1.1, 1.1) == "unchanged"  # at 1/threshold: not faster (strict <)
    assert tv(1 / 1.1 - 1e-9, 1.1) == "faster"
    assert tv(1.0, 1.1) == "unchanged" and tv(0.95, 1.1) == "unchanged"
    assert tv(0.5, 1.5) == "faster" and tv(0.7, 1.5) == "unchanged"  # 1/1.5 = 0.667, not 1.5 * 1 or 2/1.5


def test_smallest_achievable_p_values():
    import math

    from kanbench.compare import min_p_paired, min_p_unpaired

    assert min_p_paired(5) == 1 / 32 and min_p_paired(12) == 2.0**-12
    assert min_p_unpaired(4, 4) == 1 / 70 and min_p_unpaired(6, 3) == 1 / math.comb(9, 3)


def test_mann_whitney_needs_two_units_per_side_and_is_one_sided():
    from scipy.stats import mannwhitneyu

    from kanbench.compare import _mann_whitney

    assert _mann_whitney([1.0], [1.0, 2.0], "greater") is None
    assert _mann_whitney([1.0, 2.0], [1.0], "greater") is None
    new, base = [2.0, 2.1], [1.0, 1.1]
    p = _mann_whitney(new, base, "greater")
    assert p == mannwhitneyu(new, base, alternative="greater").pvalue < mannwhitneyu(new, base).pvalue


def test_compare_paired_exact_values():
    from kanbench.compare import compare_paired

    base, new = [1.0] * 12, [1.2] * 11 + [1.25]
    ratio, p, verdict, note = compare_paired(base, new, 1.1, 0.01)
    assert abs(ratio - 1.2) < 1e-12 and verdict == "slower" and note == "Wilcoxon over 12 paired rounds"
    assert p == 2.0**-12  # every round slower: the smallest one-sided p
    ratio, p, verdict, _ = compare_paired(new, base, 1.1, 0.01)
    assert abs(ratio - 1 / 1.2) < 1e-12 and verdict == "faster" and p == 2.0**-12
    # rounds with a zero or missing median are dropped, not logged as 0 or inf
    assert compare_paired([0.0, 1.0], [1.0, 1.0], 1.1, 0.01) == (None, None, "unchanged", "no rounds")
    assert compare_paired([1.0, 1.0, 1.0], [1.0, 0.0, 1.0], 1.1, 0.5)[3] == "Wilcoxon over 2 paired rounds"
    # exactly two rounds are enough to compute a ratio (threshold-only at alpha 0.01: 2^-2 > 0.01)
    ratio, p, verdict, note = compare_paired([1.0, 1.0], [1.5, 1.5], 1.1, 0.01)
    assert abs(ratio - 1.5) < 1e-12 and p is None and verdict == "slower"
    assert note == "2 paired rounds cannot reach alpha 0.01 (smallest p 0.25): threshold-only"
    # p exactly at alpha is not below it: 2^-5 = 0.03125 with alpha 0.03125 -> threshold-only
    assert compare_paired([1.0] * 5, [1.5] * 5, 1.1, 2.0**-5)[1] is None
    assert compare_paired([1.0] * 6, [1.5] * 6, 1.1, 2.0**-5)[1] == 2.0**-6
    # inside the threshold band: unchanged, no test run
    assert compare_paired([1.0] * 12, [1.05] * 12, 1.1, 0.01)[1:] == (None, "unchanged", "Wilcoxon over 12 paired rounds")
    assert compare_paired([1.0] * 12, [1 / 1.1] * 12, 1.1, 0.01)[2] == "unchanged"
    # mixed rounds: slower by the median but not consistently -> not significant
    mixed = [1.3, 0.8, 1.3, 0.8, 1.3, 0.8, 1.3, 0.8, 1.3, 0.8, 1.3, 1.3]
    assert compare_paired([1.0] * 12, mixed, 1.1, 0.01)[2] == "not significant"


def test_compare_units_exact_values():
    from scipy.stats import mannwhitneyu

    from kanbench.compare import compare_units

    base, new = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0], [1.3, 1.31, 1.29, 1.32, 1.28, 1.3]
    ratio, p, verdict, note = compare_units(base, new, 1.1, 0.01)
    assert abs(ratio - 1.3) < 1e-12 and verdict == "slower" and note == "Mann-Whitney over 6 vs 6 round medians"
    assert p == mannwhitneyu(new, base, alternative="greater").pvalue
    ratio, p, verdict, _ = compare_units(new, base, 1.1, 0.01)
    assert verdict == "faster" and p == mannwhitneyu(base, new, alternative="less").pvalue
    assert compare_units([], new, 1.1, 0.01) == (None, None, "unchanged", "no samples")
    assert compare_units([0.0, 0.0], new, 1.1, 0.01)[2:] == ("unchanged", "no samples")
    ratio, p, verdict, note = compare_units([1.0, 1.0], [2.0, 2.0], 1.1, 0.01)
    assert p is None and verdict == "slower" and note == "2 vs 2 rounds cannot reach alpha 0.01 (smallest p 0.17): threshold-only"
    assert compare_units(base, [1.05] * 6, 1.1, 0.01)[1:] == (None, "unchanged", "Mann-Whitney over 6 vs 6 round medians")
    overlapping = [1.3, 0.9, 1.3, 0.9, 1.3, 1.3]
    assert compare_units(base, overlapping, 1.1, 0.01)[2] == "not significant"
    # a p exactly at alpha is not significant: 3 vs 3 units have smallest p 1/20 = 0.05
    assert compare_units([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], 1.1, 0.05)[1] is None


def test_ab_side_from_a_package_directory_and_a_bad_requirement(tmp_path):
    """A tree that is a Python package is installed into a folder of its own; its entry points are the
    side's implementations (and nothing is left in the tree); a requirement pip cannot install is
    one line, exit status 2."""
    from kanbench.discovery import discover, forget_site_modules

    pkg = tmp_path / "pkg"
    (pkg / "sidekan").mkdir(parents=True)
    (pkg / "sidekan" / "__init__.py").write_text("")
    (pkg / "sidekan" / "spec.py").write_text(
        (ROOT / "docs" / "tutorial" / "mykan.py").read_text().replace('"mykan"', '"sidekan"')
    )
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "sidekan"\nversion = "0.1"\n'
        '[project.entry-points."kanbench.implementations"]\nsidekan = "sidekan.spec"\n'
    )
    side = resolve_side(str(pkg), role="--base")
    try:
        assert side.implementations is None and len(side.site_dirs) == 1
        registry = discover(builtin=False, site_dirs=side.site_dirs)
        assert registry.names() == ["sidekan"] and registry.get("sidekan").available
        forget_site_modules(side.site_dirs)
        assert "sidekan" not in sys.modules and side.site_dirs[0] not in sys.path
    finally:
        side.cleanup()
    assert not Path(side.site_dirs[0]).exists()
    assert sorted(p.name for p in pkg.iterdir()) == ["pyproject.toml", "sidekan"]  # no build/ or egg-info left
    with pytest.raises(ABError, match="pip could not install it"):
        resolve_side(f"pip:{tmp_path / 'absent'}", role="--new")
    res = run_cli("ab", "--base", f"pip:{tmp_path / 'absent'}", "--impl", "mlp")
    assert res.returncode == 2 and "--base pip:" in res.stderr and "pip could not install it" in res.stderr
