"""The HTTP operations: thin request/response code over submission, status, actions and auth.

Each operation authenticates, authorizes through shared/domain/access.py, parses its input, calls the
job system and shapes the answer with the models in shared/api/models.py.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import ValidationError

from shared.api.models import (
    Accepted,
    AnalysisRequest,
    BatchItemResult,
    BatchRequest,
    BatchResult,
    Health,
    HistoryItem,
    JobList,
    JobResult,
    JobStatusView,
    Problem,
    SubmitRequest,
    UploadRequest,
    UploadTicket,
)
from shared.api.openapi import openapi_document
from shared.api.request import ApiResponse, Call, authenticate, problem, problem_body, read_json
from shared.domain import access, pacing
from shared.domain.commands import ListQuery, SubmitJob
from shared.domain.contract import JobStatus
from shared.domain.errors import ErrorCode, JobsError, field_errors
from shared.domain.principal import Principal
from shared.domain.record import HistoryEntry, JobRecord
from shared.engine.actions import cancel, list_jobs, redrive
from shared.engine.batch import BatchItem, submit_batch
from shared.engine.results import read_output
from shared.engine.submit import submit
from shared.engine.uploads import new_upload
from shared.engine.watch import MAX_WAIT_SECONDS

TRUE_VALUES = ("1", "true", "yes")


def status_url(job_id: uuid.UUID) -> str:
    return f"/api/jobs/{job_id}/status"


def result_url(job_id: uuid.UUID) -> str:
    return f"/api/jobs/{job_id}/result"


def retry_after(call: Call, record: JobRecord) -> dict[str, str]:
    """The Retry-After header for a response about ``record``: from its job type's typical duration and
    its state (shared/domain/pacing.py); none once the job is terminal."""
    job_type = call.runtime.registry.get(record.job_type)
    typical = job_type.typical_seconds if job_type is not None else pacing.DEFAULT_TYPICAL_SECONDS
    seconds = pacing.retry_after(record, typical, call.runtime.clock(),
                                 call.runtime.settings.status_retry_after_max_seconds)
    return {} if seconds is None else {"Retry-After": str(seconds)}


def accepted(call: Call, record: JobRecord, *, replayed: bool = False) -> ApiResponse:
    url = status_url(record.job_id)
    headers = {"Location": url, **retry_after(call, record)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return ApiResponse(202, Accepted(job_id=record.job_id, status=record.status, status_url=url).body(), headers)


def submit_command(call: Call, request: SubmitRequest) -> SubmitJob:
    not_before = request.not_before
    if request.delay_seconds is not None:
        not_before = call.runtime.clock() + timedelta(seconds=request.delay_seconds)
    return SubmitJob(request.job_type, request.subject_id, request.payload, not_before)


async def submit_job(call: Call) -> ApiResponse:
    principal = await authenticate(call, access.Action.SUBMIT)
    command = submit_command(call, read_json(call, SubmitRequest))
    submission = await submit(call.runtime, principal, command, call.correlation_id)
    return accepted(call, submission.record, replayed=submission.replayed)


async def submit_jobs_batch(call: Call) -> ApiResponse:
    """Up to 100 submissions; 207 with one result per item (each accepted, replayed or refused)."""
    principal = await authenticate(call, access.Action.SUBMIT)
    items = read_json(call, BatchRequest).jobs
    commands: list[SubmitJob | JobsError] = []
    for raw in items:
        try:
            commands.append(submit_command(call, SubmitRequest.model_validate(raw)))
        except ValidationError as exc:
            commands.append(JobsError(ErrorCode.REQUEST_INVALID, errors=field_errors(exc)))
        except ValueError as exc:  # not a JSON object
            commands.append(JobsError(ErrorCode.REQUEST_INVALID, str(exc)))
    valid = [c for c in commands if isinstance(c, SubmitJob)]
    answers = iter(await submit_batch(call.runtime, principal, valid, call.correlation_id) if valid else [])
    results = [_batch_item(call, i, c if isinstance(c, JobsError) else next(answers)) for i, c in enumerate(commands)]
    body = BatchResult(items=results, accepted=sum(r.status == 202 and not r.replayed for r in results),
                       replayed=sum(bool(r.replayed) for r in results),
                       refused=sum(r.status != 202 for r in results))
    return ApiResponse(207, body.body(), {"Cache-Control": "no-store"})


def _batch_item(call: Call, index: int, answer: BatchItem) -> BatchItemResult:
    if isinstance(answer, JobsError):
        refusal = problem(answer, call.correlation_id)
        return BatchItemResult(index=index, status=refusal.status, problem=Problem.model_validate(refusal.body))
    record = answer.record
    return BatchItemResult(index=index, status=202, job_id=record.job_id, job_status=record.status,
                           status_url=status_url(record.job_id), replayed=answer.replayed)


async def create_upload(call: Call) -> ApiResponse:
    """A new subjectId and a short-lived, write-only URL for its blob, under the caller's tenant."""
    principal = await authenticate(call, access.Action.SUBMIT)
    upload = await new_upload(call.runtime, principal, read_json(call, UploadRequest).kind)
    ticket = UploadTicket(kind=upload.kind, subject_id=upload.subject_id, upload_url=upload.url,
                          headers={"x-ms-blob-type": "BlockBlob", "Content-Type": upload.content_type},
                          expires_at=upload.expires_at, max_bytes=upload.max_bytes)
    return ApiResponse(201, ticket.body(), {"Cache-Control": "no-store"})


async def enqueue_analysis(call: Call) -> ApiResponse:
    principal = await authenticate(call, access.Action.SUBMIT)
    body = read_json(call, AnalysisRequest)
    command = SubmitJob("ai-analyze", body.document_id, {"analysisType": body.type})
    submission = await submit(call.runtime, principal, command, call.correlation_id)
    return accepted(call, submission.record, replayed=submission.replayed)


def outcome_problem(record: JobRecord) -> Problem | None:
    if not record.is_terminal or record.outcome_code is None:
        return None
    known = ErrorCode.__members__.get(record.outcome_code)
    body = problem_body(known, record.outcome_message) if known else {
        "type": "about:blank", "title": record.outcome_code, "code": record.outcome_code,
        "detail": record.outcome_message}
    body.pop("status", None)  # an outcome is not an HTTP response
    return Problem.model_validate(body)


def status_view(record: JobRecord, *, with_history: bool = False) -> JobStatusView:
    return JobStatusView(
        job_id=record.job_id, job_type=record.job_type, subject_id=record.subject_id, status=record.status,
        attempt=record.attempt, max_attempts=record.max_attempts, run=record.run, created_at=record.created_at,
        last_updated_at=record.updated_at, correlation_id=record.correlation_id,
        idempotency_key=record.idempotency_key, status_url=status_url(record.job_id),
        cancel_requested=record.cancel_requested, percent_complete=record.progress_percent,
        progress_message=record.progress_message, outcome=outcome_problem(record),
        completed_at=record.terminal_at if record.is_terminal else None, result=record.result,
        result_url=result_url(record.job_id) if record.status is JobStatus.COMPLETED else None,
        not_before=record.visible_at if record.status is JobStatus.QUEUED else None,
        history=[_history_item(entry) for entry in record.history] if with_history else None,
        history_omitted=record.history_dropped if with_history else None,
    )


def _history_item(entry: HistoryEntry) -> HistoryItem:
    return HistoryItem.model_validate({
        "version": entry.version, "from": entry.source, "to": entry.target, "attempt": entry.attempt,
        "at": entry.at, "reason": entry.reason, "message": entry.message,
    })


def status_response(call: Call, record: JobRecord, status: int = 200, *, with_history: bool = False) -> ApiResponse:
    headers = {"Cache-Control": "no-store", **retry_after(call, record)}
    if status == 202:
        headers["Location"] = status_url(record.job_id)
    return ApiResponse(status, status_view(record, with_history=with_history).body(), headers)


async def _visible_job(call: Call, action: access.Action) -> tuple[Principal, JobRecord]:
    principal = await authenticate(call, action)
    job_id = access.job_id_from_route(call.request.route_params.get("jobId"))
    return principal, access.visible_job(principal, await call.runtime.store.get(job_id))


async def job_status(call: Call) -> ApiResponse:
    _, record = await _visible_job(call, access.Action.READ)
    wait = _wait_seconds(call)
    watched = await call.runtime.watchers.until_changed(call.runtime.store, record, wait) if wait else None
    if watched is not None:
        record = watched.record
    if record.status is JobStatus.COMPLETED and _flag(call, "redirect"):  # Asynchronous Request-Reply
        return ApiResponse(303, None, {"Location": result_url(record.job_id), "Cache-Control": "no-store"})
    response = status_response(call, record, with_history=_flag(call, "history"))  # history: on the record
    if watched is not None and watched.waited:
        response.headers["Preference-Applied"] = f"wait={wait}"  # RFC 7240's name for "I waited"
    return response


def _wait_seconds(call: Call) -> int:
    text = call.request.params.get("waitSeconds")
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_WAIT_SECONDS:
        raise JobsError(ErrorCode.REQUEST_INVALID, errors=[
            {"field": "waitSeconds", "message": f"a whole number of seconds, 0 to {MAX_WAIT_SECONDS}"}])
    return int(text)


def _flag(call: Call, name: str) -> bool:
    return (call.request.params.get(name) or "").lower() in TRUE_VALUES


async def job_result(call: Call) -> ApiResponse:
    """A Completed job's output, authorized exactly like its status."""
    _, record = await _visible_job(call, access.Action.READ)
    if record.status is not JobStatus.COMPLETED or record.terminal_at is None:
        raise JobsError(ErrorCode.JOB_NOT_COMPLETED, f"the job is {record.status.value}; a result exists once it "
                        "is Completed", extensions={"jobStatus": record.status.value,
                                                    "statusUrl": status_url(record.job_id)})
    output = await read_output(call.runtime, record)
    body = JobResult(job_id=record.job_id, job_type=record.job_type, completed_at=record.terminal_at,
                     result=output).body()
    return ApiResponse(200, body, {"Cache-Control": "no-store"})


async def cancel_job(call: Call) -> ApiResponse:
    _, record = await _visible_job(call, access.Action.CANCEL)
    outcome = await cancel(call.runtime, record)
    return status_response(call, outcome.record, 200 if outcome.immediate else 202)


async def retry_job(call: Call) -> ApiResponse:
    principal, record = await _visible_job(call, access.Action.RETRY)
    queued = await redrive(call.runtime, record, principal)
    return accepted(call, queued)


def list_query(call: Call) -> ListQuery:
    params = call.request.params
    errors: list[dict[str, str]] = []
    status = subject = None
    if params.get("status"):
        try:
            status = JobStatus(params["status"])
        except ValueError:
            errors.append({"field": "status", "message": f"one of {', '.join(s.value for s in JobStatus)}"})
    if params.get("subjectId"):
        try:
            subject = uuid.UUID(params["subjectId"])
        except ValueError:
            errors.append({"field": "subjectId", "message": "must be a GUID"})
    size_text = params.get("pageSize") or "20"
    if not (size_text.isascii() and size_text.isdigit()) or len(size_text) > 6:  # "²".isdigit() is True
        errors.append({"field": "pageSize", "message": "must be a positive integer"})
        size_text = "20"
    job_type = params.get("jobType") or None
    if job_type is not None and len(job_type) > 64:
        errors.append({"field": "jobType", "message": "at most 64 characters"})
    if errors:
        raise JobsError(ErrorCode.REQUEST_INVALID, errors=errors)
    size = min(max(1, int(size_text)), call.runtime.settings.list_max_page_size)  # clamped, not refused
    return ListQuery(status, job_type, subject, size, params.get("continuationToken") or None)


async def list_jobs_op(call: Call) -> ApiResponse:
    principal = await authenticate(call, access.Action.LIST)
    items, continuation = await list_jobs(call.runtime, principal, list_query(call))
    body = JobList(items=[status_view(r) for r in items], continuation_token=continuation).body()
    return ApiResponse(200, body, {"Cache-Control": "no-store"})


def health() -> ApiResponse:
    return ApiResponse(200, Health().body(), {"Cache-Control": "no-store"})


def openapi() -> ApiResponse:
    return ApiResponse(200, openapi_document(), {"Cache-Control": "public, max-age=300"})
