"""The base of every typed record of a results file (:mod:`kanbench.records`, :mod:`kanbench.accuracy.records`).

A record is a dataclass with an ``extra`` dict and an ``error``: it owns its JSON through
``to_dict``/``from_dict``, and unknown fields are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses


class Record:
    """``to_dict``/``from_dict`` for the record dataclasses: declared fields, plus ``extra``."""

    extra: dict

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names and k not in cls._derived}
        return cls(**known, extra=extra)

    _derived: tuple = ()

    def update(self, d: dict) -> None:
        """Set fields from a dict (a worker's JSON reply); unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(self)} - {"extra"}
        for k, v in d.items():
            if k in names:
                setattr(self, k, v)
            elif k not in self._derived:
                self.extra[k] = v

    @property
    def failed(self) -> bool:
        """True when the row carries an error (it may still hold partial measurements)."""
        return bool(self.error)
