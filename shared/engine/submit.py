"""Submitting a job: validate, derive key and id, then two sequential round trips.

1. Validate the payload against the job type; derive the idempotency key and the jobId.
2. Round trip 1: the lifecycle inserts the Queued entity (its first history entry on it) while
   the in-flight quota counts the principal's live index rows (one indexed query).
3. Round trip 2: the message is sent while the job is indexed (one transaction in the tenant's
   index partition: tenant row, owner row, live row). 4 storage calls in all.
At the cap the inserted entity is deleted again (If-Match) and the caller gets 429: 3 calls.
Order matters for "no orphans": the entity is written before the message, so a crash leaves a
Queued job without a message (maintenance re-sends it), never a message without a status.

The quota counts live rows, which exist from a job's acceptance until its outcome is published
(a re-drive marks the job live again). It is exact for a caller whose submissions do not
overlap. Submissions that overlap count each other only once the other's index write has
landed, so n concurrent submissions by one principal can overshoot the cap by at most n - 1.

A duplicate submission (same tenant, type and derived key, so the same jobId) costs an insert
that conflicts, a read, and at most one write: same payload -> the existing job (replayed);
another payload -> IDEMPOTENCY_KEY_REUSED. A replay also repairs what a crash of the first
submission may have left undone: the index rows, and, for a job no attempt has claimed yet, its
message (sent again: a duplicate message is dropped as stale or finds the job claimed). So a
client's retry after a crash never leaves the job waiting for maintenance. At most 6 calls.
Another principal of the same tenant submitting the same job is added to the job's submitters
(and its index), so it may read the job it was given.
A duplicate is never refused for quota.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
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
from shared.store.queues import MAX_VISIBILITY_DELAY, QUEUE_MESSAGE_LIMIT, encoded_size
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
    visible_at = scheduled_time(command, now)
    record = JobRecord(
        job_id=job_id_for(tenant_id, job_type.name, key), tenant_id=tenant_id, job_type=job_type.name,
        subject_id=command.subject_id, correlation_id=correlation_id, idempotency_key=key,
        max_attempts=job_type.max_attempts, payload=payload,
        payload_fingerprint=payload_fingerprint(command.subject_id, payload), created_at=now,
        status=JobStatus.QUEUED, updated_at=now, visible_at=visible_at, submitters=(principal.key,),
        trace_parent=current_traceparent(),
    )
    if encoded_size(record.next_contract().to_json()) > QUEUE_MESSAGE_LIMIT:
        raise JobsError(ErrorCode.PAYLOAD_TOO_LARGE, "the job message would exceed the 64 KiB queue limit")
    return record


def scheduled_time(command: SubmitJob, now: datetime) -> datetime:
    """When a submitted job may first run: now, or its ``notBefore`` (a time in the past means now).
    At most 7 days ahead, the queue's longest visibility delay; further is SCHEDULE_TOO_FAR."""
    if command.not_before is None or command.not_before <= now:
        return now
    if (command.not_before - now).total_seconds() > MAX_VISIBILITY_DELAY:
        raise JobsError(ErrorCode.SCHEDULE_TOO_FAR, f"notBefore is more than {MAX_VISIBILITY_DELAY // 86400} days "
                        "ahead; submit it later")
    return command.not_before.astimezone(UTC)


async def submit(runtime: Runtime, principal: Principal, command: SubmitJob, correlation_id: uuid.UUID) -> Submission:
    record = new_record(runtime, principal, command, correlation_id)
    for _ in range(2):  # again only if a refused twin's entity vanished while this replay joined it
        try:
            created = await runtime.lifecycle.create(
                record, Origin.REQUEST, admit=ensure_within_quota(runtime, principal.key, record.job_id),
                alongside=lambda r: runtime.index.add(r, principal.key))
        except JobAlreadyExists as exists:
            replayed = await replay(runtime, principal, record, exists.existing)
            if replayed is not None:
                return replayed
            continue
        return Submission(created, replayed=False)
    raise JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job changed while submitting; retry")


async def ensure_within_quota(runtime: Runtime, principal_key: str, excluding: uuid.UUID) -> None:
    """Raise QUOTA_EXCEEDED when the principal has the cap's worth of other jobs in flight."""
    cap = runtime.settings.max_inflight_per_principal
    live = await runtime.index.live_jobs(principal_key, limit=cap + 1)
    if sum(1 for job_id in live if job_id != excluding) >= cap:
        raise JobsError(ErrorCode.QUOTA_EXCEEDED, f"at most {cap} jobs in flight per caller",
                        retry_after=QUOTA_RETRY_AFTER_SECONDS)


async def replay(runtime: Runtime, principal: Principal, attempted: JobRecord,
                  existing: JobRecord | None) -> Submission | None:
    """The existing job, joined by this principal; None when it vanished (a refused twin deleted it)."""
    def join(existing: JobRecord) -> Amendment | None:
        if existing.payload_fingerprint != attempted.payload_fingerprint:
            raise JobsError(ErrorCode.IDEMPOTENCY_KEY_REUSED, f"idempotency key {attempted.idempotency_key!r}")
        if principal.key in existing.submitters and existing.version > 1:
            return None
        # A job that never moved may still be in its creator's quota check: writing it (even unchanged)
        # changes its ETag, so a refused creator keeps it instead of deleting what this caller was given.
        return existing.joined_by(principal.key)

    commit = await runtime.lifecycle.commit(attempted.job_id, join, Origin.REQUEST, current=existing, max_rounds=3)
    record = commit.record
    if record is None:
        return None
    # Both idempotent: they repair what a crash between the insert and the second round trip left
    # undone (the index rows; the message of a job no message has run yet, harmless if it was sent).
    repairs = [runtime.index.add(record, principal.key)]
    if record.status is JobStatus.QUEUED and record.attempt == 0:
        repairs.append(runtime.lifecycle.resend_unclaimed(record))
    await asyncio.gather(*repairs)
    return Submission(record, replayed=True)
