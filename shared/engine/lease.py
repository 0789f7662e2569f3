"""The running attempt's lease: renewed by progress reports and a heartbeat while the handler runs.

The lease is how a worker says "I still have this job". It lives on the status entity
(``leaseOwner`` + ``leaseExpiresAt``) and is renewed through the lifecycle like every other
change, so the record held here is also the one whose ETag the final transition uses. When the
entity changed underneath (a cancel request, a takeover), the lifecycle re-reads it: still
ours -> renewed; someone else's -> LeaseLost, and the handler is stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.domain.contract import JobStatus
from shared.domain.record import Amendment, JobRecord
from shared.domain.rules import Origin
from shared.engine.lifecycle import Contended, Lifecycle

logger = logging.getLogger("jobs.lease")


class LeaseLost(Exception):
    """Another worker (or maintenance) took the job over: stop without writing its status."""


class Lease:
    def __init__(self, lifecycle: Lifecycle, record: JobRecord, seconds: float, clock: Callable[[], datetime]):
        self.lifecycle = lifecycle
        self.record = record
        self.seconds = seconds
        self.clock = clock
        self.lost = False
        self.lost_event = asyncio.Event()  # set when the job is no longer ours: the handler must stop
        self._lock = asyncio.Lock()

    @property
    def owner(self) -> str | None:
        return self.record.lease_owner

    @property
    def cancel_requested(self) -> bool:
        return self.record.cancel_requested

    def _is_ours(self, fresh: JobRecord | None) -> bool:
        return fresh is not None and fresh.status is JobStatus.RUNNING and fresh.lease_owner == self.owner

    def _lose(self) -> LeaseLost:
        self.lost = True
        self.lost_event.set()
        return LeaseLost(str(self.record.job_id))

    async def renew(self, percent: int | None = None, message: str | None = None) -> None:
        """Extend the lease (and record progress); a stale ETag is re-read and, if still ours, renewed."""
        async with self._lock:
            if self.lost:
                raise LeaseLost(str(self.record.job_id))
            now = self.clock()

            def renewed(current: JobRecord) -> Amendment:
                if not self._is_ours(current):
                    raise self._lose()
                return current.lease_renewed(now + timedelta(seconds=self.seconds), now, percent, message)

            try:
                commit = await self.lifecycle.commit(self.record.job_id, renewed, Origin.DELIVERY, current=self.record)
            except Contended as exc:  # it kept changing under every renewal: treat it as no longer ours
                raise self._lose() from exc
            if commit.record is None:
                raise self._lose()
            self.record = commit.record

    async def refresh(self) -> JobRecord:
        """Re-read the entity (to see a cancel request); LeaseLost if it is no longer ours."""
        async with self._lock:
            if self.lost:
                raise LeaseLost(str(self.record.job_id))
            fresh = await self.lifecycle.read(self.record.job_id)
            if fresh is None or not self._is_ours(fresh):
                raise self._lose()
            self.record = fresh
            return fresh

    async def heartbeat(self) -> None:
        """Renew every third of the lease until cancelled or lost.

        A renewal that fails (storage trouble) is retried at the next beat; once the lease has run
        out without a successful renewal, another worker may already have taken the job over, so
        the lease counts as lost and the handler is stopped: two runs of a job never overlap.
        """
        interval = max(0.2, self.seconds / 3)
        while not self.lost:
            await asyncio.sleep(interval)
            try:
                await self.renew()
            except LeaseLost:
                logger.warning("lease lost for job %s", self.record.job_id)
                return
            except Exception:
                logger.exception("lease renewal failed for job %s; will retry", self.record.job_id)
                expires = self.record.lease_expires_at
                if expires is not None and self.clock() >= expires:
                    self._lose()
                    logger.warning("lease of job %s expired without renewal; stopping", self.record.job_id)
                    return
