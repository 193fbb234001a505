"""One colour and marker per implementation, the same in every figure (the site, the docs, results/).

A colour is a function of the implementation's name alone -- never of the order rows appear in --
so a row keeps its colour when others are added or removed, and two figures can be compared by
colour. Families share a hue and differ in shade and marker: the MLP is black, our layers red and
orange with a star, the public B-spline KANs blues, Gaussian/RSWAF greens, polynomial bases purples,
Fourier and sine browns, wavelets pinks, rational bases olives. A name not in the table gets a
colour from a fixed list by a stable hash of the name.

:func:`style` takes a name or a row label (``splines-better_kan-cpu``, ``pykan (cuda)``) and returns
a :class:`Style` with plotly and matplotlib spellings of its marker.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

#: family hues, darkest first
_BLUES = ("#1f4e9c", "#2f6fd6", "#5b8fe6", "#8fb3f0", "#174070", "#3f7fbf")
_GREENS = ("#1b7a3a", "#3fae5a", "#7fcf8f")
_PURPLES = ("#5b2a86", "#8a4fc7", "#b48ae0", "#6f5aa8")
_BROWNS = ("#7a4a1f", "#a8743f", "#c9a06a")
_PINKS = ("#a3246b", "#d0508f", "#e98ab8")
_OLIVES = ("#6b6b1f", "#9a9a2f")
_CYANS = ("#0f7f8c",)
#: the fallback for names not in :data:`KNOWN`
_OTHERS = ("#8c564b", "#17becf", "#bcbd22", "#7f7f7f", "#e377c2", "#9467bd", "#2ca02c", "#1f77b4")

#: plotly marker symbols in the order shades take them, and their matplotlib spellings
_MARKERS = ("circle", "square", "triangle-up", "diamond", "cross", "x", "pentagon", "hexagon")
_MPL = {
    "circle": "o",
    "square": "s",
    "triangle-up": "^",
    "diamond": "D",
    "cross": "P",
    "x": "X",
    "pentagon": "p",
    "hexagon": "h",
    "star": "*",
}


@dataclass(frozen=True)
class Style:
    """How one implementation is drawn."""

    color: str
    marker: str  #: a plotly symbol name
    width: float = 1.5  #: line width (the MLP and our layers draw heavier)
    dash: str = "solid"  #: plotly dash name

    @property
    def mpl_marker(self) -> str:
        return _MPL.get(self.marker, "o")

    @property
    def mpl_dash(self) -> str:
        return {"solid": "-", "dash": "--", "dot": ":"}.get(self.dash, "-")


def _family(shades, i, marker=None, **kw) -> Style:
    return Style(shades[i % len(shades)], marker or _MARKERS[i % len(_MARKERS)], **kw)


#: every implementation this project knows, by name
KNOWN: dict[str, Style] = {
    "mlp": Style("#111111", "diamond", width=3.0, dash="dash"),
    "splines-better_kan": Style("#d62728", "star", width=2.5),
    "rbf-better_kan": Style("#ff7f0e", "star", width=2.5),
    **{n: _family(_BLUES, i) for i, n in enumerate(("effkan", "pykan", "pykan-speed", "inkan", "inkan-eager", "flashkan"))},
    **{n: _family(_GREENS, i) for i, n in enumerate(("fastkan", "fasterkan"))},
    **{n: _family(_PURPLES, i) for i, n in enumerate(("chebykan", "kagn", "ikan-jacobi", "ikan-taylor"))},
    **{n: _family(_BROWNS, i) for i, n in enumerate(("fourierkan", "ikan-fourier", "sinekan"))},
    **{n: _family(_PINKS, i) for i, n in enumerate(("wavkan", "morlet-kan", "ikan-wavelet"))},
    **{n: _family(_OLIVES, i) for i, n in enumerate(("grkan", "rkan"))},
    "relukan": Style(_CYANS[0], "circle"),
}

_SUFFIX = re.compile(r"-(cpu|gpu|cuda(:\d+)?)(-.*)?$")


def base_name(label: str) -> str:
    """The implementation name in a row label: ``splines-better_kan-cpu`` -> ``splines-better_kan``,
    ``pykan (cuda)`` -> ``pykan``, ``effkan-flops`` -> ``effkan``."""
    name = label.split(" (", 1)[0].strip()
    name = _SUFFIX.sub("", name)
    if name not in KNOWN:
        for known in sorted(KNOWN, key=len, reverse=True):
            if name.startswith(known + "-"):
                return known
    return name


def style(label: str) -> Style:
    """The :class:`Style` of an implementation (by name or row label); stable for unknown names too."""
    name = base_name(label)
    if name in KNOWN:
        return KNOWN[name]
    h = zlib.crc32(name.encode())
    return Style(_OTHERS[h % len(_OTHERS)], _MARKERS[(h // len(_OTHERS)) % len(_MARKERS)])


def plotly_trace_style(label: str, lines: bool = True) -> dict:
    """Keyword arguments for a plotly Scatter of this implementation: marker (and line) in its style."""
    s = style(label)
    out = {"marker": {"color": s.color, "symbol": s.marker, "size": 9}}
    if lines:
        out["line"] = {"color": s.color, "width": s.width, "dash": s.dash}
    return out


__all__ = ["KNOWN", "Style", "base_name", "plotly_trace_style", "style"]
