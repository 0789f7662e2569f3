"""The terminal transitions, in one place, with the one rule for their outcome events.

``outcome_pending`` says who owes the JobOutcome event:
- ``via_message=True``: the worker, running for a queue message. It sends the event before the
  host deletes that message, so a failed send means redelivery and a re-send: the message is the
  outbox, and nothing is marked pending.
- otherwise (poison, maintenance, the cancel API): no message stands behind the send, so the
  transition marks it pending, the caller sends and clears it, and maintenance re-sends what is
  still pending after the grace period. The worker's exhausted path is pending too: it hands the
  event to the poison function through the poison queue.
"""

from __future__ import annotations

from typing import Any

from shared.contract import JobStatus, canonical_json
from shared.errors import ErrorCode
from shared.status import RESULT_SUMMARY_LIMIT, JobRecord, Transition

MESSAGE_LIMIT = 500


def completed(summary: dict[str, Any]) -> Transition:
    if len(canonical_json(summary).encode()) > RESULT_SUMMARY_LIMIT:
        summary = {"summaryOmitted": True, "reason": f"summary larger than {RESULT_SUMMARY_LIMIT} bytes"}
    return Transition(JobStatus.COMPLETED, "Completed", {
        "result": summary, "outcome_code": ErrorCode.COMPLETED.code, "outcome_message": None,
        "progress_percent": 100, "outcome_pending": False,
    })


def failed(code: str, message: str) -> Transition:
    return Transition(JobStatus.FAILED, code, {
        "outcome_code": code, "outcome_message": message[:MESSAGE_LIMIT], "outcome_pending": False,
    }, message[:MESSAGE_LIMIT])


def cancelled(*, via_message: bool, reason: str = "CancelRequested", note: str | None = None) -> Transition:
    return Transition(JobStatus.CANCELLED, reason, {
        "outcome_code": ErrorCode.CANCELLED.code, "outcome_message": "cancelled on request",
        "outcome_pending": not via_message,
    }, note)


def poisoned(record: JobRecord, code: ErrorCode, why: str, *, reason: str | None = None,
             extra: dict[str, Any] | None = None) -> Transition:
    """Poisoned with the last error named; always pending (sent by the poison path or its caller)."""
    last = f"; last error: {record.last_error_code}" if record.last_error_code else ""
    message = f"{why}{last}"[:MESSAGE_LIMIT]
    return Transition(JobStatus.POISONED, reason or code.code, {
        "outcome_code": code.code, "outcome_message": message, "outcome_pending": True, **(extra or {}),
    }, message)
