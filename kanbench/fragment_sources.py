"""Where generated fragments read from: the repository's folders, the newest results file of a kind,
links to repository files from a page, a run's recorded duration. Shared by :mod:`kanbench.fragments`
and ``kanbench.fragment_runs``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def _newest(pattern: str, folder: Path = RESULTS) -> Optional[Path]:
    found = sorted(folder.glob(pattern), key=lambda p: p.name)
    return found[-1] if found else None


def _duration(doc: dict) -> str:
    """The run's wall time (``config.elapsed_s``, written by kanbench accuracy), or ""."""
    elapsed = (doc.get("config") or {}).get("elapsed_s")
    if not isinstance(elapsed, (int, float)):
        return ""
    minutes, seconds = divmod(int(round(elapsed)), 60)
    return f"{minutes} min {seconds:02d} s"


def _link(page: str, path: Path, text: str = "") -> str:
    """A link to a repository file from ``page``: markdown from the README, the manual's ``{repo}`` role
    from docs/ (its target relative to the repository root)."""
    rel = path.relative_to(ROOT).as_posix()
    if page.startswith("docs/"):
        return f"{{repo}}`{text} <{rel}>`" if text else f"{{repo}}`{rel}`"
    return f"[{text or rel}]({rel})"
