"""``kanbench publish``: a self-contained static site of results files (see :mod:`kanbench.site.publish`)."""

from kanbench.site.publish import PublishError, publish

__all__ = ["PublishError", "publish"]
