"""What callers can do to an existing job: cancel it, re-drive it, list jobs.

Cancel is cooperative, as in every job system worth copying: a Queued job is Cancelled at once
(with its outcome event); a Running one gets ``cancelRequested`` and ends Cancelled when its
handler next checks (``ctx.raise_if_cancelled()``); a handler that finishes first completes,
and the cancel is moot. Both paths are ETag-conditional, so a cancel racing a completion ends
in exactly one terminal state with exactly one outcome.

Re-drive turns a Failed or Poisoned job into a new run of the same job: Queued, attempts reset,
``run`` + 1 (so the new run's outcome event has a new eventId), history kept. The lifecycle
publishes the finished run's outcome before the new run begins. The new run is in flight again,
so it counts against its submitters' quotas: a re-drive is refused (429) while one is at the cap.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.domain.access import can_see, lists_tenant
from shared.domain.commands import ListQuery
from shared.domain.contract import JobStatus
from shared.domain.errors import ErrorCode, JobsError
from shared.domain.principal import Principal
from shared.domain.record import Change, JobRecord, Transition
from shared.domain.rules import Origin
from shared.engine.runtime import Runtime
from shared.engine.submit import ensure_within_quota
from shared.observability.logs import job_logger
from shared.observability.traces import current_traceparent
from shared.store.job_list import InvalidContinuation, decode_token, owner_scope, tenant_scope

MAX_INDEX_PAGES = 5  # a filtered list page reads at most this many index pages


@dataclass(frozen=True)
class Cancellation:
    record: JobRecord
    immediate: bool  # True: Cancelled now; False: requested, the running handler will see it


async def cancel(runtime: Runtime, record: JobRecord) -> Cancellation:
    def decide(current: JobRecord) -> Change | None:
        if current.is_terminal:
            raise JobsError(ErrorCode.JOB_ALREADY_TERMINAL, f"the job is {current.status.value}")
        if current.status is JobStatus.QUEUED:
            return current.cancelled(runtime.clock(), reason="CancelledOnRequest")
        return None if current.cancel_requested else current.with_cancel_requested(runtime.clock())

    commit = await runtime.lifecycle.commit(record.job_id, decide, Origin.REQUEST, current=record)
    if commit.record is None:
        raise JobsError(ErrorCode.JOB_NOT_FOUND)
    immediate = isinstance(commit.change, Transition)
    if commit.applied:
        job_logger(commit.record).info("cancelled while queued" if immediate else "cancel requested while running")
    return Cancellation(commit.record, immediate=immediate)


async def redrive(runtime: Runtime, record: JobRecord, principal: Principal) -> JobRecord:
    """Failed/Poisoned -> Queued as run+1 (refused while the finished run's event is still being handed over)."""
    def decide(current: JobRecord) -> Transition:
        if current.status not in (JobStatus.FAILED, JobStatus.POISONED):
            raise JobsError(ErrorCode.JOB_NOT_RETRYABLE, f"the job is {current.status.value}")
        if current.outcome_pending:
            raise JobsError(ErrorCode.JOB_NOT_RETRYABLE, "its outcome is still being published; retry in a minute")
        return current.redriven(runtime.clock(), current_traceparent())

    owners = record.submitters or (principal.key,)  # a re-drive counts against the job's owners' quotas

    async def mark_live(queued: JobRecord) -> None:
        await asyncio.gather(*(runtime.index.mark_live(queued.job_id, owner) for owner in owners))

    await asyncio.gather(*(ensure_within_quota(runtime, owner, record.job_id) for owner in owners))

    commit = await runtime.lifecycle.commit(record.job_id, decide, Origin.REQUEST, current=record, alongside=mark_live)
    if commit.record is None:
        raise JobsError(ErrorCode.JOB_NOT_FOUND)
    job_logger(commit.record).info("re-driven as run %s", commit.record.run)
    return commit.record


async def list_jobs(runtime: Runtime, principal: Principal, query: ListQuery) -> tuple[list[JobRecord], str | None]:
    """Newest first, from the index; statuses come from each job's entity (point reads)."""
    scope = tenant_scope(principal.tenant_id) if lists_tenant(principal) else owner_scope(principal.key)
    wanted = (("jobType", query.job_type), ("subjectId", str(query.subject_id) if query.subject_id else None))
    filters = {name: value for name, value in wanted if value}
    items: list[JobRecord] = []
    continuation: str | None = query.continuation
    for _ in range(MAX_INDEX_PAGES):
        try:
            token = decode_token(continuation, scope)
        except InvalidContinuation as exc:
            raise JobsError(ErrorCode.REQUEST_INVALID, str(exc)) from exc
        page = await runtime.index.page(scope, filters, query.page_size - len(items), token)
        records = await asyncio.gather(*(runtime.store.get(job_id) for job_id in page.job_ids))
        items += [r for r in records if r is not None and can_see(principal, r)
                  and (query.status is None or r.status is query.status)]
        continuation = page.continuation
        if continuation is None or len(items) >= query.page_size:
            break
    return items, continuation
