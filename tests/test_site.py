"""kanbench publish: the static site, and the same site driven in headless Chromium.

The browser tests need Debian's chromium + chromium-driver and selenium (`make test-browser`
installs them); without them they skip with that line. With KANBENCH_SCREENSHOTS=DIR they
save screenshots of the main pages there (`make screenshots` refreshes docs/img).
"""

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import headless
import pytest
from conftest import FIXTURES, ROOT, run_cli

from kanbench.site import PublishError, publish

RESULTS = ROOT / "results"
#: committed files of every mode: runs from two dates (history, from results/archive/), a leaderboard, a sweep,
#: a fit and an accuracy-suite run
INPUTS = [
    RESULTS / "archive" / "20261129T031336Z_vm_seed.json",
    RESULTS / "archive" / "20261129T032219Z_vm_seed.json",
    RESULTS / "archive" / "20261129T121849Z_vm_seed.json",  # the same machine later: its history has two points
    RESULTS / "archive" / "20261128T140424Z_vm_seed.json",
    RESULTS / "archive" / "20261129T031846Z_vm_sweep.json",
    RESULTS / "archive" / "20261128T141422Z_vm_fit.json",
    FIXTURES / "leaderboard_results.json",
    *sorted(RESULTS.glob("*_leaderboard-seed.json"))[-1:],  # the README's leaderboard
    *sorted(RESULTS.glob("*_accuracy-default.json"))[-1:],
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    bad = out.parent / "corrupt.json"
    bad.write_text("{not json")
    summary = publish([str(p) for p in INPUTS] + [str(bad)], out)
    return out, summary


# ------------------------------------------------------------------ the generator (no browser)


def test_site_has_every_page_and_copies_its_inputs(site):
    out, summary = site
    for page in ("index.html", "machines.html", "history.html", "sweeps.html", "fits.html"):
        assert (out / page).is_file(), page
    assert len(list(out.glob("board-*.html"))) == len(list(out.glob("dist-*.html"))) >= 4
    assert (out / "assets" / "plotly.min.js").stat().st_size > 1_000_000  # the library, not a CDN link
    for p in INPUTS:
        assert (out / "data" / p.name).read_bytes() == p.read_bytes()
    assert summary["skipped"] and summary["skipped"][0][0] == "corrupt.json"


def test_pages_fetch_nothing_from_the_network(site):
    out, _ = site
    for page in out.glob("*.html"):
        html = page.read_text()
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html, page.name


def test_corrupt_input_is_listed_as_skipped_with_its_reason(site):
    out, _ = site
    index = (out / "index.html").read_text()
    assert "Skipped inputs" in index and "corrupt.json" in index and "corrupt or truncated JSON" in index


def test_empty_input_list_is_one_line_exit_2(tmp_path):
    proc = run_cli("publish", "--out", tmp_path / "s")
    assert proc.returncode == 2 and "no results files given" in proc.stderr


def test_foreign_non_empty_out_is_refused_without_force(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(PublishError, match="not a kanbench site; use --force"):
        publish([str(INPUTS[0])], tmp_path)
    proc = run_cli("publish", INPUTS[0], "--out", tmp_path)
    assert proc.returncode == 2 and "use --force" in proc.stderr
    assert run_cli("publish", INPUTS[0], "--out", tmp_path, "--force").returncode == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"  # --force writes next to, not over, what was there
    # a previous kanbench site is simply refreshed
    assert run_cli("publish", INPUTS[0], "--out", tmp_path).returncode == 0


# ------------------------------------------------------------------ in headless Chromium


def _browser_reason():
    return headless.missing("test-browser")


browser = pytest.mark.skipif(bool(_browser_reason()), reason=_browser_reason() or "")


@pytest.fixture(scope="module")
def driver():
    yield from headless.chrome("1400,1000")


def _open(driver, path: Path):
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get_log("browser")
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")
    # plotly draws on DOMContentLoaded; give it a moment to finish
    driver.execute_async_script(
        "const done = arguments[0]; const t0 = Date.now();"
        "(function wait(){ const charts = document.querySelectorAll('div.chart');"
        " const drawn = document.querySelectorAll('div.chart .main-svg').length;"
        " if (drawn >= charts.length || Date.now() - t0 > 10000) done(drawn); else setTimeout(wait, 50); })();"
    )


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def _shot(driver, name: str):
    target = os.environ.get("KANBENCH_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / name))


@browser
def test_every_page_loads_without_console_errors_or_network(site, driver):
    out, _ = site
    for page in sorted(out.glob("*.html")):
        _open(driver, page)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, (page.name, errors)
        foreign = [u for u in _requests(driver) if not u.startswith(("file://", "data:", "about:", "blob:"))]
        assert not foreign, (page.name, foreign)


@browser
def test_links_between_pages_resolve(site, driver):
    out, _ = site
    for page in sorted(out.glob("*.html")):
        _open(driver, page)
        hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        for href in hrefs:
            url = urlparse(href)
            assert url.scheme == "file", (page.name, href)
            target = Path(unquote(url.path))
            assert target.exists(), (page.name, href)
            if url.fragment and target.suffix == ".html":
                assert f'id="{url.fragment}"' in target.read_text(), (page.name, href)


@browser
def test_leaderboard_has_its_rows_and_sorts_when_a_header_is_clicked(site, driver):
    from selenium.webdriver.common.by import By

    out, _ = site
    board = next(p for p in out.glob("board-leaderboard-results-*.html"))
    _open(driver, board)
    names = lambda: [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr td:nth-child(2)")]  # noqa: E731
    assert names() == ["mlp-cpu", "splines-better_kan-cpu", "chebykan-cpu", "broken-cpu"]
    header = driver.find_elements(By.CSS_SELECTOR, "#board thead th")[7]  # f+b / MLP
    assert header.text == "f+b / MLP"
    header.click()
    assert names()[:3] == ["mlp-cpu", "splines-better_kan-cpu", "chebykan-cpu"]  # ascending, blanks last
    header.click()
    assert names()[:3] == ["chebykan-cpu", "splines-better_kan-cpu", "mlp-cpu"]  # descending
    failed = driver.find_element(By.CSS_SELECTOR, "#board tbody tr.fail")
    assert "broken-cpu" in failed.text
    assert "output constant across inputs" in driver.find_element(By.ID, "problems").text
    # the family filter hides the other rows
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.CSS_SELECTOR, "select.family-filter")).select_by_visible_text("Chebyshev")
    visible = [tr for tr in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr") if tr.is_displayed()]
    assert len(visible) == 1 and "chebykan-cpu" in visible[0].text


@browser
def test_charts_render_with_their_traces(site, driver):
    out, _ = site
    expectations = {
        next(out.glob("dist-20261129t032219z-vm-seed-*.html")).name: 3,  # three rows' samples per box chart
        "machines.html": 2,  # at least two machines (files) side by side
        "history.html": 3,  # mlp and our two layers over the dates
        "sweeps.html": 3,
        "fits.html": 3,
        "index.html": 1,  # the front page: the workloads heatmap and the accuracy overview
    }
    for name, min_traces in expectations.items():
        _open(driver, out / name)
        counts = driver.execute_script(
            "return Array.from(document.querySelectorAll('div.chart')).map(d => "
            "[d.querySelectorAll('.main-svg').length, (d.data || []).length])"
        )
        assert counts, name
        assert all(svg > 0 for svg, _ in counts), (name, counts)
        assert max(n for _, n in counts) >= min_traces, (name, counts)


@browser
def test_screenshots_of_the_main_pages(site, driver):
    out, _ = site
    pages = {
        "leaderboard.png": next(iter(sorted(out.glob("board-*-leaderboard-seed-*.html"))[-1:]), None)
        or next(out.glob("board-leaderboard-results-*.html")),
        "distribution.png": next(out.glob("dist-20261129t032219z-vm-seed-*.html")),
        "machines.png": out / "machines.html",
        "sweep.png": out / "sweeps.html",
        "front.png": out / "index.html",
    }
    for name, page in pages.items():
        _open(driver, page)
        _shot(driver, name)
        assert driver.title.endswith("kanbench")


def test_the_index_starts_with_the_newest_boards_and_history_skips_single_files(site):
    out, _ = site
    index = (out / "index.html").read_text()
    start = index[index.index('id="start"') : index.index("All files")]
    assert "Leaderboard: seed" in start and "Accuracy suite" in start and "Latest table: AMD EPYC 25/17 AVX512 (2t)" in start
    assert start.index("Leaderboard") < start.index("Accuracy suite") < start.index("Latest table")
    history = (out / "history.html").read_text()
    assert "AMD EPYC 25/17 AVX512 (2t): 2x150x1-b32-float32" in history
    assert "AMD EPYC 25/17 AVX512 (1t)" not in history  # one file of that machine: no one-point chart


def test_boards_show_the_published_claims_as_measured(site):
    out, _ = site
    board = next(p for p in sorted(out.glob("board-*-leaderboard-seed-*.html")))
    html = board.read_text()
    assert 'id="claims"' in html and "claimed 1.5x faster than fastkan" in html and "does not hold" in html


def test_the_workloads_page_puts_boards_side_by_side(tmp_path):
    inputs = [str(p) for p in sorted(RESULTS.glob("*_leaderboard-science*.json"))]
    if len(inputs) < 2:
        pytest.skip("no multi-workload leaderboard files committed")
    publish(inputs, tmp_path / "site")
    html = (tmp_path / "site" / "workloads.html").read_text()
    assert "2 workloads" in html and "science-deep" in html and "(1.00x)" in html
    assert 'data-figure="workloads"' in html


def test_the_front_page_answers_the_question_before_the_file_index(site):
    out, _ = site
    index = (out / "index.html").read_text()
    assert index.index('id="front"') < index.index('id="start"') < index.index('id="files"')
    assert 'data-figure="front-workloads"' in index and 'data-figure="front-accuracy"' in index
    figures = {
        fid: json.loads(index.split(f'id="{fid}">', 1)[1].split("</script>", 1)[0])
        for fid in ("front-workloads", "front-accuracy")
    }
    assert figures["front-workloads"]["data"][0]["type"] == "heatmap"
    names = {t["name"] for t in figures["front-accuracy"]["data"]}
    assert {"mlp", "splines-better_kan", "Pareto front"} <= names
    files = index.split('id="files"', 1)[1].split("</table>", 1)[0]
    assert "_submit.py" not in files and "/tmp/" not in files


@browser
def test_an_implementation_has_one_colour_across_the_charts_of_a_page(site, driver):
    """In Chromium: every chart of the accuracy page, as plotly drew it, gives each implementation
    the same marker colour (colours follow the name, not the order of appearance)."""
    out, _ = site
    _open(driver, out / "accuracy.html")
    pairs = driver.execute_script(
        "return Array.from(document.querySelectorAll('div.chart')).flatMap(d => (d.data || [])"
        ".filter(t => t.marker && t.marker.color).map(t => [t.name, t.marker.color]))"
    )
    seen: dict = {}
    for name, color in pairs:
        seen.setdefault(name, set()).add(color)
    assert len(seen) >= 3 and all(len(c) == 1 for c in seen.values()), seen


def test_commands_are_shown_as_a_user_would_type_them(monkeypatch):
    from kanbench import runner
    from kanbench.site.publish import display_command

    assert display_command("_submit.py /tmp/acc-slurm/jobs") == "(a job of kanbench ... --executor slurm)"
    assert display_command("kanbench accuracy --markdown /tmp/acc/accuracy2.md") == "kanbench accuracy --markdown accuracy2.md"
    assert display_command("kanbench run --out results/x.json") == "kanbench run --out results/x.json"
    monkeypatch.setenv(runner.COMMAND_ENV, "kanbench accuracy --executor slurm")  # what a Slurm job records
    assert runner.command_line() == "kanbench accuracy --executor slurm"


def test_the_front_page_shows_the_default_tier_and_an_absolute_budget_file_has_its_summary():
    """A newer accuracy file of a few rows (the full tier's convergence check) does not replace the
    default tier (every implementation) on the front page; a file with absolute budgets, which has
    no x1 budget, still gets its summary at its middle budget."""
    from types import SimpleNamespace

    from kanbench import results as results_mod
    from kanbench.accuracy import render, summary
    from kanbench.site import front_page

    default = sorted(RESULTS.glob("*_accuracy-default.json"))[-1]
    full = sorted(RESULTS.glob("*_accuracy-full.json"))[-1]
    items = [SimpleNamespace(path=p, doc=results_mod.load(p), slug=p.stem) for p in (default, full)]
    items[1].doc.machine["timestamp"] = "2999-01-01T00:00:00"  # the newer file
    front, _ = front_page.panels(SimpleNamespace(docs=items))
    assert any(default.name in text for _, text, _, _ in front)
    records = [r for r in items[1].doc.results if hasattr(r, "task_family")]
    assert summary.main_budget(records) == 1000.0
    assert "splines-better_kan" in render.summary_table(records) and summary.error_ratios(records)
