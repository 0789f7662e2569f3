"""HTTP plumbing shared by every route: problem responses, JSON bodies, auth, method dispatch.

Every response carries ``x-correlation-id``; every error is RFC 9457 problem+json with a stable
``code`` from shared/domain/errors.py and the correlation id, and never a stack trace.
"""

from __future__ import annotations

import json
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import azure.functions as func
from azure.core.exceptions import AzureError
from pydantic import BaseModel, ValidationError

from shared.api.correlation import HEADER as CORRELATION_HEADER
from shared.api.correlation import correlation_id_from
from shared.api.tokens import TokenValidator
from shared.domain import access
from shared.domain.errors import ErrorCode, JobsError, field_errors
from shared.domain.principal import Principal
from shared.engine.runtime import Runtime
from shared.observability.traces import SpanKind, job_span

logger = logging.getLogger("jobs.http")
M = TypeVar("M", bound=BaseModel)
PROBLEM_BASE = "https://errors.jobs.example/"
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


Operation = Callable[[Call], Awaitable[ApiResponse]]
RuntimeProvider = Callable[[], Awaitable[Runtime]]


def problem_body(code: ErrorCode, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": f"{PROBLEM_BASE}{code.code}", "title": code.title, "code": code.code,
                            "detail": detail or code.title}
    if code.status is not None:
        body["status"] = code.status
    return body


def problem(error: JobsError, correlation_id: uuid.UUID) -> ApiResponse:
    status = error.code.status or 500
    body = {**error.extensions, **problem_body(error.code, error.detail), "status": status,
            "correlationId": str(correlation_id)}
    if error.errors:
        body["errors"] = error.errors
    headers: dict[str, str] = {}
    if status == 401:  # RFC 6750 section 3.1: no error code when the request carried no credentials
        missing = error.code is ErrorCode.AUTH_TOKEN_MISSING
        headers["WWW-Authenticate"] = "Bearer" if missing else 'Bearer error="invalid_token"'
    if error.retry_after is not None or status == 503:
        headers["Retry-After"] = str(error.retry_after or 5)
    return ApiResponse(status, body, headers, "application/problem+json")


def to_http(response: ApiResponse, correlation_id: uuid.UUID, *, private: bool = True) -> func.HttpResponse:
    """``private``: a response to an authenticated route (or to a request that tried one), never cached."""
    headers = {**response.headers, CORRELATION_HEADER: str(correlation_id), "X-Content-Type-Options": "nosniff"}
    if private:
        headers.setdefault("Cache-Control", "no-store")
    body = json.dumps(response.body) if response.body is not None else None
    return func.HttpResponse(body, status_code=response.status, headers=headers, mimetype=response.media_type)


async def _run(call_runtime: RuntimeProvider, request: func.HttpRequest, operation: Operation,
               correlation_id: uuid.UUID) -> ApiResponse:
    attributes = {"http.request.method": request.method, "correlationId": str(correlation_id)}
    with job_span(f"{request.method} {operation.__name__}", SpanKind.SERVER, carrier=request.headers,
                  attributes=attributes) as span:
        response = await _attempt(call_runtime, request, operation, correlation_id)
        span.set_attribute("http.response.status_code", response.status)
        return response


async def _attempt(call_runtime: RuntimeProvider, request: func.HttpRequest, operation: Operation,
                   correlation_id: uuid.UUID) -> ApiResponse:
    try:
        return await operation(Call(request, (await call_runtime()).api, correlation_id))  # the API path's clients
    except JobsError as exc:
        return problem(exc, correlation_id)
    except AzureError:
        logger.exception("storage error", extra={"correlationId": str(correlation_id)})
        return problem(JobsError(ErrorCode.STORAGE_UNAVAILABLE), correlation_id)
    except Exception:
        logger.exception("unhandled error", extra={"correlationId": str(correlation_id)})
        return problem(JobsError(ErrorCode.INTERNAL_ERROR), correlation_id)


async def handle(request: func.HttpRequest, runtime: RuntimeProvider, operation: Operation) -> func.HttpResponse:
    """Run one operation: JobsError -> its problem, storage trouble -> 503, anything else -> 500."""
    correlation_id = correlation_id_from(request.headers)
    return to_http(await _run(runtime, request, operation, correlation_id), correlation_id)


async def serve(request: func.HttpRequest, runtime: RuntimeProvider, **methods: Operation) -> func.HttpResponse:
    """Dispatch by method; any other method is 405 METHOD_NOT_ALLOWED with an Allow header."""
    operation = methods.get(request.method.upper())
    if operation is None:
        correlation_id = correlation_id_from(request.headers)
        response = problem(JobsError(ErrorCode.METHOD_NOT_ALLOWED, f"allowed: {', '.join(methods)}"), correlation_id)
        response.headers["Allow"] = ", ".join(methods)
        return to_http(response, correlation_id)
    return await handle(request, runtime, operation)


def serve_anonymous(request: func.HttpRequest, **methods: Callable[[], ApiResponse]) -> func.HttpResponse:
    """Routes without a token (health, OpenAPI): no storage, no principal, nothing revealed."""
    correlation_id = correlation_id_from(request.headers)
    operation = methods.get(request.method.upper())
    if operation is None:
        response = problem(JobsError(ErrorCode.METHOD_NOT_ALLOWED, f"allowed: {', '.join(methods)}"), correlation_id)
        response.headers["Allow"] = ", ".join(methods)
    else:
        response = operation()
    return to_http(response, correlation_id, private=False)


def serve_not_found(request: func.HttpRequest) -> func.HttpResponse:
    """No route matched: the same problem+json as every other error, for any method."""
    correlation_id = correlation_id_from(request.headers)
    return to_http(problem(JobsError(ErrorCode.ROUTE_NOT_FOUND), correlation_id), correlation_id)


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


_VALIDATORS: weakref.WeakKeyDictionary[Runtime, TokenValidator] = weakref.WeakKeyDictionary()


def token_validator(runtime: Runtime) -> TokenValidator:
    """One validator (and so one JWKS cache) per runtime, made on first use."""
    validator = _VALIDATORS.get(runtime)
    if validator is None:
        validator = _VALIDATORS[runtime] = TokenValidator(runtime.settings)
    return validator


async def authenticate(call: Call, action: access.Action) -> Principal:
    principal = await token_validator(call.runtime).validate(call.request.headers.get("authorization"))
    access.require(principal, action)
    return principal
