"""The running attempt's lease: renewed by progress reports and a heartbeat while the handler runs.

The lease is how a worker says "I still have this job". It lives on the status entity
(``leaseOwner`` + ``leaseExpiresAt``) and is written with If-Match, so the record held here is
also the one whose ETag the final transition uses. When the entity changed underneath (a cancel
request, a takeover), the lease re-reads it: still ours -> carry on; someone else's -> LeaseLost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.contract import JobStatus
from shared.status import JobRecord
from shared.status_store import ConcurrencyConflict, StatusStore

logger = logging.getLogger("jobs.lease")


class LeaseLost(Exception):
    """Another worker (or maintenance) took the job over: stop without writing its status."""


class Lease:
    def __init__(self, store: StatusStore, record: JobRecord, seconds: float, clock: Callable[[], datetime]):
        self.store = store
        self.record = record
        self.seconds = seconds
        self.clock = clock
        self.lost = False
        self._lock = asyncio.Lock()

    @property
    def owner(self) -> str | None:
        return self.record.lease_owner

    @property
    def cancel_requested(self) -> bool:
        return self.record.cancel_requested

    def _is_ours(self, fresh: JobRecord | None) -> bool:
        return fresh is not None and fresh.status is JobStatus.RUNNING and fresh.lease_owner == self.owner

    async def _reread(self) -> JobRecord:
        fresh = await self.store.get(self.record.job_id)
        if fresh is None or not self._is_ours(fresh):
            self.lost = True
            raise LeaseLost(str(self.record.job_id))
        self.record = fresh
        return fresh

    async def renew(self, percent: int | None = None, message: str | None = None) -> None:
        """Extend the lease (and record progress); one re-read on a stale ETag."""
        async with self._lock:
            if self.lost:
                raise LeaseLost(str(self.record.job_id))
            now = self.clock()
            changes: dict[str, object] = {
                "lease_expires_at": now + timedelta(seconds=self.seconds), "updated_at": now,
            }
            if percent is not None:
                changes["progress_percent"] = max(0, min(100, int(percent)))
                changes["progress_message"] = (message or None) and message[:200]
            try:
                self.record = await self.store.update(self.record, **changes)
            except ConcurrencyConflict:
                fresh = await self._reread()
                self.record = await self.store.update(fresh, **changes)

    async def refresh(self) -> JobRecord:
        """Re-read the entity (to see a cancel request); LeaseLost if it is no longer ours."""
        async with self._lock:
            if self.lost:
                raise LeaseLost(str(self.record.job_id))
            return await self._reread()

    async def heartbeat(self) -> None:
        """Renew every third of the lease until cancelled or lost. Errors are logged, not raised."""
        interval = max(0.5, self.seconds / 3)
        while not self.lost:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except LeaseLost:
                logger.warning("lease lost for job %s", self.record.job_id)
                return
            except Exception:
                logger.exception("lease renewal failed for job %s; will retry", self.record.job_id)
