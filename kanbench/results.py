"""Results files: one JSON document per run -- writing atomically, reserving names, loading.

The schema (every field of a row, the document, versions and migration) is
defined and documented in :mod:`kanbench.records`; this module moves documents
between memory and disk.

Files are written atomically (a temporary file in the same directory, fsync,
``os.replace``), so a reader never sees half a file; a run rewrites its file
after every row, so an interrupted run keeps the rows it measured
(``"complete": false``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Optional

from kanbench.records import KIND, READABLE_VERSIONS, SCHEMA_VERSION, ResultsDocument, migrate

DEFAULT_DIR = Path("results")


class ResultsError(ValueError):
    """A results file that cannot be used; the message says which and why."""


def _json_default(obj):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:
        pass
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _clean(obj):
    """NaN/Inf are not JSON: store them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_atomic(path: os.PathLike | str, data: "dict | ResultsDocument") -> Path:
    """Write ``data`` (a document or any JSON dict) to ``path`` so that no reader sees half of it."""
    if isinstance(data, ResultsDocument):
        data = data.to_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; results are meant to be shared
        with os.fdopen(fd, "w") as f:
            json.dump(_clean(data), f, indent=1, default=_json_default, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "run"


def reserve_path(out: Optional[os.PathLike | str], directory: Path, host: str, label: str) -> Path:
    """The file this run writes. An explicit ``out`` must not exist; a default
    name (``<UTC time>_<host>_<label>.json``) gets a numeric suffix if taken.
    The file is created empty-exclusively so two runs never share it."""
    if out is not None:
        path = Path(out)
        if path.exists():
            raise ResultsError(f"{path} already exists; results are never overwritten (choose another --out)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
        return path
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    directory.mkdir(parents=True, exist_ok=True)
    base = f"{stamp}_{_slug(host)}_{_slug(label)}"
    for i in range(1000):
        path = directory / (f"{base}.json" if i == 0 else f"{base}-{i}.json")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise ResultsError(f"could not find a free file name for {base} in {directory}")


def new_document(machine: dict, config: dict) -> ResultsDocument:
    return ResultsDocument(machine=machine, config=config)


def validate(doc: object, source: str = "results") -> dict:
    """Check a results dict's shape and bring it to the current schema; raises :class:`ResultsError`."""
    if not isinstance(doc, dict):
        raise ResultsError(f"{source}: not a kanbench results file (top level is not an object)")
    if doc.get("kind", KIND) != KIND or "results" not in doc:
        raise ResultsError(f"{source}: not a kanbench results file (no 'results' list)")
    schema = doc.get("schema")
    if schema not in READABLE_VERSIONS:
        raise ResultsError(
            f"{source}: schema version {schema!r} is not supported (this kanbench reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; write version {SCHEMA_VERSION})"
        )
    if not isinstance(doc["results"], list):
        raise ResultsError(f"{source}: 'results' is not a list")
    for i, rec in enumerate(doc["results"]):
        if not isinstance(rec, dict):
            raise ResultsError(f"{source}: result #{i} is not an object")
        missing = [k for k in ("impl", "device") if k not in rec]
        if missing:
            raise ResultsError(f"{source}: result #{i} lacks {', '.join(missing)}")
    doc.setdefault("machine", {})
    doc.setdefault("config", {})
    return migrate(doc)


def load(path: os.PathLike | str) -> ResultsDocument:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise ResultsError(f"{path}: empty file (a run still in progress, or one that never wrote a row)")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: corrupt or truncated JSON ({exc.msg} at line {exc.lineno})") from None
    doc = validate(doc, str(path))
    try:
        return ResultsDocument.from_dict(doc, path=str(path))
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong type
        raise ResultsError(f"{path}: malformed results ({exc})") from None


def load_many(paths: Iterable[os.PathLike | str]) -> list[ResultsDocument]:
    return [load(p) for p in paths]
