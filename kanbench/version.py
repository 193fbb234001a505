"""kanbench's version, in a module of its own: what needs it imports this, not the package's face."""

__version__ = "0.1.0"
