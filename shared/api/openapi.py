"""The OpenAPI 3.1 document, generated from the same pydantic models the handlers use.

OPERATIONS is the API's table of routes: method, path, request and success models, and the
error codes each can answer with. A test fails when a route of function_app.py, or a response
an operation really gives, is missing from this document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.api.models import (
    Accepted,
    AnalysisRequest,
    BatchRequest,
    BatchResult,
    Health,
    JobList,
    JobResult,
    JobStatusView,
    Problem,
    SubmitRequest,
    UploadRequest,
    UploadTicket,
)
from shared.domain.errors import ErrorCode

E = ErrorCode
AUTH_ERRORS = (E.AUTH_TOKEN_MISSING, E.AUTH_TOKEN_INVALID, E.AUTH_PERMISSION_MISSING)
ALWAYS = (E.METHOD_NOT_ALLOWED, E.STORAGE_UNAVAILABLE, E.INTERNAL_ERROR)
BODY_ERRORS = (E.REQUEST_INVALID, E.JSON_MALFORMED, E.REQUEST_TOO_LARGE, E.UNSUPPORTED_MEDIA_TYPE)
SUBMIT_ERRORS = (*BODY_ERRORS, E.UNKNOWN_JOB_TYPE, E.PAYLOAD_INVALID, E.PAYLOAD_TOO_LARGE,
                 E.IDEMPOTENCY_KEY_REUSED, E.SCHEDULE_TOO_FAR, E.QUOTA_EXCEEDED)
JOB_ID = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


@dataclass(frozen=True)
class OperationSpec:
    method: str
    path: str
    operation_id: str
    summary: str
    success: dict[int, type[BaseModel] | None]  # None: no body (a redirect)
    request: type[BaseModel] | None = None
    errors: tuple[ErrorCode, ...] = ()
    parameters: tuple[dict[str, Any], ...] = ()
    anonymous: bool = False
    headers: dict[int, tuple[str, ...]] = field(default_factory=dict)


OPERATIONS: tuple[OperationSpec, ...] = (
    OperationSpec("post", "/api/jobs", "submitJob", "Submit a job", {202: Accepted}, SubmitRequest,
                  (*AUTH_ERRORS, *SUBMIT_ERRORS), headers={202: ("Location", "Retry-After", "Idempotent-Replayed")}),
    OperationSpec("get", "/api/jobs", "listJobs", "List the jobs the caller may see, newest first", {200: JobList},
                  errors=(*AUTH_ERRORS, E.REQUEST_INVALID), parameters=(
                      _query("status", {"type": "string", "enum": ["Queued", "Running", "Completed", "Failed",
                                                                   "Poisoned", "Cancelled"]}, "only this status"),
                      _query("jobType", {"type": "string", "maxLength": 64}, "only this job type"),
                      _query("subjectId", {"type": "string", "format": "uuid"}, "only this subject"),
                      _query("pageSize", {"type": "integer", "minimum": 1, "maximum": 1000},
                             "items per page, default 20; a larger value is clamped to JOBS_LIST_MAX_PAGE_SIZE "
                             "(100 unless configured, at most 1000)"),
                      _query("continuationToken", {"type": "string"}, "from the previous page"))),
    OperationSpec("post", "/api/jobs/batch", "submitJobsBatch",
                  "Submit up to 100 jobs: one answer per item (accepted, replayed or refused)", {207: BatchResult},
                  BatchRequest, (*AUTH_ERRORS, *BODY_ERRORS)),
    OperationSpec("post", "/api/uploads", "createUpload",
                  "A new subject id and a write-only URL to upload it (a document or an e-mail)",
                  {201: UploadTicket}, UploadRequest, (*AUTH_ERRORS, *BODY_ERRORS)),
    OperationSpec("post", "/api/analysis/enqueue", "enqueueAnalysis", "Submit an ai-analyze job (seed endpoint)",
                  {202: Accepted}, AnalysisRequest, (*AUTH_ERRORS, *SUBMIT_ERRORS),
                  headers={202: ("Location", "Retry-After", "Idempotent-Replayed")}),
    OperationSpec("get", "/api/jobs/{jobId}/status", "getJobStatus", "The job's status",
                  {200: JobStatusView, 303: None}, parameters=(
                      JOB_ID, _query("history", {"type": "boolean"}, "include the transition history"),
                      _query("redirect", {"type": "boolean"},
                             "once the job is Completed, answer 303 See Other to its result instead"),
                      _query("waitSeconds", {"type": "integer", "minimum": 0, "maximum": 30},
                             "long polling: answer as soon as the job changes, or after this many seconds")),
                  errors=(*AUTH_ERRORS, E.JOB_NOT_FOUND, E.REQUEST_INVALID),
                  headers={200: ("Retry-After", "Cache-Control", "Preference-Applied"),
                           303: ("Location", "Cache-Control")}),
    OperationSpec("get", "/api/jobs/{jobId}/result", "getJobResult", "A Completed job's output",
                  {200: JobResult}, errors=(*AUTH_ERRORS, E.JOB_NOT_FOUND, E.JOB_NOT_COMPLETED, E.RESULT_NOT_FOUND),
                  parameters=(JOB_ID,), headers={200: ("Cache-Control",)}),
    OperationSpec("post", "/api/jobs/{jobId}/cancel", "cancelJob", "Cancel a job",
                  {200: JobStatusView, 202: JobStatusView}, errors=(*AUTH_ERRORS, E.JOB_NOT_FOUND,
                                                                    E.JOB_ALREADY_TERMINAL),
                  parameters=(JOB_ID,), headers={202: ("Location", "Retry-After")}),
    OperationSpec("post", "/api/jobs/{jobId}/retry", "retryJob", "Re-drive a Failed or Poisoned job",
                  {202: Accepted}, errors=(*AUTH_ERRORS, E.JOB_NOT_FOUND, E.JOB_NOT_RETRYABLE),
                  parameters=(JOB_ID,), headers={202: ("Location", "Retry-After")}),
    OperationSpec("get", "/api/health", "health", "Liveness (anonymous; reveals nothing)", {200: Health},
                  anonymous=True),
    OperationSpec("get", "/api/openapi.json", "openapi", "This document (anonymous)", {200: BaseModel},
                  anonymous=True),
)

HEADERS: dict[str, dict[str, Any]] = {
    "Preference-Applied": {
        "schema": {"type": "string", "examples": ["wait=20"]},
        "description": "Present when the request's waitSeconds was honoured (the answer came when the job "
                       "changed or the time was up); absent when it was answered at once.",
    },
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds until the job is likely further along, while it is not terminal: from its job "
                       "type's typical duration and its state (Queued: pickup + typical; Running: what is left), "
                       "at most JOBS_STATUS_RETRY_AFTER_MAX_SECONDS. Absent once the job is terminal.",
    },
}


def documented_statuses(method: str, path: str) -> set[int]:
    spec = next(op for op in OPERATIONS if op.method == method.lower() and op.path == path)
    return set(spec.success) | {e.status for e in (*spec.errors, *ALWAYS) if e.status is not None}


def _responses(spec: OperationSpec) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in spec.success.items():
        headers = {h: HEADERS.get(h, {"schema": {"type": "string"}})
                   for h in (*spec.headers.get(status, ()), "x-correlation-id")}
        if model is None:
            responses[str(status)] = {"description": "See Other: the job's result is at Location", "headers": headers}
            continue
        content = ({"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
                   if model is not BaseModel else {"application/json": {"schema": {"type": "object"}}})
        responses[str(status)] = {"description": model.__doc__ or "OK", "content": content, "headers": headers}
    by_status: dict[int, list[str]] = {}
    for code in (*spec.errors, *ALWAYS):
        if code.status is not None:
            by_status.setdefault(code.status, []).append(code.code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = {
            "description": "Problem: " + ", ".join(codes),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return responses


def _operation(spec: OperationSpec) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": spec.operation_id, "summary": spec.summary,
                          "parameters": [*spec.parameters, {"name": "x-correlation-id", "in": "header",
                                                            "required": False, "schema": {"type": "string"}}],
                          "responses": _responses(spec)}
    if spec.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{spec.request.__name__}"}}}}
    op["security"] = [] if spec.anonymous else [{"bearer": []}]
    return op


@cache
def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [SubmitRequest, BatchRequest, AnalysisRequest, Accepted, BatchResult,
                                      JobStatusView, JobResult, JobList, UploadRequest, UploadTicket, Health, Problem]
    _, schemas = models_json_schema([(m, "serialization") for m in models],
                                    ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for spec in OPERATIONS:
        paths.setdefault(spec.path, {})[spec.method] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Background jobs API", "version": "1.0.0",
                 "description": "Submit background jobs, watch, cancel, re-drive and list them. Errors are "
                                "RFC 9457 problem+json with a stable code (docs/errors.md)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                       "description": "A Microsoft Entra ID access token with Jobs.Submit / Jobs.Read / Jobs.Admin"}}},
    }
