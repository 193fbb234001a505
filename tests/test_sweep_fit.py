"""Sweeps, FLOPs and fits (behaviour only)."""

import json
import math

import pytest

from kanbench import flops, sweep
from kanbench.records import ResultsDocument
from kanbench.runner import empty_record
from kanbench.timing import TimingConfig
from kanbench.workload import Workload, resolve
from tests.conftest import run_cli

TINY = ["--min-time", "0", "--min-samples", "2", "--in-process"]


@pytest.mark.parametrize(
    "axis,text,expect",
    [
        ("batch", "64,16,32", [16, 32, 64]),
        ("compile", "off,on", [False, True]),
        ("dtype", "fp32,bf16", ["float32", "bfloat16"]),
        ("grid", "3", [3]),
    ],
)
def test_parse_axis(axis, text, expect):
    assert sweep.parse_axis(axis, text) == expect


@pytest.mark.parametrize(
    "axis,text,msg",
    [
        ("batch", ",", "empty"),
        ("batch", "0,2", "positive"),
        ("width", "a", "integers"),
        ("grid", "3,3", "repeats"),
        ("compile", "maybe", "off,on"),
        ("dtype", "int8", "unknown dtype"),
    ],
)
def test_bad_axes(axis, text, msg):
    with pytest.raises(sweep.SweepError, match=msg):
        sweep.parse_axis(axis, text)


def test_plan_is_one_axis_at_a_time_with_a_shared_base():
    base = resolve("seed")
    pts = sweep.plan(["mlp", "kan"], ["cpu"], base, {"batch": [16, 32], "grid": [3, 5]}, lambda n: n == "kan")
    tags = {(p.impl, tuple((t["axis"], t["value"]) for t in p.tags)) for p in pts}
    # batch 32 is the base batch and grid 5 the base grid: measured once, tagged with every axis
    assert ("kan", (("base", None), ("batch", 32), ("grid", 5))) in tags
    assert ("mlp", (("base", None), ("batch", 32))) in tags
    assert not any(p.impl == "mlp" and p.options for p in pts)  # the MLP takes no grid
    assert {p.options.get("grid_size") for p in pts if p.impl == "kan"} == {None, 3}
    with pytest.raises(sweep.SweepError, match="nothing to sweep"):
        sweep.plan(["mlp"], ["cpu"], base, {}, lambda n: False)


def test_shards_partition_the_points():
    base = resolve("seed")
    pts = sweep.plan(["a", "b"], ["cpu"], base, {"batch": [8, 16, 64], "width": [4, 8]}, lambda n: False)
    shards = [pts[i::3] for i in range(3)]
    assert sorted(p.key for s in shards for p in s) == sorted(p.key for p in pts)
    assert sweep.parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(sweep.SweepError):
            sweep.parse_shard(bad)


def test_out_of_memory_skips_larger_points_of_that_axis():
    base = Workload((2, 4, 1), 8)
    pts = sweep.plan(["kan", "mlp"], ["cpu"], base, {"batch": [16, 64, 128, 256]}, lambda n: False)

    def measure(job):
        rec = empty_record(job)
        if job.impl == "kan" and job.workload.batch >= 64:
            return rec.fail("oom", "out of memory on cpu during timing: boom")
        rec.forward_ms = rec.backward_ms = 1.0
        return rec

    doc = ResultsDocument()
    sweep.run(pts, doc, lambda d: None, measure, TimingConfig())
    kinds = {(r.impl, r.workload["batch"]): r.error_kind for r in doc.results}
    assert kinds[("kan", 64)] == "oom"
    assert kinds[("kan", 128)] == kinds[("kan", 256)] == "skipped"
    assert kinds[("mlp", 256)] is None
    skipped = [r for r in doc.results if r.error_kind == "skipped"][0]
    assert "batch=64 already ran out of memory" in skipped.error


def test_flops_formulas():
    # "KAN or MLP: A Fairer Comparison": per edge 9K(G+1.5K)+2G-2.5K+1 = 260 for G=5, K=3
    assert flops.kan_bspline([2, 150, 1], 5, 3) == 450 * 260 + 5 * 152 + 2 * 450
    assert flops.kan_bspline([2, 150, 1], 5, 3, per="input") == 152 * 260 + 5 * 152 + 2 * 450 * 9 + 151
    assert flops.mlp([2, 1500, 1]) == 2 * 2 * 1500 + 1500 + 2 * 1500
    assert flops.kan_rbf([2, 3], 8) == 2 * 8 * 5 + 5 * 2 + 2 * 2 * 9 * 3 + 3
    assert math.isclose(flops.gflops_per_second(1e6, 100, 10.0), 10.0)


def test_sweep_cli_writes_results_plots_and_summary(tmp_path):
    out = tmp_path / "s.json"
    res = run_cli(
        "sweep",
        "--impl",
        "mlp,splines-better_kan",
        "--preset",
        "quick",
        "--batch",
        "8,16",
        "--grid",
        "3",
        "--compile",
        "off",
        "--out",
        out,
        "--plots",
        tmp_path / "plots",
        *TINY,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["mode"] == "sweep" and doc["complete"]
    assert all(r["error"] is None for r in doc["results"])
    grid3 = [r for r in doc["results"] if r["options"].get("grid_size") == 3]
    assert grid3 and grid3[0]["flops_per_sample"] == flops.kan_bspline([2, 64, 1], 3, 3, per="input")
    for name in ("sweep_batch.png", "sweep_grid.png", "sweep_compile.png", "sweep.md"):
        assert (tmp_path / "plots" / name).stat().st_size > 500
    assert "## batch size" in res.stdout and "GF/s" in res.stdout and "ETA" in res.stderr


def test_sweep_rejects_empty_and_contradictory_axes(tmp_path):
    res = run_cli("sweep", "--impl", "mlp", "--out", tmp_path / "a.json")
    assert res.returncode == 2 and "nothing to sweep" in res.stderr
    res = run_cli("sweep", "--impl", "mlp", "--batch", "4,4", "--out", tmp_path / "b.json")
    assert res.returncode == 2 and "repeats" in res.stderr
    res = run_cli("sweep", "--impl", "nope", "--batch", "4", "--out", tmp_path / "c.json")
    assert res.returncode == 2 and "unknown implementation" in res.stderr


def test_shards_merge_in_report(tmp_path):
    files = []
    for i in range(2):
        out = tmp_path / f"shard{i}.json"
        res = run_cli(
            "sweep", "--impl", "mlp", "--preset", "quick", "--batch", "4,8,16", "--shard", f"{i}/2", "--out", out, *TINY
        )
        assert res.returncode == 0, res.stderr
        files.append(out)
    res = run_cli("report", "--plots", tmp_path / "merged", *files)
    assert res.returncode == 0, res.stderr
    header = [l for l in res.stdout.splitlines() if l.startswith("|    ") or l.startswith("|  ")][0]
    assert all(v in header for v in ("4", "8", "16"))
    assert (tmp_path / "merged" / "sweep_batch.png").exists()


# ----------------------------------------------------------------------------- fit


def test_fit_is_the_accuracy_suite_on_the_toy_functions(tmp_path):
    out = tmp_path / "f.json"
    res = run_cli(
        "fit", "--impl", "mlp,rbf-better_kan", "--task", "xy,bessel", "--steps", "20", "--out", out, "--plots", tmp_path / "p"
    )
    assert res.returncode == 0, res.stderr
    assert "#### xy" in res.stdout and "#### bessel" in res.stdout and "win share vs MLP" in res.stdout
    doc = json.loads(out.read_text())
    assert doc["config"]["mode"] == "accuracy" and len(doc["results"]) == 20  # 2 implementations x 2 tasks x 5 seeds
    assert (tmp_path / "p" / "pareto_step_ms.png").stat().st_size > 1000
    res = run_cli("report", out)
    assert res.returncode == 0 and "#### xy" in res.stdout
    assert run_cli("fit", "--task", "nope").returncode == 2
