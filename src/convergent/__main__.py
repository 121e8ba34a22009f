"""``python -m convergent``: the same as the ``convergent`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
