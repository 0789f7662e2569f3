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

from shared.domain.contract import JobContract
from shared.domain.errors import ErrorCode
from shared.domain.record import JobRecord, Transition
from shared.domain.rules import Origin
from shared.engine.runtime import Runtime
from shared.observability.logs import job_dimensions, job_logger
from shared.observability.traces import SpanKind, job_span

logger = logging.getLogger("jobs.poison")
CRASH_LOOP = "the message failed every delivery the host allows (crash loop or repeated worker errors)"
NOT_A_CONTRACT = "its queue message is not a valid contract"


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
    record = await runtime.lifecycle.load_or_recreate(contract, Origin.POISON, log)
    with job_span(f"poison {contract.job_type}", SpanKind.CONSUMER, traceparent=record.trace_parent,
                  attributes=job_dimensions(contract)):
        if record.is_terminal:
            # Its outcome may be what failed, so send it (again): the eventId is deterministic.
            await runtime.lifecycle.publish_outcome(record)
            log.info("poison message of a finished job: its %s outcome was re-sent", record.status.value)
        elif record.redriven_at and inserted_at and record.redriven_at > inserted_at:
            log.info("poison copy predates the job's re-drive; leaving the new run alone")
        else:
            commit = await _poison(runtime, record, ErrorCode.MAX_ATTEMPTS_EXCEEDED, CRASH_LOOP)
            if commit is None:
                log.warning("poisoned job no longer exists; nothing to record")
            else:
                log.warning("job is %s", commit.status.value, extra={"outcome": commit.status.value})


async def _poison(runtime: Runtime, record: JobRecord, code: ErrorCode, why: str) -> JobRecord | None:
    def decide(current: JobRecord) -> Transition | None:
        return None if current.is_terminal else current.poisoned(code, why, runtime.clock())

    commit = await runtime.lifecycle.commit(record.job_id, decide, Origin.POISON, current=record)
    final = commit.record
    if not commit.applied and final is not None and final.is_terminal and final.outcome_pending:
        # Someone else ended it first and still owes the event (say, the worker's own Poisoned, whose
        # hand-over is behind this message): send it now rather than after the sweep's grace period.
        return await runtime.lifecycle.publish_outcome(final)
    return final


async def _settle_invalid(runtime: Runtime, body: str) -> None:
    job_id = _job_id_of(body)
    record = await runtime.store.get(job_id) if job_id else None
    if record is None:
        logger.error("dropping a poison message that is not a job contract and names no known job",
                     extra={"code": ErrorCode.CONTRACT_INVALID.code})
        return
    await _poison(runtime, record, ErrorCode.CONTRACT_INVALID, NOT_A_CONTRACT)
