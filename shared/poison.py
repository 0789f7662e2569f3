"""The poison-queue function: whatever arrives on ``<jobs>-poison`` ends Poisoned, with its event.

Messages arrive here two ways: the worker hands over a job with no attempt left (already
Poisoned, its outcome pending), or the Functions host moves a message that failed
maxDequeueCount deliveries (a crash loop, or storage failing under the worker). This function
never throws: the host gives a ``-poison`` queue no poison queue of its own, so a throwing
function would only see the same message again ten minutes later, for days. What it cannot
finish now (storage down) stays non-terminal, and maintenance picks it up.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

from pydantic import ValidationError

from shared import terminal
from shared.contract import JobContract, JobStatus
from shared.errors import ErrorCode
from shared.outcomes import emit_and_clear, emit_outcome
from shared.runtime import Runtime
from shared.status import JobRecord, Transition
from shared.telemetry import JobLogger, job_dimensions, job_logger
from shared.tracing import SpanKind, job_span
from shared.worker import recreate_from_contract

logger = logging.getLogger("jobs.poison")


def _poisoned(record: JobRecord, code: ErrorCode, why: str) -> Transition | None:
    return None if record.is_terminal else terminal.poisoned(record, code, why)


def _job_id_of(body: str) -> uuid.UUID | None:
    """Best effort: the jobId of a message that is not a valid contract."""
    try:
        value = json.loads(body)
        return uuid.UUID(str(value["jobId"])) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


async def handle_poison_message(runtime: Runtime, body: str, inserted_at: datetime | None = None) -> None:
    """``inserted_at``: when the message landed on the poison queue (the host's metadata)."""
    try:
        await _handle(runtime, body, inserted_at)
    except Exception:
        logger.exception("poison message could not be settled now; maintenance will retry the job")


async def _handle(runtime: Runtime, body: str, inserted_at: datetime | None) -> None:
    try:
        contract: JobContract | None = JobContract.model_validate_json(body)
    except ValidationError:
        contract = None
    if contract is None or runtime.registry.get(contract.job_type) is None:
        await _settle_invalid(runtime, body)
        return
    log = job_logger(contract)
    record = await runtime.store.get(contract.job_id) or await recreate_from_contract(runtime, contract, log)
    with job_span(f"poison {contract.job_type}", SpanKind.CONSUMER, traceparent=record.trace_parent,
                  attributes=job_dimensions(contract)):
        if record.is_terminal:
            await _resend_outcome(runtime, record, log)
        elif record.redriven_at and inserted_at and record.redriven_at > inserted_at:
            log.info("poison copy predates the job's re-drive; leaving the new run alone")
        else:
            await _poison(runtime, contract, record, log)


async def _resend_outcome(runtime: Runtime, record: JobRecord, log: JobLogger) -> None:
    """A terminal job's message ended here: its outcome may be what failed, so send it (again).
    The eventId is deterministic, so consumers see a repeat as the same event."""
    if record.outcome_pending:
        await emit_and_clear(runtime.store, runtime.queues, record)
    else:
        await emit_outcome(runtime.queues, record)
    log.info("poison message of a finished job: its %s outcome was re-sent", record.status.value)


async def _poison(runtime: Runtime, contract: JobContract, record: JobRecord, log: JobLogger) -> None:
    why = "the message failed every delivery the host allows (crash loop or repeated worker errors)"
    result = await runtime.store.transition(
        contract.job_id, lambda r: _poisoned(r, ErrorCode.MAX_ATTEMPTS_EXCEEDED, why), current=record
    )
    final = result.record
    if final is None:
        log.warning("poisoned job no longer exists; nothing to record")
        return
    if final.status is JobStatus.POISONED and final.outcome_pending:
        await emit_and_clear(runtime.store, runtime.queues, final)
    log.warning("job is %s", final.status.value, extra={"outcome": final.status.value})


async def _settle_invalid(runtime: Runtime, body: str) -> None:
    job_id = _job_id_of(body)
    record = await runtime.store.get(job_id) if job_id else None
    if record is None:
        logger.error("dropping a poison message that is not a job contract and names no known job",
                     extra={"code": ErrorCode.CONTRACT_INVALID.code})
        return
    result = await runtime.store.transition(
        record.job_id, lambda r: _poisoned(r, ErrorCode.CONTRACT_INVALID, "its queue message is not a valid contract"),
        current=record,
    )
    if result.record is not None and result.record.outcome_pending and result.record.is_terminal:
        await emit_and_clear(runtime.store, runtime.queues, result.record)
