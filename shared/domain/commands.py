"""What callers ask the engine to do, as plain values (the API builds them from its HTTP models)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.contract import JobStatus


@dataclass(frozen=True)
class SubmitJob:
    """Submit one job; the idempotency key and the jobId are derived from it, never taken from the caller."""

    job_type: str
    subject_id: uuid.UUID
    payload: dict[str, Any]
    not_before: datetime | None = None  # scheduled: its message stays invisible until then (at most 7 days ahead)


@dataclass(frozen=True)
class ListQuery:
    status: JobStatus | None = None
    job_type: str | None = None
    subject_id: uuid.UUID | None = None
    page_size: int = 20
    continuation: str | None = None
