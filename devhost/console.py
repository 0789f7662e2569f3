"""The console's log format: a record's job dimensions, when it has them, after its message.

The app logs with ``extra`` dimensions (jobId, correlationId, attempt) that Application Insights
shows as customDimensions; a plain console format drops them, so a job's story could not be read
locally. This formatter appends them, so ``grep <jobId>`` over devhost's output finds every line
about a job (its correlationId finds the request that submitted it).
"""

from __future__ import annotations

import logging
from typing import TextIO

DIMENSIONS = ("jobId", "correlationId", "attempt")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class DimensionsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        dims = [f"{name}={getattr(record, name)}" for name in DIMENSIONS if getattr(record, name, None) is not None]
        return f"{text} [{' '.join(dims)}]" if dims else text


def configure_console(stream: TextIO) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(DimensionsFormatter(FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
