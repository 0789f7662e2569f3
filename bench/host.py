"""``python -m bench.host``: devhost for the benchmark, as ``python -m devhost`` runs it, plus the
message lease (how long a received job message stays invisible; the crash probe shortens it).

Logging at WARNING, as in the in-process benchmark (INFO records are dropped at the level check);
the Celery worker runs with ``-l warning`` too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from devhost.cli import _serve
from devhost.host import DevHost


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.host")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project-dir", type=Path, required=True, help="folder with the bench host.json")
    parser.add_argument("--message-lease", type=float, default=600.0, help="seconds (devhost's default: 600)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = DevHost("bench.app", project_dir=args.project_dir, port=args.port, message_lease=args.message_lease)
    asyncio.run(_serve(host))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
