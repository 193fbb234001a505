"""The manual (docs/): the tutorial's plugin really runs, the CI workflow example names real
targets and commands, and the built site (``make docs``) works in headless Chromium.

The browser tests need Debian's chromium + chromium-driver, selenium and a built manual
(``make test-docs`` builds it and installs the rest); without them they skip with one line.
"""

import json
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import headless
import pytest
from conftest import QUICK, ROOT, run_cli

DOCS = ROOT / "docs"
BUILD = DOCS / "_build" / "html"
TUTORIAL = DOCS / "tutorial"


# ------------------------------------------------------------------ the tutorial's code


def test_tutorial_plugin_is_discovered_and_builds_a_working_module():
    import torch

    from kanbench.discovery import discover

    registry = discover([str(TUTORIAL)], builtin=False, entry_points=False)
    entry = registry.get("mykan")
    assert entry.available, entry.reason
    model = entry.spec.build((2, 5, 1), torch.device("cpu"), torch.float32, grid_size=5)
    x = torch.rand(16, 2, requires_grad=True)
    y = model(x)
    assert y.shape == (16, 1)
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_tutorial_command_measures_the_plugin_next_to_the_mlp():
    proc = run_cli(
        "run", "--implementations", "docs/tutorial", "--impl", "mlp,mykan", "--device", "cpu",
        "--in-process", "--no-save", "--no-memory", *QUICK, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "mykan-cpu" in proc.stdout and "mlp-cpu" in proc.stdout
    assert "sanity" not in proc.stdout  # the gate passed it: no warning or failure line


def test_the_your_workload_recipe_runs():
    """The getting-started recipe: every `kanbench` line parses, and the custom-workload run measures."""
    import shlex

    from kanbench.cli import build_parser

    page = (DOCS / "getting-started.md").read_text()
    block = page.split("## Your workload, in three commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("kanbench ")]
    assert len(commands) == 3
    for argv in commands:
        build_parser().parse_args(argv[1:])  # every option exists (argparse exits on an unknown one)
    run = commands[0][1:] + ["--in-process", "--no-save", "--no-memory", *QUICK]
    proc = run_cli(*run, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "splines-better_kan-cpu" in proc.stdout


def test_ci_workflow_example_uses_real_make_targets_and_commands():
    yaml = pytest.importorskip("yaml")
    from kanbench.cli import build_parser

    workflow = yaml.safe_load((DOCS / "ci" / "kanbench.yml").read_text())
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    text = "\n".join(runs)
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    used = set(re.findall(r"\bmake ([a-z][\w-]*)", text))
    assert used and used <= targets, used - targets
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    called = set(re.findall(r"kanbench (\w+)", text))
    assert called and called <= subcommands, called - subcommands


# ------------------------------------------------------------------ the built manual in headless Chromium


def _browser_reason():
    if not (BUILD / "index.html").is_file():
        return "the manual is not built here (make docs; make test-docs builds it first)"
    return headless.missing("test-docs")


browser = pytest.mark.skipif(bool(_browser_reason()), reason=_browser_reason() or "")


@pytest.fixture(scope="module")
def driver():
    yield from headless.chrome("1300,900")


def _pages():
    """Every page of the manual: ours, the generated indices and the highlighted sources."""
    return sorted(p for p in BUILD.rglob("*.html") if "_static" not in p.parts)


def _open(driver, url: str):
    driver.get_log("performance")  # drop what earlier pages logged
    driver.get_log("browser")
    driver.get(url)
    driver.execute_script("return document.readyState")


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


@browser
def test_every_page_loads_without_console_errors_or_network(driver):
    pages = _pages()
    assert len(pages) >= 20
    for page in pages:
        _open(driver, page.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, (page.name, errors)
        foreign = [u for u in _requests(driver) if not u.startswith(("file://", "data:", "about:", "blob:"))]
        assert not foreign, (page.name, foreign)


@browser
def test_navigation_and_internal_links_resolve(driver):
    from selenium.webdriver.common.by import By

    _open(driver, (BUILD / "index.html").as_uri())
    nav = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, ".sidebar-tree a.reference")]
    for name in ("measuring.html", "leaderboard.html", "cli.html", "troubleshooting.html", "changelog.html"):
        assert any(h.endswith(name) for h in nav), (name, nav)
    for page in _pages():
        _open(driver, page.as_uri())
        hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        for href in hrefs:
            url = urlparse(href)
            if url.scheme in ("http", "https", "mailto"):
                continue  # a link out (e.g. a project's repository), never loaded by the page itself
            assert url.scheme == "file", (page.name, href)
            target = Path(unquote(url.path))
            assert target.exists(), (page.relative_to(BUILD), href)
            if url.fragment and target.suffix == ".html":
                assert f'id="{url.fragment}"' in target.read_text(), (page.relative_to(BUILD), href)


@browser
def test_search_finds_pages(driver):
    from selenium.webdriver.common.by import By

    _open(driver, (BUILD / "search.html").as_uri() + "?q=leaderboard")
    deadline = time.monotonic() + 15
    links = []
    while time.monotonic() < deadline:  # the results appear one page at a time
        links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a")]
        if any(h.endswith("/leaderboard.html") for h in links):
            break
        time.sleep(0.2)
    assert any(h.endswith("/leaderboard.html") for h in links), links
