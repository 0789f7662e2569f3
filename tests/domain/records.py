"""Records in every state, built in memory for the pure tests (no storage)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.contract import JobStatus
from shared.domain.record import JobRecord

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
Q, R, C, F, P, X = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED,
                    JobStatus.POISONED, JobStatus.CANCELLED)


def record(status: JobStatus = JobStatus.QUEUED, **changes: Any) -> JobRecord:
    base = JobRecord(
        job_id=uuid.UUID(int=1), tenant_id=uuid.UUID(int=2), job_type="probe", subject_id=uuid.UUID(int=3),
        correlation_id=uuid.UUID(int=4), idempotency_key="probe-key", max_attempts=3, payload={},
        payload_fingerprint="f", created_at=NOW - timedelta(minutes=5), status=status,
        updated_at=NOW - timedelta(minutes=1), visible_at=NOW - timedelta(minutes=5), etag="e1",
    )
    if status is JobStatus.RUNNING:
        base = replace(base, attempt=1, lease_owner="me", lease_expires_at=NOW + timedelta(minutes=1))
    if status.is_terminal:
        base = replace(base, attempt=1, terminal_at=NOW - timedelta(seconds=30), outcome_code=status.value.upper())
    return replace(base, **changes)
