"""The maintenance sweep (timer): repairs what a crash can leave behind, purges what is old.

1. Queued jobs whose message should have been visible long ago (``visibleAt`` older than
   JOBS_STRANDED_QUEUED_SECONDS): the process died between writing the entity and sending the
   message. Re-send the message (bumping visibleAt first, so one sweep re-sends once).
2. Running jobs whose lease expired: the worker died mid-attempt. Take over: Queued + a new
   message when attempts remain, else Poisoned (the attempt that died was the last).
3. Terminal jobs whose outcome is still pending after JOBS_OUTCOME_GRACE_SECONDS: re-send it.
4. Terminal jobs older than JOBS_RETENTION_DAYS: delete their partition.

Every step is idempotent and safe to run concurrently with workers and with itself: writes are
If-Match, messages are at-least-once, events carry deterministic ids.

Known limit: these queries filter on non-key properties, which Table storage serves by scanning
the jobs table. Retention keeps that table bounded; see docs/operations.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared import terminal
from shared.contract import JobStatus
from shared.errors import ErrorCode
from shared.outcomes import emit_and_clear
from shared.runtime import Runtime
from shared.status import JobRecord, Transition
from shared.status_store import ConcurrencyConflict
from shared.telemetry import job_logger

logger = logging.getLogger("jobs.maintenance")


@dataclass
class SweepReport:
    requeued: int = 0
    taken_over: int = 0
    outcomes_resent: int = 0
    purged: int = 0
    errors: list[str] = field(default_factory=list)


async def sweep(runtime: Runtime) -> SweepReport:
    report = SweepReport()
    for step in (_requeue_stranded, _take_over_expired, _resend_outcomes, _purge_expired):
        try:
            await step(runtime, report)
        except Exception as exc:  # one failing step must not stop the others
            logger.exception("maintenance step %s failed", step.__name__)
            report.errors.append(f"{step.__name__}: {type(exc).__name__}")
    logger.info("maintenance sweep: %s", report)
    return report


async def _requeue_stranded(runtime: Runtime, report: SweepReport) -> None:
    now = runtime.clock()
    cutoff = now - timedelta(seconds=runtime.settings.stranded_queued_seconds)
    records = runtime.store.query(
        "status eq @status and visibleAt lt @cutoff", {"status": JobStatus.QUEUED.value, "cutoff": cutoff},
        runtime.settings.maintenance_batch_size,
    )
    async for record in records:
        try:
            bumped = await runtime.store.update(record, visible_at=now, updated_at=now)
        except ConcurrencyConflict:
            continue  # it moved on (claimed, cancelled): not stranded
        index = runtime.index
        # A crash right after the insert also skipped the list index: rewrite it (idempotent).
        await asyncio.gather(runtime.queues.send_job(bumped.contract(bumped.attempt + 1)),
                             *(index.add(bumped, owner) for owner in bumped.submitters))
        job_logger(record).warning("re-enqueued a stranded Queued job")
        report.requeued += 1


def _take_over(record: JobRecord, now_ok: bool, now: datetime) -> Transition | None:
    if record.status is not JobStatus.RUNNING or now_ok:
        return None
    note = f"lease of attempt {record.attempt} expired"
    if record.cancel_requested:  # it was asked to stop: do not run it again
        return terminal.cancelled(via_message=False, note=note)
    if record.attempt >= record.max_attempts:
        return terminal.poisoned(
            record, ErrorCode.MAX_ATTEMPTS_EXCEEDED, f"{note}; it was the last of {record.max_attempts} attempts",
            reason=ErrorCode.LEASE_EXPIRED.code, extra={"last_error_code": ErrorCode.LEASE_EXPIRED.code})
    return Transition(JobStatus.QUEUED, ErrorCode.LEASE_EXPIRED.code, {
        "lease_owner": None, "lease_expires_at": None, "last_error_code": ErrorCode.LEASE_EXPIRED.code,
        "visible_at": now,
    }, note)


async def _take_over_expired(runtime: Runtime, report: SweepReport) -> None:
    now = runtime.clock()
    records = runtime.store.query(
        "status eq @status and leaseExpiresAt lt @now", {"status": JobStatus.RUNNING.value, "now": now},
        runtime.settings.maintenance_batch_size,
    )
    async for record in records:
        result = await runtime.store.transition(
            record.job_id, lambda r: _take_over(r, r.lease_is_live(runtime.clock()), runtime.clock()), current=record
        )
        final = result.record
        if not result.applied or final is None:
            continue
        report.taken_over += 1
        job_logger(final).warning("took over a job whose lease expired: now %s", final.status.value)
        if final.status is JobStatus.QUEUED:
            await runtime.queues.send_job(final.contract(final.attempt + 1))
        else:
            await emit_and_clear(runtime.store, runtime.queues, final)


async def _resend_outcomes(runtime: Runtime, report: SweepReport) -> None:
    cutoff = runtime.clock() - timedelta(seconds=runtime.settings.outcome_grace_seconds)
    records = runtime.store.query(
        "outcomePending eq @pending and terminalAt lt @cutoff", {"pending": True, "cutoff": cutoff},
        runtime.settings.maintenance_batch_size,
    )
    async for record in records:
        if record.is_terminal:
            await emit_and_clear(runtime.store, runtime.queues, record)
            report.outcomes_resent += 1


async def _purge_expired(runtime: Runtime, report: SweepReport) -> None:
    cutoff = runtime.clock() - timedelta(days=runtime.settings.retention_days)
    records = runtime.store.query(
        "terminalAt lt @cutoff", {"cutoff": cutoff}, runtime.settings.maintenance_batch_size
    )
    async for record in records:
        if record.is_terminal and not record.outcome_pending:
            await runtime.index.remove(record)  # its list rows first: no dangling ids
            await runtime.store.delete_job(record.job_id)
            report.purged += 1
