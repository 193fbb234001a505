"""``python -m kanbench``."""

import sys

from kanbench.cli import main

if __name__ == "__main__":  # worker processes (spawn) import this module under another name
    sys.exit(main())
