"""The progress display of ``jobs wait``: one rich live line on a terminal, plain lines otherwise.

On a TTY a rich ``Live`` line (spinner, elapsed time, status, percent, progress message) is
redrawn in place several times a second while waiting between polls, and left on screen at the
end. It refreshes only from ``update`` and ``sleep`` (no refresh thread), so what it draws depends
on the clock it is given alone. Elsewhere a line is printed only when the status, percent or
message changes, so logs and pipes stay readable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from client.models import JobStatus

SPINNER = "line"  # rich's ASCII spinner: - \ | /
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
        self._spinner = Spinner(SPINNER)
        self._live: Live | None = None

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
            self._draw()

    def finish(self) -> None:
        """End the live line: leave it on screen, show the cursor again. Safe to call more than once."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.finish()

    @staticmethod
    def _describe(status: JobStatus) -> str:
        text = status.status
        if status.percent_complete is not None:
            text += f" {status.percent_complete}%"
        if status.cancel_requested and not status.is_terminal:
            text += " (cancel requested)"
        return f"{text} {status.progress_message}" if status.progress_message else text

    def _line(self, status: JobStatus) -> RenderableType:
        text = Text(f"{self.elapsed:6.1f}s {self._describe(status)}", no_wrap=True, overflow="ellipsis")
        if status.is_terminal:
            return Text.assemble("  ", text, no_wrap=True, overflow="ellipsis")
        self._spinner.update(text=text)
        return self._spinner

    def _draw(self) -> None:
        if self._last is None:
            return
        line = self._line(self._last)
        if self._live is None:
            console = Console(file=self.stream, force_terminal=True, get_time=self._clock, markup=False, emoji=False,
                              highlight=False)
            self._live = Live(line, console=console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
            self._live.start(refresh=True)
        else:
            self._live.update(line, refresh=True)
