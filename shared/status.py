"""Job status (ADR-017): the record, the state machine and what a transition carries.

States: Queued -> Running -> (Completed | Failed | Poisoned | Cancelled); Running -> Queued
for a scheduled retry; Running -> Running when a worker takes over an attempt whose lease
expired (a new attempt); Queued -> Cancelled | Poisoned; and the explicit re-drive
Failed | Poisoned -> Queued (a new run). Everything else is refused with IllegalTransition.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.contract import JobContract, JobStatus

Q, R = JobStatus.QUEUED, JobStatus.RUNNING
ALLOWED_TRANSITIONS: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (Q, R), (Q, JobStatus.CANCELLED), (Q, JobStatus.POISONED),
        (R, Q), (R, R), (R, JobStatus.COMPLETED), (R, JobStatus.FAILED), (R, JobStatus.POISONED),
        (R, JobStatus.CANCELLED),
        (JobStatus.FAILED, Q), (JobStatus.POISONED, Q),
    }
)

RESULT_SUMMARY_LIMIT = 4096  # bytes of JSON: the status record holds a summary, never large results


class IllegalTransition(Exception):  # named without an Error suffix: reads as the domain term
    def __init__(self, job_id: uuid.UUID, source: JobStatus, target: JobStatus):
        super().__init__(f"job {job_id}: {source.value} -> {target.value} is not an allowed transition")
        self.source, self.target = source, target


def check_transition(job_id: uuid.UUID, source: JobStatus, target: JobStatus) -> None:
    if (source, target) not in ALLOWED_TRANSITIONS:
        raise IllegalTransition(job_id, source, target)


@dataclass(frozen=True)
class JobRecord:
    """The status entity of one job (PartitionKey = jobId). ``etag`` is the read's ETag."""

    job_id: uuid.UUID
    tenant_id: uuid.UUID
    job_type: str
    subject_id: uuid.UUID
    correlation_id: uuid.UUID
    idempotency_key: str
    max_attempts: int
    payload: dict[str, Any]
    payload_fingerprint: str
    created_at: datetime
    status: JobStatus
    updated_at: datetime
    visible_at: datetime
    attempt: int = 0  # the latest attempt that was claimed (0 before the first run)
    run: int = 1  # re-drive counter: each re-drive is a new run of the same job
    version: int = 1  # transition counter; names the history rows
    submitters: tuple[str, ...] = ()  # "tid|oid" of each principal that submitted it
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    started_at: datetime | None = None
    cancel_requested: bool = False
    progress_percent: int | None = None
    progress_message: str | None = None
    last_error_code: str | None = None
    last_error_message: str | None = None
    outcome_code: str | None = None
    outcome_message: str | None = None
    result: dict[str, Any] | None = None
    terminal_at: datetime | None = None
    outcome_pending: bool = False
    trace_parent: str | None = None  # W3C traceparent of the submit (or re-drive) request
    redriven_at: datetime | None = None  # when the current run began by re-drive (older poison copies are stale)
    etag: str = field(default="", compare=False)

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def lease_is_live(self, now: datetime) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now

    def contract(self, attempt: int | None = None) -> JobContract:
        """The job contract for a message that runs ``attempt`` (default: the next one)."""
        return JobContract(
            job_id=self.job_id, job_type=self.job_type, subject_id=self.subject_id,
            correlation_id=self.correlation_id, idempotency_key=self.idempotency_key,
            attempt=attempt if attempt is not None else self.attempt + 1, max_attempts=self.max_attempts,
            payload=self.payload, created_at=self.created_at, tenant_id=self.tenant_id,
        )


@dataclass(frozen=True)
class Transition:
    """A status change: the target, the fields it sets, and what the history row records."""

    target: JobStatus
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    def apply(self, record: JobRecord, now: datetime) -> JobRecord:
        check_transition(record.job_id, record.status, self.target)
        updated = replace(record, status=self.target, updated_at=now, version=record.version + 1, **self.changes)
        if self.target.is_terminal:
            updated = replace(updated, terminal_at=now, lease_owner=None, lease_expires_at=None)
        return updated


@dataclass(frozen=True)
class HistoryEntry:
    """One row per transition, in the job's partition, written in the same transaction."""

    version: int
    source: JobStatus | None
    target: JobStatus
    attempt: int
    at: datetime
    reason: str
    message: str | None = None
