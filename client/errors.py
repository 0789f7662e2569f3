"""Errors raised by the client: every one derives from ``JobsClientError``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.models import JobStatus


class JobsClientError(Exception):
    """Base class of everything the client raises on purpose."""


class ConfigurationError(JobsClientError):
    """Settings are missing or inconsistent (for example an auth mode without its client id)."""


class AuthenticationError(JobsClientError):
    """A bearer token could not be obtained."""


class JobsConnectionError(JobsClientError):
    """The API could not be reached, or the connection broke before a response arrived."""

    def __init__(self, url: str, reason: str, correlation_id: str | None = None) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason
        self.correlation_id = correlation_id


class JobsApiError(JobsClientError):
    """The API answered with an error (normally RFC 9457 problem+json with a stable ``code``)."""

    def __init__(
        self, *, status: int, code: str, detail: str, correlation_id: str | None = None, title: str | None = None,
        type: str | None = None, errors: list[dict[str, Any]] | None = None, retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.correlation_id = correlation_id
        self.title = title
        self.type = type
        self.errors = errors or []
        self.retry_after = retry_after

    @property
    def is_transient(self) -> bool:
        """Worth retrying later: throttled (429) or the service or its storage unavailable (502-504)."""
        return self.status in (429, 502, 503, 504)

    def __str__(self) -> str:
        text = f"{self.code}: {self.detail}"
        return f"{text} (correlation id {self.correlation_id})" if self.correlation_id else text


class WaitTimeoutError(JobsClientError):
    """``wait`` gave up before the job reached a terminal status."""

    def __init__(self, job_id: str, timeout: float, last: JobStatus | None) -> None:
        state = last.status if last is not None else "unknown"
        super().__init__(f"job {job_id} is still {state} after {timeout:g}s")
        self.job_id = job_id
        self.timeout = timeout
        self.last = last
