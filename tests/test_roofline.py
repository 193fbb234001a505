"""The roofline figures: a hand-made row against hand-made peaks, computed by hand."""

from __future__ import annotations

import json

import pytest

from kanbench import peak, roofline
from kanbench.records import ResultsDocument, RowResult

PEAK = peak.Peak("cpu", "float32", gflops=100.0, gbytes_per_s=10.0, threads=2, method="hand-made")


def _row(**kw) -> RowResult:
    base = dict(
        impl="k",
        device="cpu",
        workload={"widths": [10, 20, 1], "batch": 100, "dtype": "float32"},
        forward_ms=1.0,
        backward_ms=2.0,
        flops_per_sample=5000.0,
        params=250,
    )
    return RowResult(**{**base, **kw})


def test_the_arithmetic_on_a_hand_made_row():
    fig = roofline.row_figures(_row(), PEAK)
    # 5000 FLOPs x 100 samples = 5e5 per forward: 0.5 GFLOP/s over 1 ms; backward 1e6 over 2 ms = 0.5
    assert fig["forward_gflops"] == pytest.approx(0.5) and fig["backward_gflops"] == pytest.approx(0.5)
    # the step: 1.5e6 FLOPs over 3 ms
    assert fig["step_gflops"] == pytest.approx(0.5)
    # bytes: (250 params + 100 x (10 + 20 + 1)) x 4 = 13,400; intensity 5e5 / 13,400
    assert fig["intensity_flops_per_byte"] == pytest.approx(5e5 / 13400, rel=1e-3)
    # balance 100 / 10 = 10 FLOPs per byte: 37.3 is above it, so compute-bound, attainable = the peak
    assert fig["bound"] == "compute" and fig["attainable_gflops"] == pytest.approx(100.0)
    assert fig["peak_share"] == pytest.approx(0.005) and fig["roofline_share"] == pytest.approx(0.005)


def test_a_row_of_low_intensity_is_memory_bound_and_set_against_its_roof():
    fig = roofline.row_figures(_row(flops_per_sample=100.0, params=100_000), PEAK)
    intensity = 100 * 100 / ((100_000 + 100 * 31) * 4)
    assert fig["bound"] == "memory" and fig["attainable_gflops"] == pytest.approx(intensity * 10.0, rel=1e-3)
    assert fig["roofline_share"] == pytest.approx(fig["step_gflops"] / fig["attainable_gflops"], rel=1e-3)


def test_rows_without_a_count_or_times_get_nothing_and_failed_rows_are_skipped():
    assert roofline.row_figures(_row(flops_per_sample=None), PEAK) is None
    assert roofline.row_figures(_row(forward_ms=None), PEAK) is None
    assert roofline.row_figures(_row(error="boom", error_kind="crash"), PEAK) is None


def test_attach_stores_the_peaks_in_the_machine_section_and_fills_every_row(monkeypatch):
    calls = []
    monkeypatch.setattr(peak, "for_machine", lambda machine, device, dtype, cache=True: calls.append(dtype) or PEAK)
    doc = ResultsDocument(machine={}, config={}, results=[_row(), _row(impl="j"), _row(impl="n", flops_per_sample=None)])
    roofline.attach(doc)
    assert calls == ["float32"]  # once per device and dtype
    assert doc.machine["peaks"]["cpu/float32"]["gflops"] == 100.0
    assert [r.forward_gflops for r in doc.results] == [0.5, 0.5, None]
    assert json.loads(json.dumps(doc.results[0].to_dict()))["roofline"]["bound"] == "compute"


def test_the_peak_cache_is_keyed_by_machine_threads_and_dtype(monkeypatch, tmp_path):
    monkeypatch.setenv("KANBENCH_HOME", str(tmp_path))
    measured = []
    monkeypatch.setattr(peak, "measure", lambda device, dtype: measured.append(dtype) or PEAK)
    machine = {"cpu": {"model": "X", "family": "6", "model_number": "1"}, "torch": {"threads": 2, "version": "2.13.0"}}
    assert peak.for_machine(machine, "cpu", "float32") == PEAK
    assert peak.for_machine(machine, "cpu", "float32") == PEAK  # from the cache
    peak.for_machine(machine, "cpu", "float64")
    peak.for_machine({**machine, "torch": {"threads": 1, "version": "2.13.0"}}, "cpu", "float32")
    assert measured == ["float32", "float64", "float32"]
    assert len(json.loads((tmp_path / "peaks.json").read_text())) == 3


def test_a_real_probe_reports_positive_ceilings():
    p = peak.measure("cpu", "float32")
    assert p.gflops > 0 and p.gbytes_per_s > 0 and p.balance > 0
