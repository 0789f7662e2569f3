"""The maintenance sweep (timer): repairs what a crash can leave behind, purges what is old.

1. Queued jobs whose message should have been visible long ago (``visibleAt`` older than
   JOBS_STRANDED_QUEUED_SECONDS): the process died between writing the entity and sending the
   message. Re-send it (Queued -> Queued "Resent", which bumps visibleAt, so one sweep re-sends
   once), and rewrite the list index a crash after the insert may also have skipped.
2. Running jobs whose lease expired: the worker died mid-attempt. Take over
   (``rules.after_lost_lease``): Queued + a new message when attempts remain, else Poisoned.
3. Terminal jobs whose outcome may be unsent after JOBS_OUTCOME_GRACE_SECONDS: re-send it. Two
   marks say so: ``outcomePending`` (set by a terminal write that has no message behind it: API,
   sweep, poison), and a live index row left on a finished job (a delivery's event goes out before
   its live rows are dropped, so a crash in between leaves the row). The live rows are found with
   one indexed range query per configured tenant, then one point read per job older than the
   grace period (long-running jobs included).
4. Terminal jobs older than JOBS_RETENTION_DAYS: delete their partition and list rows.

Every step is idempotent and safe to run concurrently with workers and with itself: the
lifecycle writes If-Match, messages are at-least-once, events carry deterministic ids.

Known limit: these queries filter on non-key properties, which Table storage serves by scanning
the jobs table. Retention keeps that table bounded; see docs/operations.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from shared.domain.contract import JobStatus
from shared.domain.record import JobRecord, Transition
from shared.domain.rules import Origin, after_lost_lease
from shared.engine.runtime import Runtime
from shared.observability.logs import job_logger

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
    cutoff = runtime.clock() - timedelta(seconds=runtime.settings.stranded_queued_seconds)

    def decide(current: JobRecord) -> Transition | None:
        stranded = current.status is JobStatus.QUEUED and current.visible_at < cutoff
        return current.resent(runtime.clock()) if stranded else None  # else it moved on: claimed, cancelled

    async def reindex(record: JobRecord) -> None:
        await asyncio.gather(*(runtime.index.add(record, owner) for owner in record.submitters))

    async for record in runtime.store.stranded_queued(cutoff, runtime.settings.maintenance_batch_size):
        commit = await runtime.lifecycle.commit(record.job_id, decide, Origin.SWEEP, current=record,
                                                alongside=reindex)
        if commit.applied:
            job_logger(record).warning("re-enqueued a stranded Queued job")
            report.requeued += 1


async def _take_over_expired(runtime: Runtime, report: SweepReport) -> None:
    def decide(current: JobRecord) -> Transition | None:
        now = runtime.clock()
        if current.status is not JobStatus.RUNNING or current.lease_is_live(now):
            return None
        return after_lost_lease(current, now)

    async for record in runtime.store.expired_leases(runtime.clock(), runtime.settings.maintenance_batch_size):
        commit = await runtime.lifecycle.commit(record.job_id, decide, Origin.SWEEP, current=record)
        if commit.applied and commit.record is not None:
            report.taken_over += 1
            job_logger(commit.record).warning("took over a job whose lease expired: now %s",
                                              commit.record.status.value)


async def _resend_outcomes(runtime: Runtime, report: SweepReport) -> None:
    cutoff = runtime.clock() - timedelta(seconds=runtime.settings.outcome_grace_seconds)
    async for record in runtime.store.pending_outcomes(cutoff, runtime.settings.maintenance_batch_size):
        if record.is_terminal:
            await runtime.lifecycle.publish_outcome(record)
            report.outcomes_resent += 1
    for tenant in runtime.settings.auth_tenants:
        for job_id in await runtime.index.live_before(tenant, cutoff, runtime.settings.maintenance_batch_size):
            finished = await runtime.store.get(job_id)
            if finished is not None and finished.is_terminal and finished.terminal_at is not None \
                    and finished.terminal_at < cutoff:
                job_logger(finished).warning("re-sending an outcome a crash may have kept from being sent")
                await runtime.lifecycle.publish_outcome(finished)
                report.outcomes_resent += 1


async def _purge_expired(runtime: Runtime, report: SweepReport) -> None:
    cutoff = runtime.clock() - timedelta(days=runtime.settings.retention_days)
    async for record in runtime.store.finished_before(cutoff, runtime.settings.maintenance_batch_size):
        if record.is_terminal and not record.outcome_pending:
            await runtime.index.remove(record)  # its list rows first: no dangling ids
            if await runtime.store.purge(record):
                report.purged += 1
