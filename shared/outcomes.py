"""JobOutcome events: built from the terminal status record, sent to ``job-outcomes``.

The eventId is deterministic (job, run, outcome), so a re-sent event is recognisably the same
one; consumers dedupe by eventId. Delivery is at least once; who owes each event, and when it is
marked ``outcomePending``, is stated once, in shared/terminal.py.
"""

from __future__ import annotations

import logging

from shared.contract import JobOutcomeEvent, outcome_event_id
from shared.queues import JobQueues
from shared.status import JobRecord
from shared.status_store import ConcurrencyConflict, StatusStore
from shared.telemetry import job_logger
from shared.tracing import current_traceparent

logger = logging.getLogger("jobs.outcomes")


def outcome_event(record: JobRecord) -> JobOutcomeEvent:
    if not record.is_terminal or record.terminal_at is None:
        raise ValueError(f"job {record.job_id} is not terminal")
    return JobOutcomeEvent(
        event_id=outcome_event_id(record.job_id, record.run, record.status),
        job_id=record.job_id, job_type=record.job_type, subject_id=record.subject_id,
        tenant_id=record.tenant_id, correlation_id=record.correlation_id,
        idempotency_key=record.idempotency_key, attempt=record.attempt, run=record.run,
        outcome=record.status, code=record.outcome_code or record.status.value.upper(),
        message=record.outcome_message, occurred_at=record.terminal_at, trace_parent=current_traceparent(),
    )


async def emit_outcome(queues: JobQueues, record: JobRecord) -> None:
    event = outcome_event(record)
    await queues.send_outcome(event)
    job_logger(record).info(
        "outcome %s emitted", record.status.value,
        extra={"outcome": record.status.value, "outcomeCode": event.code, "eventId": str(event.event_id)},
    )


async def emit_and_clear(store: StatusStore, queues: JobQueues, record: JobRecord) -> JobRecord:
    """Send the outcome of a record marked outcomePending, then clear the mark."""
    await emit_outcome(queues, record)
    current = record
    for _ in range(3):
        if not current.outcome_pending:
            return current
        try:
            return await store.update(current, outcome_pending=False)
        except ConcurrencyConflict:
            fresh = await store.get(record.job_id)
            if fresh is None:
                return current
            current = fresh
    logger.warning("could not clear outcomePending for job %s; maintenance may re-send it", record.job_id)
    return current
