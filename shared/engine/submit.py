"""Submitting a job: validate, derive key and id, check the quota, write, index, send.

1. Validate the payload against the job type; derive the idempotency key and the jobId.
2. The in-flight quota: count the principal's live index rows (one query; only at the cap are
   they checked against their jobs, lazily dropping finished ones, before answering 429).
3. The lifecycle inserts the Queued entity with its first history row (one transaction), then
   sends the message while the job is indexed (owner and tenant partitions), concurrently.
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
from typing import Any

from pydantic import ValidationError

from shared.domain.commands import SubmitJob
from shared.domain.contract import JobStatus, canonical_json, job_id_for, payload_fingerprint
from shared.domain.errors import ErrorCode, JobsError, field_errors
from shared.domain.principal import Principal
from shared.domain.record import Amendment, JobRecord
from shared.domain.rules import Origin
from shared.engine.runtime import Runtime
from shared.handlers import JobType, Payload
from shared.observability.traces import current_traceparent
from shared.store.queues import QUEUE_MESSAGE_LIMIT, encoded_size
from shared.store.status_table import JobAlreadyExists

QUOTA_RETRY_AFTER_SECONDS = 30


@dataclass(frozen=True)
class Submission:
    record: JobRecord
    replayed: bool


def _validated(runtime: Runtime, command: SubmitJob) -> tuple[JobType[Any], Payload]:
    job_type = runtime.registry.get(command.job_type)
    if job_type is None:
        raise JobsError(ErrorCode.UNKNOWN_JOB_TYPE, f"known job types: {', '.join(runtime.registry.names())}")
    try:
        payload = job_type.parse_payload(command.payload)
    except ValidationError as exc:
        raise JobsError(ErrorCode.PAYLOAD_INVALID, errors=field_errors(exc)) from exc
    return job_type, payload


def new_record(runtime: Runtime, principal: Principal, command: SubmitJob, correlation_id: uuid.UUID) -> JobRecord:
    """The Queued record a valid submission would create (nothing is written here)."""
    job_type, payload_model = _validated(runtime, command)
    payload = payload_model.model_dump(mode="json", by_alias=True)
    if len(canonical_json(payload).encode()) > runtime.settings.max_payload_bytes:
        raise JobsError(ErrorCode.PAYLOAD_TOO_LARGE, f"payload over {runtime.settings.max_payload_bytes} bytes")
    tenant_id = uuid.UUID(principal.tenant_id)
    key = job_type.key_for(command.subject_id, payload_model)
    now = runtime.clock()
    record = JobRecord(
        job_id=job_id_for(tenant_id, job_type.name, key), tenant_id=tenant_id, job_type=job_type.name,
        subject_id=command.subject_id, correlation_id=correlation_id, idempotency_key=key,
        max_attempts=job_type.max_attempts, payload=payload,
        payload_fingerprint=payload_fingerprint(command.subject_id, payload), created_at=now,
        status=JobStatus.QUEUED, updated_at=now, visible_at=now, submitters=(principal.key,),
        trace_parent=current_traceparent(),
    )
    if encoded_size(record.next_contract().to_json()) > QUEUE_MESSAGE_LIMIT:
        raise JobsError(ErrorCode.PAYLOAD_TOO_LARGE, "the job message would exceed the 64 KiB queue limit")
    return record


async def submit(runtime: Runtime, principal: Principal, command: SubmitJob, correlation_id: uuid.UUID) -> Submission:
    """Three sequential round trips: the quota query, the insert, then (index rows | message send).

    A duplicate is never refused for quota: at the cap an existing job is replayed. The quota is
    a guard against runaway callers, not a hard limit: concurrent submissions may pass it together.
    """
    record = new_record(runtime, principal, command, correlation_id)
    if not await _within_quota(runtime, principal):
        if await runtime.store.get(record.job_id) is None:
            raise JobsError(ErrorCode.QUOTA_EXCEEDED, f"at most {runtime.settings.max_inflight_per_principal} "
                            "jobs in flight per caller", retry_after=QUOTA_RETRY_AFTER_SECONDS)
        return await _replay(runtime, principal, record)
    try:
        created = await runtime.lifecycle.create(record, Origin.REQUEST,
                                                 alongside=lambda r: runtime.index.add(r, principal.key))
    except JobAlreadyExists:
        return await _replay(runtime, principal, record)
    return Submission(created, replayed=False)


async def _within_quota(runtime: Runtime, principal: Principal) -> bool:
    cap = runtime.settings.max_inflight_per_principal
    live = await runtime.index.live_jobs(principal.key, limit=cap)
    if len(live) < cap:
        return True
    records = await asyncio.gather(*(runtime.store.get(job_id) for job_id in live))
    finished = [job_id for job_id, r in zip(live, records, strict=True) if r is None or r.is_terminal]
    await runtime.index.drop_live(principal.key, finished)
    return len(live) - len(finished) < cap


async def _replay(runtime: Runtime, principal: Principal, attempted: JobRecord) -> Submission:
    def join(existing: JobRecord) -> Amendment | None:
        if existing.payload_fingerprint != attempted.payload_fingerprint:
            raise JobsError(ErrorCode.IDEMPOTENCY_KEY_REUSED, f"idempotency key {attempted.idempotency_key!r}")
        return None if principal.key in existing.submitters else existing.with_submitter(principal.key)

    commit = await runtime.lifecycle.commit(attempted.job_id, join, Origin.REQUEST, max_rounds=3)
    if commit.record is None:  # purged in between: extremely rare; ask the caller to retry
        raise JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job changed while submitting; retry")
    await runtime.index.add(commit.record, principal.key)  # idempotent: repairs an index a crash left unwritten
    return Submission(commit.record, replayed=True)
