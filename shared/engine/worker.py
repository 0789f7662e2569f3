"""The queue-triggered worker: at-least-once delivery in, exactly one terminal status out.

For each delivery of a job message:
1. Parse the contract. An unparseable one goes to the poison queue (CONTRACT_INVALID) at once:
   raising would only make the host retry a message that can never succeed.
2. Read the status entity (recreate it from the contract if it is missing) and decide
   (``rules.decide_delivery``): terminal -> re-send its outcome (a duplicate delivery may mean
   the send never happened); Running with a live lease -> leave it to its owner; cancel
   requested -> Cancelled; a stale retry message -> drop it; attempts used up -> Poisoned; else
   claim it: Running with attempt+1 and a lease, committed If-Match by the lifecycle.
3. Run the handler with a lease heartbeat; stop it the moment the lease is lost.
4. Commit what the attempt came to (``rules.after_attempt``): Completed, Failed, Cancelled, a
   retry (Queued with a delayed message), a wait that gives the attempt back (RetryLater) or
   Poisoned. The lifecycle sends what follows; the host
   deletes the message only after this function returns, so any failure before then means
   redelivery, never loss.

Storage round trips for a processed job: read, claim, final transition, outcome send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from shared.domain.contract import JobContract, JobStatus
from shared.domain.errors import ErrorCode, JobCancelled, PermanentJobError, RetryLater
from shared.domain.record import JobRecord, Transition
from shared.domain.rules import (
    AttemptOutcome,
    CancelledByHandler,
    Deferred,
    Delivery,
    FailedPermanently,
    FailedTransiently,
    Origin,
    Succeeded,
    after_attempt,
    after_lost_lease,
    decide_delivery,
    delivery_transition,
    retry_delay,
)
from shared.engine.lease import Lease, LeaseLost
from shared.engine.runtime import Runtime
from shared.handlers import JobContext, JobType
from shared.observability.logs import JobLogger, job_dimensions, job_logger, with_dims
from shared.observability.traces import SpanKind, job_span

logger = logging.getLogger("jobs.worker")
GIVE_UP_SECONDS = 1.0


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
        await runtime.lifecycle.refuse_message(body)
        return
    log = job_logger(contract)
    record = await runtime.lifecycle.load_or_recreate(contract, Origin.DELIVERY, log)
    with job_span(f"run {contract.job_type}", SpanKind.CONSUMER, traceparent=record.trace_parent,
                  attributes=job_dimensions(contract)):
        log.info("delivery of attempt %s (dequeue count %s)", contract.attempt, dequeue_count)
        claimed = await _deliver(runtime, contract, record, log, dequeue_count or 1)
        if claimed is not None:
            wait_ms = max(0, int((claimed.updated_at - record.visible_at).total_seconds() * 1000))
            log = with_dims(log, attempt=claimed.attempt)
            log.info("claimed attempt %s after %d ms in the queue", claimed.attempt, wait_ms,
                     extra={"queueWaitMs": wait_ms})
            await _run(runtime, claimed, log)


async def _deliver(runtime: Runtime, contract: JobContract, record: JobRecord, log: JobLogger,
                   dequeue_count: int) -> JobRecord | None:
    """Commit what this delivery means; return the claimed record when it is ours to run."""
    owner = uuid.uuid4().hex
    decided: list[Delivery] = []  # what the committed round decided (the last one, after any re-reads)

    def decide(current: JobRecord) -> Transition | None:
        now = runtime.clock()
        decided.append(decide_delivery(current, contract, now))
        return delivery_transition(decided[-1], current, now, owner=owner, lease_seconds=runtime.settings.lease_seconds)

    commit = await runtime.lifecycle.commit(contract.job_id, decide, Origin.DELIVERY, current=record)
    current = commit.record
    if current is None:
        log.warning("job vanished (purged?) while deciding; dropping the message")
        return None
    if commit.applied:  # claimed (ours to run), or settled as Cancelled / Poisoned
        return current if decided[-1] is Delivery.CLAIM else None
    match decided[-1]:
        case Delivery.TERMINAL:
            log.info("job already %s; re-sending its outcome", current.status.value)
            await runtime.lifecycle.publish_outcome(current)
        case Delivery.OWNED if dequeue_count > 1:
            # A message back while another worker's lease is live most likely outlived a worker that
            # crashed (the host redelivers only what was not deleted). Dropping it would leave the job to
            # maintenance; a copy timed for the lease's end takes over at once if the owner is gone.
            delay = await runtime.lifecycle.look_again_after_lease(current)
            log.info("redelivered while leased; a copy will look again in %.0f s", delay)
        case decision:
            log.info("acknowledging without work: %s", decision.name.lower())
    return None


async def _run(runtime: Runtime, record: JobRecord, log: JobLogger) -> None:
    job_type = runtime.registry.get(record.job_type)
    assert job_type is not None  # parse_contract checked it
    lease = Lease(runtime.lifecycle, record, runtime.settings.lease_seconds, runtime.clock)
    heartbeat = asyncio.create_task(lease.heartbeat())
    started = asyncio.get_running_loop().time()
    try:
        outcome = await _invoke_while_leased(runtime, job_type, lease, log)
    except LeaseLost:
        log.warning("lease lost while running; another worker owns the job now")
        return
    except asyncio.CancelledError:  # the host is stopping (or the function timed out): hand the job on now
        heartbeat.cancel()
        await asyncio.shield(_give_up_lease(runtime, lease, log))
        raise
    finally:
        heartbeat.cancel()
    elapsed_ms = int((asyncio.get_running_loop().time() - started) * 1000)
    delay = retry_delay(runtime.settings.retry_base_seconds, runtime.settings.retry_max_seconds, lease.record.attempt)
    owner, defer_limit = lease.owner, timedelta(seconds=runtime.settings.defer_limit_seconds)
    intended = after_attempt(lease.record, outcome, runtime.clock(), delay, defer_limit).after.status
    log.info("handler finished in %d ms: %s", elapsed_ms, intended.value,
             extra={"durationMs": elapsed_ms, "outcome": intended.value})

    def finish(current: JobRecord) -> Transition | None:
        if not _runs_under(current, owner):
            return None  # someone else moved it on (takeover, duplicate): not ours to write
        return after_attempt(current, outcome, runtime.clock(), delay, defer_limit)

    commit = await runtime.lifecycle.commit(record.job_id, finish, Origin.DELIVERY, current=lease.record)
    if not commit.applied:
        log.info("job moved on before this attempt's outcome could be written; leaving it")


def _runs_under(record: JobRecord, owner: str | None) -> bool:
    """Whether the job still runs under this attempt's lease (nobody moved it on since)."""
    return record.status is JobStatus.RUNNING and record.lease_owner == owner


async def _give_up_lease(runtime: Runtime, lease: Lease, log: JobLogger) -> None:
    """What maintenance would do once the lease ran out, done at once (bounded to a second, best effort):
    Queued with the next attempt's message visible now (or Poisoned after the last), so the next host
    need not wait up to JOBS_LEASE_SECONDS for a job its predecessor was interrupted in."""
    owner, attempt = lease.owner, lease.record.attempt

    def give_up(current: JobRecord) -> Transition | None:
        if not _runs_under(current, owner):
            return None
        return after_lost_lease(current, runtime.clock(), f"attempt {attempt} interrupted: its host stopped")

    try:
        await asyncio.wait_for(runtime.lifecycle.commit(lease.record.job_id, give_up, Origin.DELIVERY,
                                                        current=lease.record, max_rounds=2), GIVE_UP_SECONDS)
        log.warning("attempt %s interrupted; the job was handed on", attempt)
    except Exception:
        log.warning("attempt %s interrupted; its lease will run out instead", attempt, exc_info=True)


async def _invoke_while_leased(runtime: Runtime, job_type: JobType[Any], lease: Lease,
                               log: JobLogger) -> AttemptOutcome:
    """Run the handler, but stop it the moment the lease is lost (so two runs never overlap)."""
    handler = asyncio.create_task(_invoke(runtime, job_type, lease, log))
    lost = asyncio.create_task(lease.lost_event.wait())
    try:
        await asyncio.wait({handler, lost}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # we are being stopped: the handler stops with us, before anyone hands the job on
        handler.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await handler
        raise
    finally:
        lost.cancel()
    if not handler.done():
        handler.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await handler
        raise LeaseLost(str(lease.record.job_id))
    return handler.result()


async def _invoke(runtime: Runtime, job_type: JobType[Any], lease: Lease, log: JobLogger) -> AttemptOutcome:
    record = lease.record
    try:
        payload = job_type.parse_payload(record.payload)
    except ValidationError as exc:
        return FailedPermanently(ErrorCode.PAYLOAD_INVALID.code, f"payload invalid ({exc.error_count()} errors)")
    context: JobContext[Any] = JobContext(
        contract=record.running_contract(), payload=payload, logger=log, files=runtime.files(record.tenant_id),
        settings=runtime.settings, _rows=lambda table: runtime.rows(record.tenant_id, table), _lease=lease,
        _markers=runtime.store, _jobs=runtime.store,
    )
    try:
        return Succeeded(dict(await job_type.handler(context)))
    except PermanentJobError as exc:
        log.warning("permanent failure %s: %s", exc.code.code, exc.message)
        return FailedPermanently(exc.code.code, exc.message)
    except JobCancelled:
        return CancelledByHandler()
    except RetryLater as exc:
        log.info("waiting until %s: %s", exc.at.isoformat(), exc.reason)
        return Deferred(exc.at, exc.reason)
    except LeaseLost:
        raise
    except Exception as exc:  # transient by definition: anything not declared permanent
        log.warning("attempt %s failed: %s", record.attempt, type(exc).__name__, exc_info=True)
        return FailedTransiently(type(exc).__name__)
