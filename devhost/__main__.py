"""``python -m devhost``: see devhost.cli."""

from __future__ import annotations

import sys

from devhost.cli import main

if __name__ == "__main__":
    sys.exit(main())
