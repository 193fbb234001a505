"""How the site's pages show numbers, dates, machines and names (shared by every page module)."""

from __future__ import annotations

import math
import re
from typing import Optional

from kanbench.records import ResultsDocument


def slugify(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "file"


def ms(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 1 else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def mb(v: Optional[int]) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v / 2**20:.2f} MB"


def num(v) -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(float(v))


def file_date(doc: ResultsDocument) -> str:
    return str(doc.machine.get("timestamp") or "")[:19]


def machine_of(doc: ResultsDocument, device: str = "cpu") -> str:
    from kanbench.machine import machine_label

    try:
        return machine_label(doc.machine, device, doc.threads)
    except Exception:
        return str(doc.machine.get("hostname") or "?")


def escape(text: str) -> str:
    import html

    return html.escape(str(text))
