"""Sphinx configuration of kanbench's manual (``make docs``: docs/_build/html, warnings are errors)."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document this tree's code: kanbench from the repository root, better_kan from implementations/
# (the name it is installed under), ahead of any installed copy.
sys.path[:0] = [str(DOCS / "_ext"), str(ROOT), str(ROOT / "implementations")]

project = "kanbench"
author = "the kanbench authors"
copyright = "2026, the kanbench authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
    "repofile",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# a reference that does not resolve is an error (with -W), also for Python objects
nitpicky = True
nitpick_ignore_regex = [
    # third-party types in signatures: no intersphinx (the build is offline)
    (r"py:(class|obj|data)", r"(torch|numpy|np|nn|pathlib|typing|collections|matplotlib)(\..*)?"),
    (r"py:(class|obj|data)", r"(Tensor|Path|Optional|Union|Callable|Sequence|Mapping|Iterable|Any|T)"),
    (r"py:(class|obj|data)", r"(optional|callable|object|dataclasses\..*)"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True}
autosummary_generate = False  # summary tables only: the pages document every object themselves
autodoc_inherit_docstrings = False  # not torch's docstrings for forward/backward
napoleon_google_docstring = True
napoleon_numpy_docstring = False


def _keep_attribute_comments(app, what, name, obj, options, lines):
    """Napoleon reads the ``Args:`` sections of our docstrings; it would also read a ``#:`` comment
    such as "minimum versions by distribution name, e.g. {...}" as "type: description". Attribute,
    data and property docstrings are kept as written: saved before napoleon runs, restored after."""
    if what in ("attribute", "data", "property"):
        key = (what, name)
        if key in _SAVED:
            lines[:] = _SAVED.pop(key)
        else:
            _SAVED[key] = list(lines)


_SAVED = {}


def setup(app):
    app.connect("autodoc-process-docstring", _keep_attribute_comments, priority=100)  # before napoleon (500)
    app.connect("autodoc-process-docstring", _keep_attribute_comments, priority=900)  # after it


html_theme = "furo"
html_title = "kanbench"
html_static_path = []
html_show_sourcelink = False
html_last_updated_fmt = None
