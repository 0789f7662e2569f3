"""What a handler gets: its job, tenant-scoped data access, progress, cancellation and ``once``.

Handlers run under at-least-once delivery: any of them may run more than once for one job
(a crash after the side effect, a lease that expired, a duplicate message). Write effects so
that repeating them is harmless (upserts, overwrites, deterministic names), and wrap the ones
that are not in ``once(step_key, fn)``, which records each step's small result in the job's
partition and returns it instead of running the step again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from shared.config import Settings
from shared.contract import JobContract
from shared.errors import JobCancelled
from shared.lease import Lease
from shared.registry import P
from shared.status_store import StatusStore
from shared.telemetry import JobLogger
from shared.tenant_data import TenantFiles, TenantRows

T = TypeVar("T")


@dataclass
class JobContext(Generic[P]):
    contract: JobContract
    payload: P
    logger: JobLogger
    files: TenantFiles
    index_rows: TenantRows
    settings: Settings
    _lease: Lease
    _store: StatusStore

    @property
    def attempt(self) -> int:
        return self._lease.record.attempt

    async def report_progress(self, percent: int, message: str | None = None) -> None:
        """Record progress (0-100) on the status entity; this also renews the lease.

        It is also a cancellation point: once a cancel was requested (seen when the write finds
        the entity changed), it raises JobCancelled and the job ends Cancelled.
        """
        await self._lease.renew(percent, message)
        if self._lease.cancel_requested:
            raise JobCancelled(str(self.contract.job_id))

    async def cancellation_requested(self) -> bool:
        """True once someone asked to cancel this job (re-reads the status entity)."""
        record = await self._lease.refresh()
        return record.cancel_requested

    async def raise_if_cancelled(self) -> None:
        """End the job Cancelled here if a cancel was requested; call it between steps."""
        if await self.cancellation_requested():
            raise JobCancelled(str(self.contract.job_id))

    async def once(self, step_key: str, step: Callable[[], Awaitable[T]]) -> T | Any:
        """Run ``step`` at most once per job and step key; later calls return its recorded result.

        The result must be JSON-serialisable and small (it is stored in the status partition).
        A crash between the step and its record makes the next delivery run the step again,
        so the step should still be safe to repeat; ``once`` makes repeats rare, not impossible.
        """
        marker = await self._store.get_marker(self.contract.job_id, step_key)
        if marker is not None:
            self.logger.info("step %s already done; reusing its result", step_key)
            return json.loads(marker.get("result", "null"))
        result = await step()
        encoded = json.dumps(result, separators=(",", ":"))
        if len(encoded) > 32 * 1024:
            raise ValueError(f"once({step_key!r}) result is larger than 32 KiB; store a reference instead")
        await self._store.put_marker(self.contract.job_id, step_key, encoded)
        return result
