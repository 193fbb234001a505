"""One module per ``kanbench`` subcommand (see :mod:`kanbench.cli`)."""
