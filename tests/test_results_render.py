import dataclasses
import json

import pytest

from kanbench import results
from kanbench.records import RowResult
from kanbench.render import render_document, seed_table
from tests.conftest import FIXTURES, QUICK, ROOT, run_cli

GOLDEN = FIXTURES / "golden_results.json"
GOLDEN_TABLE = FIXTURES / "golden_seed_table.md"


def test_golden_file_renders_to_the_exact_seed_table():
    doc = results.load(GOLDEN)
    assert render_document(doc, "seed") + "\n" == GOLDEN_TABLE.read_text()


def test_report_command_renders_saved_files():
    res = run_cli("report", GOLDEN)
    assert res.returncode == 0, res.stderr
    assert res.stdout == GOLDEN_TABLE.read_text()


def test_report_of_a_leaderboard_file_renders_its_board():
    path = sorted((ROOT / "results").glob("*_leaderboard-seed.json"))[-1]
    res = run_cli("report", path)
    assert res.returncode == 0, res.stderr
    assert "f+b / MLP" in res.stdout and "| mlp " in res.stdout and "matched params" in res.stdout


def test_full_format_has_spread_and_ratio_to_mlp():
    doc = results.load(GOLDEN)
    text = render_document(doc, "full")
    lines = {l.split("|")[1].strip(): l for l in text.splitlines() if l.startswith("| ")}
    assert "1.00x" in lines["mlp-cpu"]
    # effkan-cpu forward 11.74 / mlp-cpu 1.17
    assert f"{11.74 / 1.17:.2f}x" in lines["effkan-cpu"]
    assert "fwd IQR" in text


def test_error_rows_are_listed_under_the_table():
    doc = results.load(GOLDEN)
    text = seed_table(doc.rows())
    assert "| pykan-gpu" in text and "failed" in text
    assert "- pykan-gpu: out of memory on cuda" in text


@pytest.mark.parametrize(
    "content,text",
    [
        ("", "empty file"),
        ('{"schema": 1, "results": [', "corrupt or truncated JSON"),
        ('{"schema": 99, "kind": "kanbench-results", "results": []}', "schema version 99"),
        ("[1, 2]", "not a kanbench results file"),
        ('{"schema": 1, "results": [{"device": "cpu"}]}', "lacks impl"),
    ],
)
def test_unusable_files_give_one_clear_message(tmp_path, content, text):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(results.ResultsError) as info:
        results.load(p)
    assert text in str(info.value)
    res = run_cli("report", p)
    assert res.returncode == 2 and text in res.stderr


def test_run_writes_every_required_field(tmp_path):
    out = tmp_path / "r.json"
    res = run_cli("run", "--impl", "mlp", "--device", "cpu", "--out", out, "--threads", "1", *QUICK)
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == results.SCHEMA_VERSION
    m = doc["machine"]
    for key in ("cpu", "torch", "python", "os", "timestamp", "kanbench"):
        assert key in m
    assert m["torch"]["threads"] == 1 and doc["config"]["threads"] == 1
    assert {"model", "logical_cores", "ram_bytes"} <= set(m["cpu"])
    assert doc["config"]["workload"]["widths"] == [2, 150, 1]
    rec = doc["results"][0]
    for field in dataclasses.fields(RowResult):
        assert field.name == "extra" or field.name in rec, field.name
    assert RowResult.from_dict(rec).to_dict() == rec  # the type owns its JSON: a round trip changes nothing
    assert rec["threads"] == 1
    assert rec["error"] is None
    assert len(rec["samples"]["forward_ms"]) == rec["n_samples"] >= 3
    # the table on stdout is the seed format
    assert res.stdout.splitlines()[0].startswith("|  ")
    assert "| mlp-cpu" in res.stdout


def test_committed_results_files_still_load():
    """Every results file in results/ (schema 1 and 2) loads into the types and renders (the grid-extension
    protocol's files and KANbeFair's published ratios are of their own kinds: kanbench.accuracy.grid_scaling
    and kanbench.accuracy.kanbefair, read by kanbench.fragments)."""
    files = sorted(
        p for p in (ROOT / "results").rglob("*.json") if "grid-extension" not in p.parts and p.name != "published-ratios.json"
    )
    assert files
    for path in files:
        doc = results.load(path)
        assert doc.results, path
        for r in doc.rows():
            assert r.workload.get("widths"), f"{path}: a row without its workload after migration"
        if doc.mode in ("run", "sweep"):
            assert render_document(doc, "full")


def test_schema_1_migration_gives_rows_the_files_workload():
    old = {
        "schema": 1,
        "kind": "kanbench-results",
        "config": {"workload": {"widths": [2, 3, 1], "batch": 4}},
        "results": [{"impl": "mlp", "device": "cpu", "forward_ms": 1.0, "backward_ms": 2.0, "label": "mlp-cpu"}],
    }
    doc = results.ResultsDocument.from_dict(results.validate(old))
    (row,) = doc.rows()
    assert row.workload_key == "2x3x1-b4-float32" and row.label == "mlp-cpu" and row.extra == {}
    assert doc.to_dict()["schema"] == results.SCHEMA_VERSION


def test_fingerprint_tells_cpus_and_gpus_apart():
    from kanbench import machine

    fp = machine.fingerprint()
    if fp["cpu"].get("family"):  # Linux: /proc/cpuinfo
        assert fp["cpu"]["model_number"] and isinstance(fp["cpu"]["flags"], list)
        assert f"{fp['cpu']['family']}/{fp['cpu']['model_number']}" in machine.machine_label(fp)
    assert fp["torch"]["cpu_capability"] in machine.machine_label(fp)
    zen3 = {"cpu": {"model": "AMD EPYC", "family": "25", "model_number": "1"}, "torch": {"threads": 2, "cpu_capability": "AVX2"}}
    zen4 = {
        "cpu": {"model": "AMD EPYC", "family": "25", "model_number": "17"},
        "torch": {"threads": 2, "cpu_capability": "AVX512"},
    }
    assert machine.machine_label(zen3) != machine.machine_label(zen4)
    # NVML numbers every GPU of the node; torch sees only CUDA_VISIBLE_DEVICES: matched by UUID
    nvml = [{"index": 0, "name": "A100", "uuid": "GPU-a"}, {"index": 1, "name": "H100", "uuid": "GPU-h", "driver": "550"}]
    visible = [{"index": 0, "name": "H100", "uuid": "GPU-h", "memory_bytes": 80, "capability": "9.0"}]
    (gpu,) = machine.visible_gpus(nvml, visible)
    assert (gpu["name"], gpu["index"], gpu["nvml_index"], gpu["driver"]) == ("H100", 0, 1, "550")
