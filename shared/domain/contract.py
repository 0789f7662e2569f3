"""The job contract (ADR-004) and the JobOutcome event, as pydantic models.

The wire format is camelCase JSON, exactly the seed's fields plus ``tenantId`` (so the worker
keeps tenants' data apart even for a message whose entity is missing). Unknown fields are
refused. ``jobId`` is deterministic: UUIDv5 over (tenant, jobType, idempotencyKey), so a
duplicate submission lands on the same status entity.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

# Fixed namespace for job ids: changing it would change every job id, so it never changes.
JOB_ID_NAMESPACE = uuid.UUID("6f1d3f57-2b0e-4c55-9a55-7d3c8a1f0b42")
OUTCOME_EVENT_NAMESPACE = uuid.UUID("0c6b8f0e-4f0a-4d7e-bf38-5f7a8e2d9c11")


def utc_now() -> datetime:
    """Now, in UTC, at the millisecond precision the wire format carries."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_utc(value: datetime) -> str:
    """UTC ISO 8601 with a ``Z`` suffix and millisecond precision."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() != UTC.utcoffset(None):
        raise ValueError("must be a UTC timestamp ending in Z")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc), PlainSerializer(format_utc, return_type=str)]


class JobStatus(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    POISONED = "Poisoned"
    CANCELLED = "Cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.POISONED, JobStatus.CANCELLED})


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=False
    )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class JobContract(WireModel):
    """What travels on the jobs queue: everything a worker needs, no document bytes."""

    job_id: uuid.UUID
    job_type: str = Field(min_length=1, max_length=64)
    subject_id: uuid.UUID
    correlation_id: uuid.UUID
    idempotency_key: str = Field(min_length=1, max_length=512)
    attempt: int = Field(ge=1)
    max_attempts: int = Field(ge=1, le=100)
    payload: dict[str, Any]
    created_at: UtcDatetime
    tenant_id: uuid.UUID


CLOUD_EVENT_TYPE_PREFIX = "BackgroundJobs.JobOutcome"  # + ".Completed", ".Failed", ".Poisoned", ".Cancelled"


class JobOutcomeEvent(WireModel):
    """Emitted on ``job-outcomes`` after every terminal transition. Consumers dedupe by eventId."""

    event_id: uuid.UUID
    event_type: str = "JobOutcome"
    job_id: uuid.UUID
    job_type: str
    subject_id: uuid.UUID
    tenant_id: uuid.UUID
    correlation_id: uuid.UUID
    idempotency_key: str
    attempt: int
    run: int
    outcome: JobStatus
    code: str
    message: str | None = None
    occurred_at: UtcDatetime
    trace_parent: str | None = None  # W3C context of the run that reached this outcome

    @property
    def cloud_event_type(self) -> str:
        return f"{CLOUD_EVENT_TYPE_PREFIX}.{self.outcome.value}"

    def to_cloud_event(self) -> dict[str, Any]:
        """The event as a CloudEvents 1.0 structured-mode JSON object: ``id`` is the deterministic
        eventId, ``subject`` the jobId, ``data`` every field of the JobOutcome event, and the run's W3C
        trace context rides as the distributed-tracing extension (``traceparent``)."""
        event: dict[str, Any] = {
            "specversion": "1.0", "id": str(self.event_id), "source": f"/background-jobs/tenants/{self.tenant_id}",
            "type": self.cloud_event_type, "subject": str(self.job_id), "time": format_utc(self.occurred_at),
            "datacontenttype": "application/json", "data": self.model_dump(mode="json", by_alias=True),
        }
        if self.trace_parent:
            event["traceparent"] = self.trace_parent
        return event

    def to_cloud_event_json(self) -> str:
        return json.dumps(self.to_cloud_event(), separators=(",", ":"), ensure_ascii=False)


def job_id_for(tenant_id: uuid.UUID, job_type: str, idempotency_key: str) -> uuid.UUID:
    """The deterministic job id: the same tenant, type and key always give the same job."""
    return uuid.uuid5(JOB_ID_NAMESPACE, f"{tenant_id}\n{job_type}\n{idempotency_key}")


def outcome_event_id(job_id: uuid.UUID, run: int, outcome: JobStatus) -> uuid.UUID:
    """Deterministic per (job, run, outcome): a re-emitted event carries the same id."""
    return uuid.uuid5(OUTCOME_EVENT_NAMESPACE, f"{job_id}\n{run}\n{outcome.value}")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def payload_fingerprint(subject_id: uuid.UUID, payload: dict[str, Any]) -> str:
    """What makes two submissions with one idempotency key 'the same request'."""
    digest = hashlib.sha256(canonical_json({"subjectId": str(subject_id), "payload": payload}).encode())
    return digest.hexdigest()
