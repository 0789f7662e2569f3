"""The HTTP API: thin request/response code over submission, status and auth.

Every response carries ``x-correlation-id``; every error is RFC 9457 problem+json with a stable
``code`` from shared.errors and the correlation id, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import azure.functions as func
from azure.core.exceptions import AzureError
from pydantic import BaseModel, ValidationError

from shared import auth
from shared.contract import format_utc
from shared.correlation import HEADER as CORRELATION_HEADER
from shared.correlation import correlation_id_from
from shared.errors import ErrorCode, JobsError
from shared.runtime import Runtime
from shared.status import JobRecord
from shared.submission import AnalysisRequest, SubmitRequest, field_errors, submit

logger = logging.getLogger("jobs.http")
M = TypeVar("M", bound=BaseModel)
JSON_TYPES = ("application/json",)


@dataclass
class ApiResponse:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass(frozen=True)
class Call:
    """One request, with what every operation needs."""

    request: func.HttpRequest
    runtime: Runtime
    correlation_id: uuid.UUID


def status_url(job_id: uuid.UUID) -> str:
    return f"/api/jobs/{job_id}/status"


def problem(code: ErrorCode, correlation_id: uuid.UUID, detail: str | None = None,
            errors: list[dict[str, str]] | None = None) -> ApiResponse:
    status = code.status or 500
    body: dict[str, Any] = {
        "type": f"https://errors.jobs.example/{code.code}", "title": code.title, "status": status,
        "code": code.code, "detail": detail or code.title, "correlationId": str(correlation_id),
    }
    if errors:
        body["errors"] = errors
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if status == 503:
        headers["Retry-After"] = "5"
    return ApiResponse(status, body, headers, "application/problem+json")


def to_http(response: ApiResponse, correlation_id: uuid.UUID) -> func.HttpResponse:
    headers = {**response.headers, CORRELATION_HEADER: str(correlation_id)}
    body = json.dumps(response.body) if response.body is not None else None
    return func.HttpResponse(body, status_code=response.status, headers=headers, mimetype=response.media_type)


async def handle(
    request: func.HttpRequest, runtime: Callable[[], Awaitable[Runtime]],
    operation: Callable[[Call], Awaitable[ApiResponse]],
) -> func.HttpResponse:
    """Run one operation: map JobsError to its problem, storage trouble to 503, the rest to 500."""
    correlation_id = correlation_id_from(request.headers)
    try:
        response = await operation(Call(request, await runtime(), correlation_id))
    except JobsError as exc:
        response = problem(exc.code, correlation_id, exc.detail, exc.errors)
    except AzureError:
        logger.exception("storage error", extra={"correlationId": str(correlation_id)})
        response = problem(ErrorCode.STORAGE_UNAVAILABLE, correlation_id)
    except Exception:
        logger.exception("unhandled error", extra={"correlationId": str(correlation_id)})
        response = problem(ErrorCode.INTERNAL_ERROR, correlation_id)
    return to_http(response, correlation_id)


def read_json(call: Call, model: type[M]) -> M:
    """Body -> model: size cap (413), JSON only (415), well-formed (400), schema (400 + field errors)."""
    body = call.request.get_body() or b""
    if len(body) > call.runtime.settings.max_request_bytes:
        raise JobsError(ErrorCode.REQUEST_TOO_LARGE, f"limit is {call.runtime.settings.max_request_bytes} bytes")
    media_type = (call.request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise JobsError(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise JobsError(ErrorCode.JSON_MALFORMED) from exc
    if not isinstance(value, dict):
        raise JobsError(ErrorCode.REQUEST_INVALID, "the body must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise JobsError(ErrorCode.REQUEST_INVALID, errors=field_errors(exc)) from exc


async def authenticate(call: Call, permission: str) -> auth.Principal:
    principal = await call.runtime.validator.validate(call.request.headers.get("authorization"))
    auth.require(principal, permission)
    return principal


def accepted(record: JobRecord, replayed: bool, retry_after: int) -> ApiResponse:
    url = status_url(record.job_id)
    headers = {"Location": url, "Retry-After": str(retry_after)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return ApiResponse(202, {"jobId": str(record.job_id), "status": record.status.value, "statusUrl": url}, headers)


async def submit_job(call: Call) -> ApiResponse:
    principal = await authenticate(call, auth.SUBMIT)
    request = read_json(call, SubmitRequest)
    submission = await submit(call.runtime, principal, request, call.correlation_id)
    return accepted(submission.record, submission.replayed, call.runtime.settings.status_retry_after_seconds)


async def enqueue_analysis(call: Call) -> ApiResponse:
    principal = await authenticate(call, auth.SUBMIT)
    body = read_json(call, AnalysisRequest)
    request = SubmitRequest(job_type="ai-analyze", subject_id=body.document_id, payload={"analysisType": body.type})
    submission = await submit(call.runtime, principal, request, call.correlation_id)
    return accepted(submission.record, submission.replayed, call.runtime.settings.status_retry_after_seconds)


def visible_to(record: JobRecord, principal: auth.Principal) -> bool:
    """The job's tenant, and one of its submitters or an admin of that tenant."""
    if str(record.tenant_id) != principal.tenant_id:
        return False
    return principal.key in record.submitters or principal.has(auth.ADMIN)


async def job_status(call: Call) -> ApiResponse:
    principal = await authenticate(call, auth.READ)
    try:
        job_id = uuid.UUID(call.request.route_params.get("jobId", ""))
    except ValueError as exc:
        raise JobsError(ErrorCode.JOB_NOT_FOUND) from exc
    record = await call.runtime.store.get(job_id)
    if record is None or not visible_to(record, principal):
        raise JobsError(ErrorCode.JOB_NOT_FOUND)  # the same answer for "absent" and "not yours"
    headers = {"Cache-Control": "no-store"}
    if not record.is_terminal:
        headers["Retry-After"] = str(call.runtime.settings.status_retry_after_seconds)
    return ApiResponse(200, status_body(record), headers)


def status_body(record: JobRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobId": str(record.job_id), "jobType": record.job_type, "subjectId": str(record.subject_id),
        "status": record.status.value, "attempt": record.attempt, "maxAttempts": record.max_attempts,
        "createdAt": format_utc(record.created_at), "lastUpdatedAt": format_utc(record.updated_at),
        "correlationId": str(record.correlation_id), "idempotencyKey": record.idempotency_key,
        "statusUrl": status_url(record.job_id),
    }
    if record.progress_percent is not None:
        body["percentComplete"] = record.progress_percent
    if record.is_terminal:
        body["outcome"] = {"code": record.outcome_code, "message": record.outcome_message}
        if record.terminal_at:
            body["completedAt"] = format_utc(record.terminal_at)
    if record.result is not None:
        body["result"] = record.result
    return body
