"""``{repo}`path```: a link to a file of this repository (an evidence or results file).

The file is copied into the built site (as Sphinx does for ``{download}``), so the link works
offline and from any host; a path that does not exist is a build warning, which ``make docs``
turns into an error. The link text is the path itself, as it reads in a checkout.
"""

from docutils import nodes
from sphinx import addnodes
from sphinx.roles import XRefRole


class RepoFileRole(XRefRole):
    """Like ``{download}``, with the target taken relative to the repository root."""

    nodeclass = addnodes.download_reference
    innernodeclass = nodes.literal

    def process_link(self, env, refnode, has_explicit_title, title, target):
        # Sphinx reads a leading "/" as the source directory (docs/); its parent is the repository
        return title, "/../" + target.lstrip("/")


def setup(app):
    app.add_role("repo", RepoFileRole())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
