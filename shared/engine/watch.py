"""Waiting for a job to change, for ``GET .../status?waitSeconds=N`` (long polling).

The Table service has no change notifications, so the host re-reads the status entity every
``WATCH_INTERVAL`` (0.5 s: two point reads per waiting second) until its ETag changes (any
write: a transition, progress, a cancel request, a lease renewal) or the time is up. Waiters are
bounded per process (``JOBS_STATUS_MAX_WAITERS``); past the bound a request is answered at once,
as if it had not asked to wait, and the response says whether it waited.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.domain.record import JobRecord
from shared.store.status_table import StatusStore

WATCH_INTERVAL = 0.5  # seconds between reads of a watched job
MAX_WAIT_SECONDS = 30


@dataclass(frozen=True)
class Watched:
    record: JobRecord
    waited: bool  # False: answered at once (terminal already, or every waiter slot taken)


class Watchers:
    """The waiter slots of one process."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0

    async def until_changed(self, store: StatusStore, record: JobRecord, seconds: float) -> Watched:
        """The job once it differs from ``record`` (or is gone), or ``record`` after ``seconds``."""
        if record.is_terminal or seconds <= 0 or self.active >= self.limit:
            return Watched(record, waited=False)
        self.active += 1  # one event loop: no lock needed between the check and the increment
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + min(seconds, MAX_WAIT_SECONDS)
            while (left := deadline - loop.time()) > 0:
                await asyncio.sleep(min(WATCH_INTERVAL, left))
                fresh = await store.get(record.job_id)
                if fresh is None:
                    return Watched(record, waited=True)
                if fresh.etag != record.etag:
                    return Watched(fresh, waited=True)
            return Watched(record, waited=True)
        finally:
            self.active -= 1
