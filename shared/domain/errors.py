"""The one catalogue of stable error codes (API errors and job outcome codes).

A code, once published, never changes meaning. docs/errors.md lists every entry here, and a
test fails when the two disagree. HTTP errors are served as RFC 9457 problem+json; outcome
codes are stored on the job and carried by JobOutcome events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from pydantic import ValidationError


@dataclass(frozen=True)
class ErrorSpec:
    status: int | None  # HTTP status for API errors; None for codes that only appear in outcomes
    title: str


class ErrorCode(Enum):
    """Stable codes. The enum name is the code."""

    # Request shape and limits
    REQUEST_INVALID = ErrorSpec(400, "The request body does not match the schema.")
    JSON_MALFORMED = ErrorSpec(400, "The request body is not valid JSON.")
    UNKNOWN_JOB_TYPE = ErrorSpec(400, "The job type is not known.")
    PAYLOAD_INVALID = ErrorSpec(400, "The payload does not match the job type's schema.")
    REQUEST_TOO_LARGE = ErrorSpec(413, "The request body is larger than allowed.")
    PAYLOAD_TOO_LARGE = ErrorSpec(413, "The job payload is larger than allowed; pass references, not data.")
    UNSUPPORTED_MEDIA_TYPE = ErrorSpec(415, "Only application/json request bodies are accepted.")
    METHOD_NOT_ALLOWED = ErrorSpec(405, "The method is not allowed on this resource.")
    IDEMPOTENCY_KEY_REUSED = ErrorSpec(422, "A job with the same idempotency key exists with another payload.")
    SCHEDULE_TOO_FAR = ErrorSpec(400, "The job is scheduled more than 7 days ahead (the queue's longest delay).")
    QUOTA_EXCEEDED = ErrorSpec(429, "Too many of the caller's jobs are in flight; retry after some finish.")
    # Authentication and authorization
    AUTH_TOKEN_MISSING = ErrorSpec(401, "A bearer token is required.")
    AUTH_TOKEN_INVALID = ErrorSpec(401, "The bearer token is not valid.")
    AUTH_PERMISSION_MISSING = ErrorSpec(403, "The token does not grant the permission this operation needs.")
    JOB_NOT_FOUND = ErrorSpec(404, "No such job.")
    ROUTE_NOT_FOUND = ErrorSpec(404, "No such resource.")
    JOB_ALREADY_TERMINAL = ErrorSpec(409, "The job has already finished; it cannot be cancelled.")
    JOB_NOT_RETRYABLE = ErrorSpec(409, "Only a Failed or Poisoned job can be re-driven.")
    JOB_NOT_COMPLETED = ErrorSpec(409, "The job has not completed, so it has no result.")
    RESULT_NOT_FOUND = ErrorSpec(404, "The job completed, but its output is no longer stored.")
    # Platform
    STORAGE_UNAVAILABLE = ErrorSpec(503, "Storage is unavailable; retry later.")
    INTERNAL_ERROR = ErrorSpec(500, "An unexpected error occurred.")
    # Job outcomes (stored on the job, carried by JobOutcome events)
    COMPLETED = ErrorSpec(None, "The job completed.")
    CANCELLED = ErrorSpec(None, "The job was cancelled.")
    SUBJECT_NOT_FOUND = ErrorSpec(None, "The job's subject does not exist.")
    SUBJECT_INVALID = ErrorSpec(None, "The job's subject could not be read as the job type expects.")
    EMAIL_MESSAGE_ID_MISMATCH = ErrorSpec(None, "The e-mail's Message-ID differs from the job's messageId.")
    CONTRACT_INVALID = ErrorSpec(None, "The queue message is not a valid job contract.")
    MAX_ATTEMPTS_EXCEEDED = ErrorSpec(None, "Every allowed attempt failed; the job was poisoned.")
    TRANSIENT_ERROR = ErrorSpec(None, "An attempt failed with an unexpected error and may be retried.")
    LEASE_EXPIRED = ErrorSpec(None, "The worker running the attempt stopped renewing its lease.")

    @property
    def code(self) -> str:
        return self.name

    @property
    def status(self) -> int | None:
        return self.value.status

    @property
    def title(self) -> str:
        return self.value.title


class JobsError(Exception):
    """An error with a stable code; the HTTP layer turns it into problem+json."""

    def __init__(
        self, code: ErrorCode, detail: str | None = None, *,
        errors: list[dict[str, str]] | None = None, retry_after: int | None = None,
        extensions: dict[str, str] | None = None,
    ):
        super().__init__(detail or code.title)
        self.code = code
        self.detail = detail or code.title
        self.errors = errors or []
        self.retry_after = retry_after
        self.extensions = extensions or {}  # extra members of the problem (RFC 9457 section 3.2)


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help: the job ends Failed with this code, no retry."""

    def __init__(self, code: ErrorCode, message: str | None = None):
        super().__init__(message or code.title)
        self.code = code
        self.message = message or code.title


class JobCancelled(Exception):  # named without an Error suffix: it is a signal, not an error
    """Raised inside a handler (via ``ctx.raise_if_cancelled()``) to end the job Cancelled."""


class RetryLater(Exception):  # a signal, not an error
    """Raised by a handler that must wait for a known time (another job holds what it needs).

    The job goes back to Queued with its message visible at ``at``, and the attempt is not spent:
    waiting is not failing. A run may wait like this for at most ``JOBS_DEFER_LIMIT_SECONDS``
    (counted from its first wait); after that a RetryLater counts as a transient failure.
    """

    def __init__(self, at: datetime, reason: str):
        super().__init__(reason)
        self.at = at
        self.reason = reason


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{field, message}]`` for a problem's ``errors`` (inputs never echoed)."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ][:20]
