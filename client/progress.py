"""The progress display of ``jobs wait``: one live line on a terminal, plain lines otherwise.

On a TTY the line (spinner, status, percent, elapsed time, progress message) is redrawn in place
several times a second while waiting between polls; elsewhere a line is printed only when the
status, percent or message changes, so logs stay readable.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

from client.models import JobStatus

SPINNER = "|/-\\"
TICK_SECONDS = 0.25


class Progress:
    def __init__(
        self, stream: TextIO, *, tty: bool | None = None, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._last: JobStatus | None = None
        self._printed: tuple[str, int | None, str | None] | None = None
        self._frame = 0
        self._drawn = False

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def update(self, status: JobStatus) -> None:
        """A new status arrived (the ``on_update`` callback of JobsClient.wait)."""
        self._last = status
        if self.tty:
            self._draw()
            return
        key = (status.status, status.percent_complete, status.progress_message)
        if key != self._printed:
            self._printed = key
            print(f"{self.elapsed:7.1f}s {self._describe(status)}", file=self.stream, flush=True)

    def sleep(self, seconds: float) -> None:
        """Wait between polls, redrawing the live line (elapsed time, spinner) on a TTY."""
        if not self.tty:
            self._sleep(seconds)
            return
        end = self._clock() + seconds
        while (remaining := end - self._clock()) > 0:
            self._sleep(min(TICK_SECONDS, remaining))
            self._frame += 1
            self._draw()

    def finish(self) -> None:
        """End the live line (leave it on screen)."""
        if self.tty and self._drawn:
            print(file=self.stream, flush=True)
            self._drawn = False

    @staticmethod
    def _describe(status: JobStatus) -> str:
        text = status.status
        if status.percent_complete is not None:
            text += f" {status.percent_complete}%"
        if status.cancel_requested and not status.is_terminal:
            text += " (cancel requested)"
        return f"{text} {status.progress_message}" if status.progress_message else text

    def _draw(self) -> None:
        if self._last is None:
            return
        spinner = " " if self._last.is_terminal else SPINNER[self._frame % len(SPINNER)]
        line = f"{spinner} {self.elapsed:6.1f}s {self._describe(self._last)}"
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        self.stream.write(f"\r\x1b[2K{line[:width]}")
        self.stream.flush()
        self._drawn = True
