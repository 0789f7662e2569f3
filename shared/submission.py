"""Submitting a job: validate, derive the key and id, insert the Queued entity, send the message.

Order matters for "no orphans": the entity (with its first history row, one transaction) is
written before the message is sent. A crash between the two leaves a Queued job without a
message, which maintenance re-sends; never a message without a status.

A duplicate submission (same tenant, type and derived key, so the same jobId) costs one insert
that conflicts and one read: same payload -> the existing job (replayed); another payload ->
IDEMPOTENCY_KEY_REUSED. Another principal of the same tenant submitting the same job is added
to the job's submitters, so it may read the job it was given.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shared.auth import Principal
from shared.contract import JobStatus, canonical_json, job_id_for, payload_fingerprint
from shared.errors import ErrorCode, JobsError
from shared.queues import QUEUE_MESSAGE_LIMIT, encoded_size
from shared.runtime import Runtime
from shared.status import JobRecord
from shared.status_store import ConcurrencyConflict, JobAlreadyExists


class SubmitRequest(BaseModel):
    """Body of ``POST /api/jobs``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    job_type: str = Field(min_length=1, max_length=64)
    subject_id: uuid.UUID
    payload: dict[str, Any]


class AnalysisRequest(BaseModel):
    """Body of ``POST /api/analysis/enqueue`` (the seed's endpoint): an ``ai-analyze`` job."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    document_id: uuid.UUID
    type: str = Field(min_length=1, max_length=64)


@dataclass(frozen=True)
class Submission:
    record: JobRecord
    replayed: bool


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ][:20]


async def submit(
    runtime: Runtime, principal: Principal, request: SubmitRequest, correlation_id: uuid.UUID
) -> Submission:
    job_type = runtime.registry.get(request.job_type)
    if job_type is None:
        raise JobsError(ErrorCode.UNKNOWN_JOB_TYPE, f"known job types: {', '.join(runtime.registry.names())}")
    try:
        payload_model = job_type.parse_payload(request.payload)
    except ValidationError as exc:
        raise JobsError(ErrorCode.PAYLOAD_INVALID, errors=field_errors(exc)) from exc
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
    )
    message = record.contract(1).to_json()
    if encoded_size(message) > QUEUE_MESSAGE_LIMIT:
        raise JobsError(ErrorCode.PAYLOAD_TOO_LARGE, "the job message would exceed the 64 KiB queue limit")
    try:
        created = await runtime.store.create(record)
    except JobAlreadyExists:
        return await _replay(runtime, principal, record)
    await runtime.queues.send_job(record.contract(1))
    return Submission(created, replayed=False)


async def _replay(runtime: Runtime, principal: Principal, attempted: JobRecord) -> Submission:
    for _ in range(3):
        existing = await runtime.store.get(attempted.job_id)
        if existing is None:  # purged in between: extremely rare; ask the caller to retry
            raise JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job changed while submitting; retry")
        if existing.payload_fingerprint != attempted.payload_fingerprint:
            raise JobsError(ErrorCode.IDEMPOTENCY_KEY_REUSED, f"idempotency key {attempted.idempotency_key!r}")
        if principal.key in existing.submitters:
            return Submission(existing, replayed=True)
        try:
            updated = await runtime.store.update(existing, submitters=(*existing.submitters, principal.key))
            return Submission(replace(updated), replayed=True)
        except ConcurrencyConflict:
            continue
    raise JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job is changing rapidly; retry")
