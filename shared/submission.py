"""Submitting a job: validate, derive key and id, check the quota, write, index, send.

1. Validate the payload against the job type; derive the idempotency key and the jobId.
2. The in-flight quota: count the principal's live index rows (one query; only at the cap are
   they checked against their jobs, lazily dropping finished ones, before answering 429).
3. Insert the Queued entity with its first history row (one transaction).
4. Concurrently: index the job (owner and tenant partitions) and send the message.
Order matters for "no orphans": the entity is written before the message, so a crash leaves a
Queued job without a message (maintenance re-sends it), never a message without a status.

A duplicate submission (same tenant, type and derived key, so the same jobId) costs one insert
that conflicts and one read: same payload -> the existing job (replayed); another payload ->
IDEMPOTENCY_KEY_REUSED. Another principal of the same tenant submitting the same job is added
to the job's submitters (and its index), so it may read the job it was given.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from pydantic import ValidationError

from shared.api_models import AnalysisRequest, SubmitRequest, field_errors
from shared.auth import Principal
from shared.contract import JobStatus, canonical_json, job_id_for, payload_fingerprint
from shared.errors import ErrorCode, JobsError
from shared.job_index import JobIndex
from shared.queues import QUEUE_MESSAGE_LIMIT, encoded_size
from shared.registry import JobType, Payload
from shared.runtime import Runtime
from shared.status import JobRecord
from shared.status_store import ConcurrencyConflict, JobAlreadyExists
from shared.tracing import current_traceparent

__all__ = ["AnalysisRequest", "Submission", "SubmitRequest", "field_errors", "submit"]
QUOTA_RETRY_AFTER_SECONDS = 30


@dataclass(frozen=True)
class Submission:
    record: JobRecord
    replayed: bool


def _validated(runtime: Runtime, request: SubmitRequest) -> tuple[JobType[Payload], Payload]:
    job_type = runtime.registry.get(request.job_type)
    if job_type is None:
        raise JobsError(ErrorCode.UNKNOWN_JOB_TYPE, f"known job types: {', '.join(runtime.registry.names())}")
    try:
        payload = job_type.parse_payload(request.payload)
    except ValidationError as exc:
        raise JobsError(ErrorCode.PAYLOAD_INVALID, errors=field_errors(exc)) from exc
    return job_type, payload


def new_record(runtime: Runtime, principal: Principal, request: SubmitRequest, correlation_id: uuid.UUID) -> JobRecord:
    """The Queued record a valid submission would create (nothing is written here)."""
    job_type, payload_model = _validated(runtime, request)
    payload = payload_model.model_dump(mode="json", by_alias=True)
    if len(canonical_json(payload).encode()) > runtime.settings.max_payload_bytes:
        raise JobsError(ErrorCode.PAYLOAD_TOO_LARGE, f"payload over {runtime.settings.max_payload_bytes} bytes")
    tenant_id = uuid.UUID(principal.tenant_id)
    key = job_type.key_for(request.subject_id, payload_model)
    now = runtime.clock()
    record = JobRecord(
        job_id=job_id_for(tenant_id, job_type.name, key), tenant_id=tenant_id, job_type=job_type.name,
        subject_id=request.subject_id, correlation_id=correlation_id, idempotency_key=key,
        max_attempts=job_type.max_attempts, payload=payload,
        payload_fingerprint=payload_fingerprint(request.subject_id, payload), created_at=now,
        status=JobStatus.QUEUED, updated_at=now, visible_at=now, submitters=(principal.key,),
        trace_parent=current_traceparent(),
    )
    if encoded_size(record.contract(1).to_json()) > QUEUE_MESSAGE_LIMIT:
        raise JobsError(ErrorCode.PAYLOAD_TOO_LARGE, "the job message would exceed the 64 KiB queue limit")
    return record


async def submit(
    runtime: Runtime, principal: Principal, request: SubmitRequest, correlation_id: uuid.UUID
) -> Submission:
    """Three sequential round trips: the quota query, the insert, then (index rows | message send).

    A duplicate is never refused for quota: at the cap an existing job is replayed. The quota is
    a guard against runaway callers, not a hard limit: concurrent submissions may pass it together.
    """
    record = new_record(runtime, principal, request, correlation_id)
    index = runtime.index
    if not await _within_quota(runtime, index, principal):
        if await runtime.store.get(record.job_id) is None:
            raise JobsError(ErrorCode.QUOTA_EXCEEDED, f"at most {runtime.settings.max_inflight_per_principal} "
                            "jobs in flight per caller", retry_after=QUOTA_RETRY_AFTER_SECONDS)
        return await _replay(runtime, index, principal, record)
    try:
        created = await runtime.store.create(record)
    except JobAlreadyExists:
        return await _replay(runtime, index, principal, record)
    await asyncio.gather(index.add(created, principal.key), runtime.queues.send_job(created.contract(1)))
    return Submission(created, replayed=False)


async def _within_quota(runtime: Runtime, index: JobIndex, principal: Principal) -> bool:
    cap = runtime.settings.max_inflight_per_principal
    live = await index.live_jobs(principal.key, limit=cap)
    if len(live) < cap:
        return True
    records = await asyncio.gather(*(runtime.store.get(job_id) for job_id in live))
    finished = [job_id for job_id, r in zip(live, records, strict=True) if r is None or r.is_terminal]
    await index.drop_live(principal.key, finished)
    return len(live) - len(finished) < cap


async def _replay(runtime: Runtime, index: JobIndex, principal: Principal, attempted: JobRecord) -> Submission:
    for _ in range(3):
        existing = await runtime.store.get(attempted.job_id)
        if existing is None:  # purged in between: extremely rare; ask the caller to retry
            raise JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job changed while submitting; retry")
        if existing.payload_fingerprint != attempted.payload_fingerprint:
            raise JobsError(ErrorCode.IDEMPOTENCY_KEY_REUSED, f"idempotency key {attempted.idempotency_key!r}")
        if principal.key in existing.submitters:
            await index.add(existing, principal.key)  # idempotent: repairs an index a crash left unwritten
            return Submission(existing, replayed=True)
        try:
            updated = await runtime.store.update(existing, submitters=(*existing.submitters, principal.key))
        except ConcurrencyConflict:
            continue
        await index.add(updated, principal.key)
        return Submission(updated, replayed=True)
    raise JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job is changing rapidly; retry")
