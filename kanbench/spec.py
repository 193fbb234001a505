"""The spec an implementation registers with the harness.

An implementation is a plain ``torch.nn.Module`` plus this small record. A
module in ``implementations/`` (or in a directory given with
``--implementations``, or an entry point in the ``kanbench.implementations``
group) registers it by holding an ``Implementation`` at module level::

    from kanbench import Implementation

    def build(widths, device, dtype):
        return MyKAN(widths).to(device=device, dtype=dtype)

    spec = Implementation(name="mykan", build=build, description="my KAN")

``build`` receives the network widths ``[in, hidden..., out]`` as a tuple of
ints, a ``torch.device`` and a ``torch.dtype`` and returns the module, on that
device and in that dtype; implementations that take a grid size declare
``options=("grid_size",)`` and receive it as a keyword. ``flops`` gives the
analytic forward FLOPs per sample (:mod:`kanbench.flops`). Optional third-party packages are named in
``requires`` (import names); the harness imports them before calling ``build``
and reports the row as unavailable, with ``install`` as the hint, when one is
missing, too old or fails to import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Implementation:
    """What an implementation registers: its name, a ``build(widths, device, dtype)`` and metadata."""

    name: str
    build: Callable[..., "object"]
    description: str = ""
    #: import names of optional packages the build needs, e.g. ("kan",)
    requires: Sequence[str] = ()
    #: minimum versions by distribution name, e.g. {"pykan": "0.2.1"}
    min_versions: Mapping[str, str] = field(default_factory=dict)
    #: how to install what ``requires`` names, shown when it is missing
    install: str = ""
    #: devices the implementation supports ("cpu", "cuda")
    devices: Sequence[str] = ("cpu", "cuda")
    #: free-form notes shown by ``kanbench list`` (parameter-parity rule, quirks)
    notes: str = ""
    #: keyword options ``build`` accepts besides widths/device/dtype (e.g. ("grid_size",)),
    #: which ``kanbench sweep`` varies
    options: Sequence[str] = ()
    #: options the parameter matcher (``--match``, the accuracy suite) builds it with, and the matched
    #: rows are then built with: e.g. the MLP's {"hidden_factor": 1}, so its width is searched one unit
    #: at a time
    match_options: Mapping[str, object] = field(default_factory=dict)
    #: analytic forward FLOPs per sample: ``flops(widths, **options) -> float`` (see kanbench.flops)
    flops: Optional[Callable[..., float]] = None
    #: the basis family shown by the leaderboard (e.g. "B-spline", "Chebyshev", "MLP")
    family: str = ""
    #: extra availability check: ``check() -> None`` when usable, else the reason (e.g. a
    #: source checkout that ``kanbench install`` has not fetched yet)
    check: Optional[Callable[[], Optional[str]]] = None
    #: grid extension (``kanbench accuracy --protocol grid-extension``): ``extend_grid(model, new_size,
    #: x) -> model`` with a finer grid of ``new_size`` intervals, fitted to the current function on the
    #: inputs x (N, in); None: the model's own ``extend_grid(new_size, x=x)`` where it has one
    extend_grid: Optional[Callable[..., "object"]] = None
    #: the grid adaptation the package's own training does, for the grid-extension protocol:
    #: ``update_grid(model, x)`` refits the grids to the inputs x (pykan's fit calls its
    #: ``update_grid_from_samples`` every 5 steps of the first 50); None: no adaptation
    update_grid: Optional[Callable[..., None]] = None
    #: ``path_note(model, x) -> None | str``: one line when the model runs a slower path for an input
    #: like x (batch, in) than its fastest (e.g. a native operator without a kernel for the dtype);
    #: the row's results keep it and the tables print it under the rows
    path_note: Optional[Callable[..., Optional[str]]] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ValueError(
                f"implementation name {self.name!r} must start with a letter or digit and "
                "contain only letters, digits, '_', '.', '+' and '-'"
            )
        if not callable(self.build):
            raise TypeError(f"implementation {self.name!r}: build must be callable")
        object.__setattr__(self, "requires", tuple(self.requires))
        object.__setattr__(self, "devices", tuple(self.devices))
        object.__setattr__(self, "min_versions", dict(self.min_versions))
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "match_options", dict(self.match_options))
        unknown = [k for k in self.match_options if k not in self.options]
        if unknown:
            raise ValueError(f"implementation {self.name!r}: match_options {unknown} are not among its options")
