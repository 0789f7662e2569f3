"""The HTTP API's request and response bodies, as pydantic models.

Handlers build every body through these models, and the OpenAPI document (shared/api/openapi.py)
is generated from the same classes, so the document cannot drift from what is served.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from shared.domain.contract import JobStatus, UtcDatetime


class ApiModel(BaseModel):
    """A response body: built by field name in code, written with camelCase names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RequestModel(BaseModel):
    """A request body: only the documented camelCase names; anything else (``job_type`` too) is refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


class SubmitRequest(RequestModel):
    """Body of ``POST /api/jobs``. The idempotency key is derived by the server, never sent.
    ``notBefore`` (RFC 3339) or ``delaySeconds`` schedules the job: at most 7 days ahead."""

    job_type: str = Field(min_length=1, max_length=64, examples=["doc-index"])
    subject_id: uuid.UUID
    payload: dict[str, Any] = Field(examples=[{"rowVersion": 1, "action": "index"}])
    not_before: AwareDatetime | None = Field(None, examples=["2026-12-24T18:00:00Z"])
    delay_seconds: int | None = Field(None, ge=0, le=2**31)

    @model_validator(mode="after")
    def _one_schedule(self) -> SubmitRequest:
        if self.not_before is not None and self.delay_seconds is not None:
            raise ValueError("give notBefore or delaySeconds, not both")
        return self


class BatchRequest(RequestModel):
    """Body of ``POST /api/jobs/batch``: 1 to 100 submissions, each as for ``POST /api/jobs``
    (each item is checked on its own: a bad one is refused, the others go ahead)."""

    jobs: list[Any] = Field(min_length=1, max_length=100)


class UploadRequest(RequestModel):
    """Body of ``POST /api/uploads``: the kind of subject to upload."""

    kind: str = Field(min_length=1, max_length=32, examples=["document"])


class UploadTicket(ApiModel):
    """Where to put a new subject: ``PUT`` the file to ``uploadUrl`` with ``headers`` before
    ``expiresAt``, then submit jobs for ``subjectId``. The URL writes that one blob, nothing else."""

    kind: str
    subject_id: uuid.UUID
    upload_url: str
    method: str = "PUT"
    headers: dict[str, str]
    expires_at: UtcDatetime
    max_bytes: int


class AnalysisRequest(RequestModel):
    """Body of ``POST /api/analysis/enqueue`` (the seed's endpoint): an ``ai-analyze`` job."""

    document_id: uuid.UUID
    type: str = Field(min_length=1, max_length=64, examples=["summary"])


class Accepted(ApiModel):
    """202 for a submitted or re-driven job: where to watch it."""

    job_id: uuid.UUID
    status: JobStatus
    status_url: str


class Problem(ApiModel):
    """RFC 9457 problem details, with the stable ``code``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    type: str
    title: str
    status: int | None = None
    code: str
    detail: str | None = None
    correlation_id: uuid.UUID | None = None
    errors: list[dict[str, str]] | None = None


class BatchItemResult(ApiModel):
    """One submission of a batch: ``status`` 202 (accepted, or replayed) with the job, or the
    refusal's HTTP status with its problem."""

    index: int
    status: int
    job_id: uuid.UUID | None = None
    job_status: JobStatus | None = None
    status_url: str | None = None
    replayed: bool | None = None
    problem: Problem | None = None


class BatchResult(ApiModel):
    """207 Multi-Status for ``POST /api/jobs/batch``: one result per submission, in order."""

    items: list[BatchItemResult]
    accepted: int
    replayed: int
    refused: int


class HistoryItem(ApiModel):
    version: int
    from_: JobStatus | None = Field(default=None, alias="from")
    to: JobStatus
    attempt: int
    at: UtcDatetime
    reason: str
    message: str | None = None


class JobStatusView(ApiModel):
    """The status resource: ``GET /api/jobs/{jobId}/status``, and each item of a list."""

    job_id: uuid.UUID
    job_type: str
    subject_id: uuid.UUID
    status: JobStatus
    attempt: int
    max_attempts: int
    run: int
    created_at: UtcDatetime
    last_updated_at: UtcDatetime
    correlation_id: uuid.UUID
    idempotency_key: str
    status_url: str
    cancel_requested: bool
    percent_complete: int | None = None
    progress_message: str | None = None
    outcome: Problem | None = None
    completed_at: UtcDatetime | None = None
    result: dict[str, Any] | None = None  # the summary; the full output is at resultUrl
    result_url: str | None = None  # once Completed: GET it for the job's output
    not_before: UtcDatetime | None = None  # while Queued: the job runs at or after this (a schedule, a retry's backoff)
    history: list[HistoryItem] | None = None  # with ?history=true: oldest first, bounded (docs/api.md)
    history_omitted: int | None = None  # with ?history=true: entries dropped at the bound, after the first


class JobResult(ApiModel):
    """``GET /api/jobs/{jobId}/result``: a Completed job's output (the analysis, the e-mail's metadata,
    or for a job type without an output blob, its result summary)."""

    job_id: uuid.UUID
    job_type: str
    completed_at: UtcDatetime
    result: dict[str, Any]


class JobList(ApiModel):
    """``GET /api/jobs``: newest first. A page may hold fewer than pageSize items; follow
    ``continuationToken`` until it is absent."""

    items: list[JobStatusView]
    continuation_token: str | None = None


class Health(ApiModel):
    status: str = "ok"
