"""Typed results of the API, parsed tolerantly: unknown fields are ignored, most fields are optional.

Every model keeps the JSON object it was parsed from (``raw``), so machine output can pass the
server's answer on unchanged, including fields this client does not know yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel


class JobState(StrEnum):
    """The statuses the API documents (``JobStatus.status`` stays a plain string for newer ones)."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    POISONED = "Poisoned"
    CANCELLED = "Cancelled"


TERMINAL_STATUSES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.POISONED, JobState.CANCELLED})


class ApiModel(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True, extra="ignore")
    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any], **extra: Any) -> Self:
        """Parse a JSON object; ``extra`` adds values that came from elsewhere (headers), not kept in raw."""
        model = cls.model_validate({**data, **extra})
        model._raw = dict(data)
        return model

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object as the server sent it."""
        return dict(self._raw) if self._raw else self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Outcome(ApiModel):
    """How a terminal job ended: a problem-shaped object with a stable ``code``."""

    code: str | None = None
    type: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    message: str | None = None

    @property
    def text(self) -> str:
        return self.detail or self.message or self.title or ""


class HistoryEntry(ApiModel):
    """One status transition."""

    version: int | None = None
    from_status: str | None = Field(default=None, alias="from")
    to_status: str | None = Field(default=None, alias="to")
    attempt: int | None = None
    at: datetime | None = None
    reason: str | None = None
    message: str | None = None


class Accepted(ApiModel):
    """The 202 answer to a submission or a retry."""

    job_id: str
    status: str
    status_url: str | None = None
    replayed: bool = False  # from the Idempotent-Replayed header
    retry_after: float | None = None  # from the Retry-After header, in seconds
    location: str | None = None  # from the Location header


class JobStatus(ApiModel):
    """A job's status document."""

    job_id: str
    status: str
    job_type: str | None = None
    subject_id: str | None = None
    attempt: int | None = None
    max_attempts: int | None = None
    run: int | None = None
    created_at: datetime | None = None
    last_updated_at: datetime | None = None
    completed_at: datetime | None = None
    correlation_id: str | None = None
    idempotency_key: str | None = None
    status_url: str | None = None
    cancel_requested: bool = False
    percent_complete: int | None = None
    progress_message: str | None = None
    outcome: Outcome | None = None
    result: dict[str, Any] | None = None
    result_url: str | None = None  # once Completed: where the full output is (JobsClient.result)
    not_before: datetime | None = None  # while Queued: it runs at or after this (a schedule or a retry's backoff)
    history: list[HistoryEntry] | None = None
    history_omitted: int | None = None  # entries the server dropped at its history bound (after the first)
    retry_after: float | None = None  # from the Retry-After header, present while not terminal
    waited: bool = False  # the server held the request until the job changed (waitSeconds; Preference-Applied)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class JobPage:
    """One page of ``GET /api/jobs``; follow ``continuation_token`` until it is None."""

    items: list[JobStatus]
    continuation_token: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
