"""What callers can do to an existing job: cancel it, re-drive it, list jobs.

Cancel is cooperative, as in every job system worth copying: a Queued job is Cancelled at once
(with its outcome event); a Running one gets ``cancelRequested`` and ends Cancelled when its
handler next checks (``ctx.raise_if_cancelled()``); a handler that finishes first completes,
and the cancel is moot. Both paths are ETag-conditional, so a cancel racing a completion ends
in exactly one terminal state with exactly one outcome.

Re-drive turns a Failed or Poisoned job into a new run of the same job: Queued, attempts reset,
``run`` + 1 (so the new run's outcome event has a new eventId), history kept.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from shared import terminal
from shared.auth import Principal
from shared.contract import JobStatus
from shared.errors import ErrorCode, JobsError
from shared.job_index import decode_token, owner_partition, tenant_partition
from shared.outcomes import emit_and_clear, emit_outcome
from shared.policy import can_see, lists_tenant
from shared.runtime import Runtime
from shared.status import JobRecord, Transition
from shared.status_store import ConcurrencyConflict
from shared.telemetry import job_logger
from shared.tracing import current_traceparent

MAX_ROUNDS = 8
MAX_INDEX_PAGES = 5  # a filtered list page reads at most this many index pages


@dataclass(frozen=True)
class Cancellation:
    record: JobRecord
    immediate: bool  # True: Cancelled now; False: requested, the running handler will see it


async def cancel(runtime: Runtime, record: JobRecord) -> Cancellation:
    current: JobRecord | None = record
    for _ in range(MAX_ROUNDS):
        if current is None:
            current = await runtime.store.get(record.job_id)
            if current is None:
                raise JobsError(ErrorCode.JOB_NOT_FOUND)
        if current.is_terminal:
            raise JobsError(ErrorCode.JOB_ALREADY_TERMINAL, f"the job is {current.status.value}")
        try:
            if current.status is JobStatus.QUEUED:
                now_cancelled = terminal.cancelled(via_message=False, reason="CancelledOnRequest")
                done = await runtime.store.apply(current, now_cancelled)
                job_logger(done).info("cancelled while queued")
                return Cancellation(await emit_and_clear(runtime.store, runtime.queues, done), immediate=True)
            if current.cancel_requested:
                return Cancellation(current, immediate=False)
            requested = await runtime.store.update(current, cancel_requested=True, updated_at=runtime.clock())
            job_logger(requested).info("cancel requested while running")
            return Cancellation(requested, immediate=False)
        except ConcurrencyConflict:
            current = None
    raise JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job is changing rapidly; retry")


def _redrive(record: JobRecord, now_changes: dict[str, object]) -> Transition:
    return Transition(JobStatus.QUEUED, "Redriven", {
        "run": record.run + 1, "attempt": 0, "outcome_code": None, "outcome_message": None, "result": None,
        "terminal_at": None, "outcome_pending": False, "cancel_requested": False, "progress_percent": None,
        "progress_message": None, "last_error_code": None, "last_error_message": None, "lease_owner": None,
        "lease_expires_at": None, "started_at": None, **now_changes,
    }, f"run {record.run + 1}")


async def redrive(runtime: Runtime, record: JobRecord, principal: Principal) -> JobRecord:
    """Failed/Poisoned -> Queued as run+1. The finished run's outcome is published first: its
    event must never be lost to the new run (and is refused while still being handed over)."""
    def decide(current: JobRecord) -> Transition:
        if current.status not in (JobStatus.FAILED, JobStatus.POISONED):
            raise JobsError(ErrorCode.JOB_NOT_RETRYABLE, f"the job is {current.status.value}")
        if current.outcome_pending:
            raise JobsError(ErrorCode.JOB_NOT_RETRYABLE, "its outcome is still being published; retry in a minute")
        now = runtime.clock()
        return _redrive(current, {"visible_at": now, "redriven_at": now, "trace_parent": current_traceparent()})

    if record.is_terminal and not record.outcome_pending:
        await emit_outcome(runtime.queues, record)  # at-least-once: a redelivery may still be owed it
    result = await runtime.store.transition(record.job_id, decide, current=record)
    if result.record is None:
        raise JobsError(ErrorCode.JOB_NOT_FOUND)
    queued = result.record
    index = runtime.index
    owners = queued.submitters or (principal.key,)  # the quota counts against the job's owners
    await asyncio.gather(runtime.queues.send_job(queued.contract(1)),
                         *(index.mark_live(queued.job_id, owner) for owner in owners))
    job_logger(queued).info("re-driven as run %s", queued.run)
    return queued


@dataclass(frozen=True)
class ListQuery:
    status: JobStatus | None = None
    job_type: str | None = None
    subject_id: uuid.UUID | None = None
    page_size: int = 20
    continuation: str | None = None


async def list_jobs(runtime: Runtime, principal: Principal, query: ListQuery) -> tuple[list[JobRecord], str | None]:
    """Newest first, from the index; statuses come from each job's entity (point reads)."""
    partition = tenant_partition(principal.tenant_id) if lists_tenant(principal) else owner_partition(principal.key)
    wanted = (("jobType", query.job_type), ("subjectId", str(query.subject_id) if query.subject_id else None))
    filters = {name: value for name, value in wanted if value}
    index = runtime.index
    token = decode_token(query.continuation, partition)
    items: list[JobRecord] = []
    continuation: str | None = None
    for _ in range(MAX_INDEX_PAGES):
        page = await index.page(partition, filters, query.page_size - len(items), token)
        records = await asyncio.gather(*(runtime.store.get(job_id) for job_id in page.job_ids))
        items += [r for r in records if r is not None and can_see(principal, r)
                  and (query.status is None or r.status is query.status)]
        continuation = page.continuation
        if continuation is None or len(items) >= query.page_size:
            break
        token = decode_token(continuation, partition)
    return items, continuation
