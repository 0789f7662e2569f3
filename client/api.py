"""``JobsClient``: typed calls to the background-jobs HTTP API.

Every request carries ``x-correlation-id`` (the caller's, or a new GUID), so even a request that
never got an answer can be traced. Answers >= 400 raise ``JobsApiError`` with the problem's stable
``code``; 2xx bodies are parsed into the models of client.models.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pydantic import ValidationError

from client.errors import ConfigurationError, JobsApiError
from client.models import Accepted, JobPage, JobStatus
from client.polling import OnUpdate, PollPolicy, Sleep, wait_for_terminal
from client.transport import HttpResponse, Transport, is_loopback_host, parse_retry_after, urllib_transport

TokenProvider = Callable[[], str]
"""Returns a bearer token (without the ``Bearer`` prefix); called before every authenticated request."""

USER_AGENT = "jobs-client/0.1"
LONG_POLL_SECONDS = 5
Id = str | uuid.UUID


class JobsClient:
    def __init__(
        self, base_url: str, token_provider: TokenProvider, *, timeout: float = 30.0, api_prefix: str = "/api",
        transport: Transport | None = None, poll_policy: PollPolicy | None = None, sleep: Sleep = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not _safe_for_secrets(base_url):
            # A bearer token must never cross the network in clear text: http only to this machine.
            raise ConfigurationError(f"base URL must be https (http only on loopback): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_prefix = "/" + api_prefix.strip("/") if api_prefix.strip("/") else ""
        self.token_provider = token_provider
        self.timeout = timeout
        self.transport: Transport = transport or urllib_transport
        self.poll_policy = poll_policy or PollPolicy()
        self._sleep = sleep
        self._clock = clock
        # How long each status poll of ``wait`` asks the server to hold it (waitSeconds): long enough to see
        # a job end that is due, short enough to cost the server at most 10 reads per poll; inside the timeout.
        self.long_poll_seconds = max(0, min(LONG_POLL_SECONDS, int(timeout) - 5))

    # ---- jobs -------------------------------------------------------------------------------

    def submit(
        self, job_type: str, subject_id: Id, payload: Mapping[str, Any], *, correlation_id: Id | None = None,
        not_before: str | None = None, delay_seconds: int | None = None,
    ) -> Accepted:
        """POST /api/jobs: 202 with the job id (``replayed`` when the same job already existed).
        ``not_before`` (RFC 3339) or ``delay_seconds`` schedules it, at most 7 days ahead."""
        body: dict[str, Any] = {"jobType": job_type, "subjectId": str(subject_id), "payload": dict(payload)}
        if not_before is not None:
            body["notBefore"] = not_before
        if delay_seconds is not None:
            body["delaySeconds"] = delay_seconds
        return _accepted(self._request("POST", "/jobs", body=body, correlation_id=correlation_id))

    def submit_batch(self, jobs: list[Mapping[str, Any]], *, correlation_id: Id | None = None) -> dict[str, Any]:
        """POST /api/jobs/batch: up to 100 submissions (``{jobType, subjectId, payload[, notBefore |
        delaySeconds]}`` each); the 207 body: ``items`` (one answer per submission, in order) and counts."""
        return _object(self._request("POST", "/jobs/batch", body={"jobs": [dict(j) for j in jobs]},
                                     correlation_id=correlation_id))

    def upload(self, path: str | Path, kind: str, *, correlation_id: Id | None = None) -> str:
        """Upload a file as a new subject (``kind``: document or mail) and return its subjectId.

        POST /api/uploads gives a write-only URL for a new blob under the caller's tenant; the file
        goes there directly (the bearer token is not sent to it)."""
        data = Path(path).read_bytes()
        ticket = _object(self._request("POST", "/uploads", body={"kind": kind}, correlation_id=correlation_id))
        limit = int(ticket.get("maxBytes") or 0)
        if limit and len(data) > limit:
            raise ConfigurationError(f"{path} is {len(data)} bytes; a {kind} may be at most {limit}")
        url = str(ticket["uploadUrl"])
        if not _safe_for_secrets(url):  # the URL carries a signature: the same rule as for the token
            parts = urlsplit(url)
            raise ConfigurationError(f"refusing to upload to a non-https URL: {parts.scheme}://{parts.hostname}")
        headers = {str(k): str(v) for k, v in dict(ticket.get("headers") or {}).items()}
        response = self.transport(str(ticket.get("method") or "PUT"), url, {**headers, "User-Agent": USER_AGENT},
                                  data, self.timeout)
        if response.status >= 300:
            raise JobsApiError(status=response.status, code="UPLOAD_FAILED",
                               detail=f"the storage service refused the upload ({response.status})")
        return str(ticket["subjectId"])

    def enqueue_analysis(self, document_id: Id, type: str, *, correlation_id: Id | None = None) -> Accepted:
        """POST /api/analysis/enqueue: an ``ai-analyze`` job for a document."""
        body = {"documentId": str(document_id), "type": type}
        return _accepted(self._request("POST", "/analysis/enqueue", body=body, correlation_id=correlation_id))

    def status(self, job_id: Id, *, history: bool = False, correlation_id: Id | None = None,
               wait_seconds: int | None = None) -> JobStatus:
        """GET /api/jobs/{id}/status (``history`` adds the transitions; ``wait_seconds`` up to 30: the server
        answers when the job changes or after that long, and ``.waited`` says it did)."""
        query = {"history": "true" if history else None,
                 "waitSeconds": None if wait_seconds is None else str(wait_seconds)}
        response = self._request("GET", f"/jobs/{_segment(job_id)}/status", query=query, correlation_id=correlation_id)
        return _status(response)

    def result(self, job_id: Id, *, correlation_id: Id | None = None) -> dict[str, Any]:
        """GET /api/jobs/{id}/result: a Completed job's output ``{jobId, jobType, completedAt, result}``;
        JobsApiError JOB_NOT_COMPLETED (409) before that."""
        return _object(self._request("GET", f"/jobs/{_segment(job_id)}/result", correlation_id=correlation_id))

    def wait(
        self, job_id: Id, *, timeout: float | None = None, on_update: OnUpdate | None = None,
        sleep: Sleep | None = None, correlation_id: Id | None = None, first_delay: float | None = None,
    ) -> JobStatus:
        """Poll the status (honouring Retry-After, capped) until terminal; WaitTimeoutError after ``timeout``.

        Right after ``submit`` / ``retry`` pass ``first_delay=accepted.retry_after``: the first poll then
        comes when the job is likely done instead of at once (when it is certainly still Queued).
        Between polls it sleeps the server's Retry-After (when the job is likely done); each poll then
        long-polls for up to ``long_poll_seconds`` (5), so a job that ends around then is seen the moment
        it ends, at a cost to the server of at most 10 reads per poll.
        """
        deadline = None if timeout is None else self._clock() + timeout

        def fetch() -> JobStatus:
            wait = self.long_poll_seconds
            if deadline is not None:
                wait = max(0, min(wait, int(deadline - self._clock())))
            return self.status(job_id, correlation_id=correlation_id, wait_seconds=wait or None)

        return wait_for_terminal(
            str(job_id), fetch, timeout=timeout,
            on_update=on_update, policy=self.poll_policy, sleep=sleep or self._sleep, clock=self._clock,
            first_delay=first_delay,
        )

    def cancel(self, job_id: Id, *, correlation_id: Id | None = None) -> JobStatus:
        """POST /api/jobs/{id}/cancel: Cancelled at once (200) or ``cancel_requested`` while running (202)."""
        return _status(self._request("POST", f"/jobs/{_segment(job_id)}/cancel", correlation_id=correlation_id))

    def retry(self, job_id: Id, *, correlation_id: Id | None = None) -> Accepted:
        """POST /api/jobs/{id}/retry: a Failed or Poisoned job runs again (202)."""
        return _accepted(self._request("POST", f"/jobs/{_segment(job_id)}/retry", correlation_id=correlation_id))

    def health(self) -> dict[str, Any]:
        """GET /api/health (no token)."""
        return _object(self._request("GET", "/health", authenticate=False))

    def openapi(self) -> dict[str, Any]:
        """GET /api/openapi.json (no token)."""
        return _object(self._request("GET", "/openapi.json", authenticate=False))

    def list_page(
        self, *, status: str | None = None, job_type: str | None = None, subject_id: Id | None = None,
        page_size: int | None = None, continuation_token: str | None = None, correlation_id: Id | None = None,
    ) -> JobPage:
        """GET /api/jobs: one page, newest first (it may hold fewer than ``page_size`` items)."""
        query = {
            "status": status, "jobType": job_type, "subjectId": None if subject_id is None else str(subject_id),
            "pageSize": None if page_size is None else str(page_size), "continuationToken": continuation_token,
        }
        return _page(self._request("GET", "/jobs", query=query, correlation_id=correlation_id))

    def list(
        self, *, status: str | None = None, job_type: str | None = None, subject_id: Id | None = None,
        page_size: int | None = None, correlation_id: Id | None = None,
    ) -> Iterator[JobStatus]:
        """Every matching job, newest first, following continuation tokens page by page."""
        token: str | None = None
        while True:
            page = self.list_page(status=status, job_type=job_type, subject_id=subject_id, page_size=page_size,
                                  continuation_token=token, correlation_id=correlation_id)
            yield from page.items
            if not page.continuation_token or page.continuation_token == token:
                return
            token = page.continuation_token

    # ---- plumbing ---------------------------------------------------------------------------

    def url(self, path: str, query: Mapping[str, str | None] | None = None) -> str:
        present = {name: value for name, value in (query or {}).items() if value is not None}
        suffix = f"?{urlencode(present)}" if present else ""
        return f"{self.base_url}{self.api_prefix}{path}{suffix}"

    def _request(
        self, method: str, path: str, *, body: Any = None, query: Mapping[str, str | None] | None = None,
        correlation_id: Id | None = None, authenticate: bool = True,
    ) -> HttpResponse:
        headers = {
            "Accept": "application/json, application/problem+json", "User-Agent": USER_AGENT,
            "x-correlation-id": str(correlation_id or uuid.uuid4()),
        }
        if authenticate:
            headers["Authorization"] = f"Bearer {self.token_provider()}"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif method == "POST":
            data = b""
        response = self.transport(method, self.url(path, query), headers, data, self.timeout)
        if response.status >= 400:
            raise problem_error(response, headers["x-correlation-id"])
        return response


def _safe_for_secrets(url: str) -> bool:
    """https, or http only to this machine: a bearer token or a signed URL never crosses the network in clear."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))


def _segment(value: Id) -> str:
    return quote(str(value), safe="")


def problem_error(response: HttpResponse, sent_correlation_id: str | None = None) -> JobsApiError:
    """Map an error response to JobsApiError: problem+json when it is one, else ``HTTP_<status>``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    problem = body if isinstance(body, dict) else {}
    errors = problem.get("errors")
    text = response.body.decode("utf-8", "replace").strip()[:200]
    return JobsApiError(
        status=response.status,
        code=str(problem.get("code") or f"HTTP_{response.status}"),
        detail=str(problem.get("detail") or problem.get("title") or text or f"HTTP {response.status}"),
        correlation_id=str(problem.get("correlationId") or response.header("x-correlation-id")
                           or sent_correlation_id or "") or None,
        title=_str_or_none(problem.get("title")), type=_str_or_none(problem.get("type")),
        errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else None,
        retry_after=parse_retry_after(response.header("retry-after")),
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _invalid(response: HttpResponse, detail: str) -> JobsApiError:
    return JobsApiError(status=response.status, code="INVALID_RESPONSE", detail=detail,
                        correlation_id=response.header("x-correlation-id"))


def _object(response: HttpResponse) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise _invalid(response, "the response is not JSON") from error
    if not isinstance(body, dict):
        raise _invalid(response, "the response is not a JSON object")
    return body


def _accepted(response: HttpResponse) -> Accepted:
    body = _object(response)
    try:
        return Accepted.from_json(
            body, replayed=(response.header("idempotent-replayed") or "").lower() == "true",
            retryAfter=parse_retry_after(response.header("retry-after")), location=response.header("location"),
        )
    except ValidationError as error:
        raise _invalid(response, f"unexpected accepted body: {error.error_count()} problem(s)") from error


def _status(response: HttpResponse) -> JobStatus:
    waited = (response.header("preference-applied") or "").startswith("wait=")
    return _parse_status(_object(response), response, parse_retry_after(response.header("retry-after")), waited)


def _parse_status(body: dict[str, Any], response: HttpResponse, retry_after: float | None = None,
                  waited: bool = False) -> JobStatus:
    try:
        return JobStatus.from_json(body, retryAfter=retry_after, waited=waited)
    except ValidationError as error:
        raise _invalid(response, f"unexpected status body: {error.error_count()} problem(s)") from error


def _page(response: HttpResponse) -> JobPage:
    body = _object(response)
    items = body.get("items")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _invalid(response, "the list has no 'items' array of objects")
    token = body.get("continuationToken")
    return JobPage([_parse_status(item, response) for item in items], str(token) if token else None, body)
