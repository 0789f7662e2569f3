"""The queue-triggered worker: at-least-once delivery in, exactly one terminal status out.

For each delivery of a job message:
1. Parse the contract. An unparseable one goes to the poison queue (CONTRACT_INVALID) at once:
   raising would only make the host retry a message that can never succeed.
2. Read the status entity (recreate it from the contract if it is missing) and decide:
   terminal -> re-send its outcome (a duplicate delivery may mean the send never happened);
   Running with a live lease -> leave it to its owner; cancel requested -> Cancelled;
   a stale retry message -> drop it; attempts used up -> Poisoned; else claim it.
3. Claim = Queued (or Running with an expired lease) -> Running with attempt+1 and a lease,
   written with If-Match. Losing that race (412) means re-read and re-decide.
4. Run the handler with a lease heartbeat. Success -> Completed; PermanentJobError -> Failed;
   JobCancelled -> Cancelled; anything else is transient: Queued again with a new message
   delayed by jittered exponential backoff, or Poisoned when no attempt is left.
5. Send the outcome event after a terminal transition. The message is deleted by the host only
   after this function returns, so any failure before then means redelivery, never loss.

Storage round trips for a processed job: read, claim, final transition, outcome send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, auto
from typing import Any

from pydantic import ValidationError

from shared import terminal
from shared.context import JobContext
from shared.contract import JobContract, JobStatus, payload_fingerprint
from shared.errors import ErrorCode, JobCancelled, PermanentJobError
from shared.lease import Lease, LeaseLost
from shared.outcomes import emit_and_clear, emit_outcome
from shared.registry import JobType
from shared.runtime import Runtime
from shared.status import JobRecord, Transition
from shared.status_store import ConcurrencyConflict, JobAlreadyExists
from shared.telemetry import JobLogger, job_dimensions, job_logger, with_dims
from shared.tracing import SpanKind, job_span

logger = logging.getLogger("jobs.worker")


class Delivery(Enum):
    CLAIM = auto()
    TERMINAL = auto()  # already finished: re-send the outcome, acknowledge
    OWNED = auto()  # another worker holds a live lease: acknowledge
    STALE = auto()  # an older attempt's message: acknowledge
    CANCEL = auto()  # cancel was requested before it ran
    EXHAUSTED = auto()  # no attempt left: poison


def decide_delivery(record: JobRecord, contract: JobContract, now: datetime) -> Delivery:
    if record.is_terminal:
        return Delivery.TERMINAL
    if record.status is JobStatus.RUNNING and record.lease_is_live(now):
        return Delivery.OWNED
    if record.cancel_requested:
        return Delivery.CANCEL
    if record.status is JobStatus.QUEUED and contract.attempt <= record.attempt:
        return Delivery.STALE
    if record.attempt >= record.max_attempts:
        return Delivery.EXHAUSTED
    return Delivery.CLAIM


def retry_delay(settings_base: float, settings_max: float, attempt: int) -> float:
    """Exponential backoff with equal jitter: never shorter than half the un-jittered delay."""
    ceiling = min(settings_max, settings_base * (2.0 ** max(0, attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security


def parse_contract(runtime: Runtime, body: str) -> tuple[JobContract | None, str]:
    try:
        contract = JobContract.model_validate_json(body)
    except ValidationError as exc:
        return None, f"not a job contract ({exc.error_count()} errors)"
    if runtime.registry.get(contract.job_type) is None:
        return None, f"unknown job type {contract.job_type!r}"
    return contract, ""


async def handle_job_message(runtime: Runtime, body: str, dequeue_count: int | None = None) -> None:
    contract, problem = parse_contract(runtime, body)
    if contract is None:
        logger.error("poisoning message: %s", problem, extra={"code": "CONTRACT_INVALID"})
        await runtime.queues.send_poison(body)
        return
    log = job_logger(contract)
    record = await runtime.store.get(contract.job_id) or await recreate_from_contract(runtime, contract, log)
    with job_span(f"run {contract.job_type}", SpanKind.CONSUMER, traceparent=record.trace_parent,
                  attributes=job_dimensions(contract)):
        log.info("delivery of attempt %s (dequeue count %s)", contract.attempt, dequeue_count)
        claimed = await _claim(runtime, contract, record, log, dequeue_count or 1)
        if claimed is not None:
            wait_ms = max(0, int((claimed.updated_at - record.visible_at).total_seconds() * 1000))
            log = with_dims(log, attempt=claimed.attempt)
            log.info("claimed attempt %s after %d ms in the queue", claimed.attempt, wait_ms,
                     extra={"queueWaitMs": wait_ms})
            await _run(runtime, contract, claimed, log)


async def recreate_from_contract(runtime: Runtime, contract: JobContract, log: JobLogger) -> JobRecord:
    """No orphans: a message whose entity is missing recreates it from the contract."""
    log.warning("status entity missing; recreating it from the message")
    now = runtime.clock()
    record = JobRecord(
        job_id=contract.job_id, tenant_id=contract.tenant_id, job_type=contract.job_type,
        subject_id=contract.subject_id, correlation_id=contract.correlation_id,
        idempotency_key=contract.idempotency_key, max_attempts=contract.max_attempts,
        payload=contract.payload, payload_fingerprint=payload_fingerprint(contract.subject_id, contract.payload),
        created_at=contract.created_at, status=JobStatus.QUEUED, updated_at=now, visible_at=now,
        attempt=contract.attempt - 1,
    )
    try:
        return await runtime.store.create(record, reason="RecreatedFromMessage")
    except JobAlreadyExists:
        existing = await runtime.store.get(contract.job_id)
        if existing is None:  # deleted in between (purge); nothing sensible left to run
            raise
        return existing


async def _claim(
    runtime: Runtime, contract: JobContract, record: JobRecord, log: JobLogger, dequeue_count: int = 1
) -> JobRecord | None:
    """Decide what this delivery means; return the claimed record when it is ours to run."""
    current: JobRecord | None = record
    for _ in range(8):
        if current is None:
            current = await runtime.store.get(contract.job_id)
            if current is None:
                log.warning("job vanished (purged?) while deciding; dropping the message")
                return None
        now = runtime.clock()
        decision = decide_delivery(current, contract, now)
        if decision is Delivery.CLAIM:
            claim = Transition(JobStatus.RUNNING, "Claimed", {
                "attempt": current.attempt + 1, "lease_owner": uuid.uuid4().hex,
                "lease_expires_at": now + timedelta(seconds=runtime.settings.lease_seconds),
                "started_at": now, "progress_percent": None, "progress_message": None,
            })
            try:
                return await runtime.store.apply(current, claim)
            except ConcurrencyConflict:
                log.info("lost the claim race; re-reading")
                current = None
                continue
        await _settle_unclaimed(runtime, decision, current, log, dequeue_count)
        return None
    raise ConcurrencyConflict(f"job {contract.job_id}: could not settle the delivery")


async def _settle_unclaimed(
    runtime: Runtime, decision: Delivery, record: JobRecord, log: JobLogger, dequeue_count: int
) -> None:
    if decision is Delivery.OWNED and dequeue_count > 1:
        await _watch_owner(runtime, record, log)
    elif decision is Delivery.TERMINAL:
        log.info("job already %s; re-sending its outcome", record.status.value)
        if record.outcome_pending:
            await emit_and_clear(runtime.store, runtime.queues, record)
        else:
            await emit_outcome(runtime.queues, record)
    elif decision is Delivery.CANCEL:
        await _finish(runtime, record, terminal.cancelled(via_message=True), log)
    elif decision is Delivery.EXHAUSTED:
        await _finish(runtime, record, _exhausted(record, "no attempt left"), log)
    else:
        log.info("acknowledging without work: %s", decision.name.lower())


async def _watch_owner(runtime: Runtime, record: JobRecord, log: JobLogger) -> None:
    """A message that comes back while another worker's lease is live most likely outlived a
    worker that crashed (the host redelivers only what was not deleted). Dropping it would leave
    the job to maintenance; instead leave a copy that becomes visible just after the lease ends:
    if the owner is alive by then, the copy finds the job renewed or finished and is acknowledged;
    if not, it takes the job over at once."""
    expires = record.lease_expires_at or runtime.clock()
    delay = max(1.0, (expires - runtime.clock()).total_seconds() + 1)
    await runtime.queues.send_job(record.contract(record.attempt), delay)
    log.info("redelivered while leased; a copy will look again in %.0f s", delay)


@dataclass(frozen=True)
class Verdict:
    transition: Transition
    retry_delay: float | None = None  # set when the verdict is a scheduled retry


def _exhausted(record: JobRecord, why: str, changes: dict[str, Any] | None = None) -> Transition:
    """No attempt left: Poisoned, its event handed to the poison function via the poison queue."""
    return terminal.poisoned(record, ErrorCode.MAX_ATTEMPTS_EXCEEDED,
                             f"{why} after {record.attempt} of {record.max_attempts} attempts", extra=changes)


async def _run(runtime: Runtime, contract: JobContract, record: JobRecord, log: JobLogger) -> None:
    job_type = runtime.registry.get(record.job_type)
    assert job_type is not None  # parse_contract checked it
    lease = Lease(runtime.store, record, runtime.settings.lease_seconds, runtime.clock)
    heartbeat = asyncio.create_task(lease.heartbeat())
    started = asyncio.get_running_loop().time()
    try:
        verdict = await _invoke_while_leased(runtime, job_type, contract, lease, log)
    except LeaseLost:
        log.warning("lease lost while running; another worker owns the job now")
        return
    finally:
        heartbeat.cancel()
    elapsed_ms = int((asyncio.get_running_loop().time() - started) * 1000)
    log.info("handler finished in %d ms: %s", elapsed_ms, verdict.transition.target.value,
             extra={"durationMs": elapsed_ms, "outcome": verdict.transition.target.value})
    await _finish(runtime, lease.record, verdict.transition, log, delay=verdict.retry_delay, owner=lease.owner)


async def _invoke_while_leased(
    runtime: Runtime, job_type: JobType[Any], contract: JobContract, lease: Lease, log: JobLogger
) -> Verdict:
    """Run the handler, but stop it the moment the lease is lost (so two runs never overlap)."""
    handler = asyncio.create_task(_invoke(runtime, job_type, contract, lease, log))
    lost = asyncio.create_task(lease.lost_event.wait())
    try:
        await asyncio.wait({handler, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()
    if not handler.done():
        handler.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await handler
        raise LeaseLost(str(contract.job_id))
    return handler.result()


async def _invoke(
    runtime: Runtime, job_type: JobType[Any], contract: JobContract, lease: Lease, log: JobLogger
) -> Verdict:
    record = lease.record
    try:
        payload = job_type.parse_payload(record.payload)
    except ValidationError as exc:
        return Verdict(terminal.failed(ErrorCode.PAYLOAD_INVALID.code, f"payload invalid ({exc.error_count()} errors)"))
    context: JobContext[Any] = JobContext(
        contract=record.contract(record.attempt), payload=payload, logger=log,
        files=runtime.files(record.tenant_id), index_rows=runtime.index_rows(record.tenant_id),
        settings=runtime.settings, _lease=lease, _store=runtime.store,
    )
    try:
        summary = await job_type.handler(context)
        return Verdict(terminal.completed(dict(summary)))
    except PermanentJobError as exc:
        log.warning("permanent failure %s: %s", exc.code.code, exc.message)
        return Verdict(terminal.failed(exc.code.code, exc.message))
    except JobCancelled:
        return Verdict(terminal.cancelled(via_message=True))
    except LeaseLost:
        raise
    except Exception as exc:  # transient by definition: anything not declared permanent
        log.warning("attempt %s failed: %s", record.attempt, type(exc).__name__, exc_info=True)
        return _transient(runtime, lease.record, exc)


def _transient(runtime: Runtime, record: JobRecord, exc: Exception) -> Verdict:
    changes = {"last_error_code": ErrorCode.TRANSIENT_ERROR.code, "last_error_message": type(exc).__name__}
    if record.cancel_requested:  # no point retrying work someone asked to stop
        return Verdict(terminal.cancelled(via_message=True))
    if record.attempt >= record.max_attempts:
        return Verdict(_exhausted(record, type(exc).__name__, changes))
    delay = retry_delay(runtime.settings.retry_base_seconds, runtime.settings.retry_max_seconds, record.attempt)
    now = runtime.clock()
    retry = Transition(JobStatus.QUEUED, ErrorCode.TRANSIENT_ERROR.code, {
        **changes, "lease_owner": None, "lease_expires_at": None,
        "visible_at": now + timedelta(seconds=delay),
    }, f"retry in {delay:.1f}s after {type(exc).__name__}")
    return Verdict(retry, retry_delay=delay)


async def _finish(
    runtime: Runtime, record: JobRecord, transition: Transition, log: JobLogger,
    *, delay: float | None = None, owner: str | None = None,
) -> None:
    """Apply the verdict if the job is still in the state we decided on, then send what follows."""
    expected = record.status

    def decide(current: JobRecord) -> Transition | None:
        if current.status is not expected or (owner is not None and current.lease_owner != owner):
            return None  # someone else moved it on (takeover, cancel, duplicate): not ours to write
        return transition

    result = await runtime.store.transition(record.job_id, decide, current=record)
    if not result.applied or result.record is None:
        log.info("job moved on before our %s could be written; leaving it", transition.target.value)
        return
    final = result.record
    if final.status is JobStatus.QUEUED:
        await runtime.queues.send_job(final.contract(final.attempt + 1), delay or 0)
    elif final.status is JobStatus.POISONED:
        await runtime.queues.send_poison(final.contract(max(1, final.attempt)).to_json())
    else:
        await emit_outcome(runtime.queues, final)
