"""``python -m client``: the same command line as the ``jobs`` console script (see client.cli)."""

from __future__ import annotations

import sys

from client.cli import main

if __name__ == "__main__":
    sys.exit(main())
