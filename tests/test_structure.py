"""The package's shape: no import cycles inside kanbench/ (module-level and function-level imports
both count), and no module over 450 lines in kanbench/ or implementations/better_kan/."""

import ast
import codecs
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kanbench"
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: set) -> set:
    """The kanbench modules ``name`` imports, wherever the import statement sits (top level, inside
    a function, under ``if TYPE_CHECKING``). ``from kanbench.x import y`` counts as an edge to
    ``kanbench.x.y`` when that is a module, else to ``kanbench.x``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, name, path.name == "__init__.py")
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def import_graph() -> dict:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    src = tmp_path / "kanbench" / "x.py"
    src.parent.mkdir()
    src.write_text("def f():\n    from kanbench import y\n    from . import z\n    import kanbench.w\n")
    known = {"kanbench", "kanbench.x", "kanbench.y", "kanbench.z", "kanbench.w"}
    assert imports_of("kanbench.x", src, known) == {"kanbench.y", "kanbench.z", "kanbench.w"}


def test_no_import_cycles_in_kanbench():
    found = cycles(import_graph())
    assert not found, "import cycles in kanbench/ (lazy imports count):\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("folder", ["kanbench", "implementations/better_kan"])
def test_no_module_over_the_line_limit(folder):
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


if __name__ == "__main__":
    graph = import_graph()
    for name in sorted(graph):
        print(f"{name}: {', '.join(sorted(graph[name])) or '-'}")
    for c in cycles(graph):
        print("CYCLE:", " <-> ".join(c))


# ----------------------------------------------------------------------------- the front door and its words


def test_the_readme_is_a_door():
    """What kanbench is, the two commands, the table, the journeys and where the findings are: at
    most 100 lines, the two commands first."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 100, f"README.md has {len(lines)} lines; the manual holds the rest"
    text = "\n".join(lines[:6])
    assert "make bench" in text and "make test" in text


#: phrases about how the project was produced rather than what it is (prose, not identifiers), kept
#: in rot13 so that this file does not itself contain them
PRODUCTION_WORDS = codecs.decode(
    "\\ovffhr \\q+|\\(vffhr:|\\ovffhr'f\\o|\\o(guvf|n|gur|cerivbhf|rneyvre|arkg|arj) frffvba\\o|\\oghea \\q+\\o|frnepu gbby|\\oyrag\\o",
    "rot13",
)


def _tracked_text_files():
    import subprocess

    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in out:
        path = ROOT / name
        if name == "CHANGELOG.md" or name.startswith("results/") and name.endswith(".json"):
            continue  # history, and results files that record the commands that made them
        if path.suffix in (".png", ".svg", ".ico", ".so", ".whl", ".gz") or not path.is_file():
            continue
        try:
            yield name, path.read_text()
        except UnicodeDecodeError:
            continue


def test_no_file_speaks_of_how_it_was_made():
    import re

    pattern = re.compile(PRODUCTION_WORDS, re.I)
    found = [
        f"{name}:{i}: {line.strip()[:100]}"
        for name, text in _tracked_text_files()
        if name != "tests/test_structure.py"
        for i, line in enumerate(text.splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)
    assert pattern.search(codecs.decode("nf nterrq va vffhr 12", "rot13"))
    assert pattern.search(codecs.decode("(vffhr: shfrq xrearyf)", "rot13"))
    assert not pattern.search(
        codecs.decode("gur ebhaqf jrer gnxra va ghea; clgrfg_frffvbafgneg(frffvba); vgf vffhr #11", "rot13")
    )
