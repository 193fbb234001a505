"""One colour per implementation in every figure, whatever the order of its rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from kanbench import palette
from kanbench.multiboard import Placed
from kanbench.site import charts


@dataclass
class _Row:  # the fields charts.accuracy_pareto reads
    impl: str
    error: float
    error_min: float
    error_max: float
    step_ms: float
    params: int = 100


def _colours(figure_json: str) -> dict:
    return {t["name"]: t["marker"]["color"] for t in json.loads(figure_json)["data"]}


def test_each_implementation_keeps_its_colour_when_the_rows_change_order():
    rows = [
        _Row(n, 0.1 * (i + 1), 0.05, 0.5, 1.0 + i)
        for i, n in enumerate(["mlp", "splines-better_kan", "effkan", "rbf-better_kan", "mykan"])
    ]
    first = _colours(charts.accuracy_pareto(rows, "xy"))
    second = _colours(charts.accuracy_pareto(list(reversed(rows))[:3] + [_Row("fastkan", 0.2, 0.1, 0.3, 2.0)], "bessel"))
    assert len(set(first.values())) == len(first)  # distinct colours within a figure
    for name in set(first) & set(second):
        assert first[name] == second[name], name
    assert first["mlp"] == palette.style("mlp").color and first["splines-better_kan"] == palette.style("splines-better_kan").color


def test_labels_of_one_implementation_share_its_style_and_unknown_names_are_stable():
    for label in ("splines-better_kan-cpu", "splines-better_kan (cpu)", "splines-better_kan-cuda:1", "splines-better_kan-flops"):
        assert palette.base_name(label) == "splines-better_kan"
        assert palette.style(label) == palette.KNOWN["splines-better_kan"]
    assert palette.style("someone-elses-kan") == palette.style("someone-elses-kan-cpu")
    families = {palette.style(n).color for n in ("effkan", "pykan", "fastkan", "chebykan", "wavkan")}
    assert len(families) == 5 and palette.style("mlp").color == "#111111"


def test_the_workloads_heatmap_marks_failed_rows_and_boards_that_are_not_rankings():
    def p(impl, workload, ratio: Optional[float], band=(1, 1)):
        return Placed(impl, workload, ratio, ratio and ratio * 0.9, ratio and ratio * 1.1, band)

    placed = {
        "seed": [p("mlp", "seed", 1.0), p("splines-better_kan", "seed", 1.1, (1, 2)), p("pykan", "seed", None, (0, 0))],
        "large": [p("mlp", "large", 1.0), p("splines-better_kan", "large", 0.9), p("pykan", "large", 200.0, (3, 3))],
    }
    heat = json.loads(charts.workload_ratios(placed, frozenset({"large"})))["data"][0]
    assert heat["type"] == "heatmap" and heat["y"][0] == "mlp"
    assert heat["x"] == ["seed", "large -- not a ranking"]
    cells = dict(zip(heat["y"], heat["text"]))
    assert cells["pykan"] == ["failed", "200.00x"]  # no band on a board that is not a ranking
    assert cells["splines-better_kan"] == ["1.10x (1-2)", "0.90x"]
