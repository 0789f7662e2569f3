"""Job status (ADR-017): the record, the state machine and its typed transitions.

States: Queued -> Running -> (Completed | Failed | Poisoned | Cancelled); Running -> Queued
for a scheduled retry or an expired lease; Running -> Running when a worker takes over an
attempt whose lease expired (a new attempt); Queued -> Queued when maintenance re-sends the
message of a stranded job; Queued -> Cancelled | Poisoned; and the explicit re-drive
Failed | Poisoned -> Queued (a new run). Everything else is refused with IllegalTransition.

Every change of a record is a method here that returns a ``Transition`` (a status change with
its history entry) or an ``Amendment`` (the same status, other fields: a lease renewal, a cancel
request, a new submitter). Methods name every field they set, so ``mypy --strict`` checks them.
Nothing here writes: the engine's lifecycle commits what these methods return.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.domain.contract import (
    JobContract,
    JobOutcomeEvent,
    JobStatus,
    canonical_json,
    outcome_event_id,
    payload_fingerprint,
)
from shared.domain.errors import ErrorCode

Q, R = JobStatus.QUEUED, JobStatus.RUNNING
C, F, P, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.POISONED, JobStatus.CANCELLED

# The state machine: each transition method of JobRecord, the statuses it starts from, its target.
TRANSITIONS: dict[str, tuple[frozenset[JobStatus], JobStatus]] = {
    "claimed": (frozenset({Q, R}), R),  # Running -> Running: a takeover of an expired lease
    "queued_for_retry": (frozenset({R}), Q),
    "deferred": (frozenset({R}), Q),
    "lease_expired": (frozenset({R}), Q),
    "resent": (frozenset({Q}), Q),
    "redriven": (frozenset({F, P}), Q),
    "completed": (frozenset({R}), C),
    "failed": (frozenset({R}), F),
    "cancelled": (frozenset({Q, R}), X),
    "poisoned": (frozenset({Q, R}), P),
}
ALLOWED_TRANSITIONS: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    (source, target) for sources, target in TRANSITIONS.values() for source in sources
)

RESULT_SUMMARY_LIMIT = 4096  # bytes of JSON: the status record holds a summary, never large results
MESSAGE_LIMIT = 500  # characters of an outcome message
PROGRESS_MESSAGE_LIMIT = 200
# The history lives on the status entity (one property), so it is bounded: at most HISTORY_LIMIT
# entries of at most HISTORY_MESSAGE_LIMIT characters each (~16 K characters, under the Table
# service's 32 K-character string property). At the bound the first entry (how the job began)
# stays, the oldest after it are dropped, and ``history_dropped`` counts them.
HISTORY_LIMIT = 50
HISTORY_MESSAGE_LIMIT = 200


class IllegalTransition(Exception):  # named without an Error suffix: reads as the domain term
    def __init__(self, job_id: uuid.UUID, name: str, source: JobStatus, target: JobStatus):
        super().__init__(f"job {job_id}: {name} ({source.value} -> {target.value}) is not an allowed transition")
        self.name, self.source, self.target = name, source, target


@dataclass(frozen=True)
class HistoryEntry:
    """One transition of the job: what the status history shows."""

    version: int
    source: JobStatus | None
    target: JobStatus
    attempt: int
    at: datetime
    reason: str
    message: str | None = None


@dataclass(frozen=True)
class Transition:
    """A status change: the record before (its ETag guards the write), after, and the history entry."""

    before: JobRecord | None  # None: the job is being created
    after: JobRecord
    entry: HistoryEntry


@dataclass(frozen=True)
class Amendment:
    """A change that keeps the status (lease, progress, flags): no history entry, no follow-up."""

    before: JobRecord
    after: JobRecord


Change = Transition | Amendment


@dataclass(frozen=True)
class JobRecord:
    """The status entity of one job (PartitionKey = jobId). ``etag`` is the read's ETag."""

    job_id: uuid.UUID
    tenant_id: uuid.UUID
    job_type: str
    subject_id: uuid.UUID
    correlation_id: uuid.UUID
    idempotency_key: str
    max_attempts: int
    payload: dict[str, Any]
    payload_fingerprint: str
    created_at: datetime
    status: JobStatus
    updated_at: datetime
    visible_at: datetime
    attempt: int = 0  # the latest attempt that was claimed (0 before the first run)
    run: int = 1  # re-drive counter: each re-drive is a new run of the same job
    version: int = 1  # transition counter; numbers the history entries
    submitters: tuple[str, ...] = ()  # "tid|oid" of each principal that submitted it
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    started_at: datetime | None = None
    cancel_requested: bool = False
    progress_percent: int | None = None
    progress_message: str | None = None
    last_error_code: str | None = None
    last_error_message: str | None = None
    outcome_code: str | None = None
    outcome_message: str | None = None
    result: dict[str, Any] | None = None
    terminal_at: datetime | None = None
    outcome_pending: bool = False
    trace_parent: str | None = None  # W3C traceparent of the submit (or re-drive) request
    redriven_at: datetime | None = None  # when the current run began by re-drive (older poison copies are stale)
    deferred_since: datetime | None = None  # when this run first waited (RetryLater): bounds how long it may wait
    history: tuple[HistoryEntry, ...] = ()  # every transition of every run, oldest first (bounded: HISTORY_LIMIT)
    history_dropped: int = 0  # entries dropped at the bound (after the first)
    etag: str = field(default="", compare=False)

    @classmethod
    def from_contract(cls, contract: JobContract, now: datetime) -> JobRecord:
        """No orphans: the record a message implies when its entity is missing (Queued, before its attempt)."""
        return cls(
            job_id=contract.job_id, tenant_id=contract.tenant_id, job_type=contract.job_type,
            subject_id=contract.subject_id, correlation_id=contract.correlation_id,
            idempotency_key=contract.idempotency_key, max_attempts=contract.max_attempts, payload=contract.payload,
            payload_fingerprint=payload_fingerprint(contract.subject_id, contract.payload),
            created_at=contract.created_at, status=JobStatus.QUEUED, updated_at=now, visible_at=now,
            attempt=contract.attempt - 1,
        )

    # ---- reading ---------------------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def attempts_left(self) -> bool:
        return self.attempt < self.max_attempts

    def lease_is_live(self, now: datetime) -> bool:
        return self.lease_expires_at is not None and self.lease_expires_at > now

    def next_contract(self) -> JobContract:
        """The message that carries the job on: the attempt after the latest one claimed."""
        return self._contract(self.attempt + 1)

    def running_contract(self) -> JobContract:
        """The contract of the attempt being run (what the handler sees)."""
        return self._contract(max(1, self.attempt))

    def _contract(self, attempt: int) -> JobContract:
        return JobContract(
            job_id=self.job_id, job_type=self.job_type, subject_id=self.subject_id,
            correlation_id=self.correlation_id, idempotency_key=self.idempotency_key, attempt=attempt,
            max_attempts=self.max_attempts, payload=self.payload, created_at=self.created_at, tenant_id=self.tenant_id,
        )

    def outcome_event(self, trace_parent: str | None) -> JobOutcomeEvent:
        """The JobOutcome event of a terminal record; its id is deterministic per (job, run, outcome)."""
        if not self.is_terminal or self.terminal_at is None:
            raise ValueError(f"job {self.job_id} is not terminal")
        return JobOutcomeEvent(
            event_id=outcome_event_id(self.job_id, self.run, self.status), job_id=self.job_id,
            job_type=self.job_type, subject_id=self.subject_id, tenant_id=self.tenant_id,
            correlation_id=self.correlation_id, idempotency_key=self.idempotency_key, attempt=self.attempt,
            run=self.run, outcome=self.status, code=self.outcome_code or self.status.value.upper(),
            message=self.outcome_message, occurred_at=self.terminal_at, trace_parent=trace_parent,
        )

    # ---- transitions -----------------------------------------------------------------------

    def created(self, reason: str = "Submitted") -> Transition:
        """The first entry of a new record (submitted, or recreated from its message)."""
        entry = HistoryEntry(self.version, None, self.status, self.attempt, self.created_at, reason)
        return Transition(None, replace(self, history=(entry,), history_dropped=0), entry)

    def claimed(self, owner: str, until: datetime, now: datetime) -> Transition:
        """Queued (or Running with an expired lease) -> Running: the next attempt, under a lease."""
        return self._moved("claimed", "Claimed", now, replace(
            self, attempt=self.attempt + 1, lease_owner=owner, lease_expires_at=until, started_at=now,
            progress_percent=None, progress_message=None))

    def queued_for_retry(self, delay_seconds: float, error_name: str, now: datetime) -> Transition:
        """Running -> Queued after a transient failure; the next attempt's message is visible after the delay."""
        return self._moved("queued_for_retry", ErrorCode.TRANSIENT_ERROR.code, now, replace(
            self, last_error_code=ErrorCode.TRANSIENT_ERROR.code, last_error_message=error_name,
            lease_owner=None, lease_expires_at=None, visible_at=now + timedelta(seconds=delay_seconds)),
            f"retry in {delay_seconds:.1f}s after {error_name}")

    def deferred(self, until: datetime, why: str, now: datetime) -> Transition:
        """Running -> Queued until ``until``, the attempt given back: the handler waits for a known time."""
        return self._moved("deferred", "Deferred", now, replace(
            self, attempt=self.attempt - 1, lease_owner=None, lease_expires_at=None, visible_at=until,
            deferred_since=self.deferred_since or now), f"until {until.isoformat()}: {why}")

    def lease_expired(self, now: datetime, note: str | None = None) -> Transition:
        """Running -> Queued: the worker stopped renewing its lease (or gave it up as its host stopped);
        the next attempt runs now."""
        return self._moved("lease_expired", ErrorCode.LEASE_EXPIRED.code, now, replace(
            self, lease_owner=None, lease_expires_at=None, last_error_code=ErrorCode.LEASE_EXPIRED.code,
            visible_at=now), note or f"lease of attempt {self.attempt} expired")

    def resent(self, now: datetime) -> Transition:
        """Queued -> Queued: the job's message never arrived (a crash after the write); send it again."""
        return self._moved("resent", "Resent", now, replace(self, visible_at=now),
                           f"no message ran it since {self.visible_at.isoformat()}")

    def redriven(self, now: datetime, trace_parent: str | None) -> Transition:
        """Failed | Poisoned -> Queued as run + 1: attempts reset, outcome cleared, history kept."""
        return self._moved("redriven", "Redriven", now, replace(
            self, run=self.run + 1, attempt=0, outcome_code=None, outcome_message=None, result=None,
            terminal_at=None, outcome_pending=False, cancel_requested=False, progress_percent=None, deferred_since=None,
            progress_message=None, last_error_code=None, last_error_message=None, lease_owner=None,
            lease_expires_at=None, started_at=None, visible_at=now, redriven_at=now, trace_parent=trace_parent),
            f"run {self.run + 1}")

    def completed(self, summary: dict[str, Any], now: datetime) -> Transition:
        if len(canonical_json(summary).encode()) > RESULT_SUMMARY_LIMIT:
            summary = {"summaryOmitted": True, "reason": f"summary larger than {RESULT_SUMMARY_LIMIT} bytes"}
        return self._moved("completed", "Completed", now, replace(
            self, result=summary, outcome_code=ErrorCode.COMPLETED.code, outcome_message=None, progress_percent=100))

    def failed(self, code: str, message: str, now: datetime) -> Transition:
        """Running -> Failed: a permanent error; no retry."""
        text = message[:MESSAGE_LIMIT]
        return self._moved("failed", code, now, replace(self, outcome_code=code, outcome_message=text), text)

    def cancelled(self, now: datetime, reason: str = "CancelRequested", note: str | None = None) -> Transition:
        return self._moved("cancelled", reason, now, replace(
            self, outcome_code=ErrorCode.CANCELLED.code, outcome_message="cancelled on request"), note)

    def poisoned(self, code: ErrorCode, why: str, now: datetime, *, reason: str | None = None,
                 last_error_code: str | None = None, last_error_message: str | None = None) -> Transition:
        """Poisoned, naming the last error; ``last_error_*`` record what ended the last attempt."""
        error_code = last_error_code or self.last_error_code
        last = f"; last error: {error_code}" if error_code else ""
        text = f"{why}{last}"[:MESSAGE_LIMIT]
        return self._moved("poisoned", reason or code.code, now, replace(
            self, outcome_code=code.code, outcome_message=text, last_error_code=error_code,
            last_error_message=last_error_message or self.last_error_message), text)

    def _moved(self, name: str, reason: str, now: datetime, after: JobRecord,
               message: str | None = None) -> Transition:
        sources, target = TRANSITIONS[name]
        if self.status not in sources:
            raise IllegalTransition(self.job_id, name, self.status, target)
        after = replace(after, status=target, updated_at=now, version=self.version + 1)
        if target.is_terminal:
            after = replace(after, terminal_at=now, lease_owner=None, lease_expires_at=None, outcome_pending=False)
        entry = HistoryEntry(after.version, self.status, target, after.attempt, now, reason,
                             message and message[:HISTORY_MESSAGE_LIMIT])
        history, dropped = _appended(self.history, entry)
        return Transition(self, replace(after, history=history, history_dropped=self.history_dropped + dropped), entry)

    # ---- amendments (same status) ------------------------------------------------------------

    def joined_by(self, principal_key: str) -> Amendment:
        """A duplicate submission joins the job: its principal becomes a submitter (if it is not one)."""
        if principal_key in self.submitters:
            return Amendment(self, self)
        return Amendment(self, replace(self, submitters=(*self.submitters, principal_key)))

    def with_cancel_requested(self, now: datetime) -> Amendment:
        return Amendment(self, replace(self, cancel_requested=True, updated_at=now))

    def lease_renewed(self, until: datetime, now: datetime, percent: int | None = None,
                      message: str | None = None) -> Amendment:
        if percent is None:
            return Amendment(self, replace(self, lease_expires_at=until, updated_at=now))
        return Amendment(self, replace(
            self, lease_expires_at=until, updated_at=now, progress_percent=max(0, min(100, int(percent))),
            progress_message=(message or None) and message[:PROGRESS_MESSAGE_LIMIT]))

    def marked_outcome_pending(self, pending: bool) -> JobRecord:
        """Not a change of its own: the lifecycle marks a terminal write with the event it still owes
        (``rules.outcome_owed_later``); transitions leave the mark False until then."""
        return replace(self, outcome_pending=pending)

    def outcome_published(self, run: int, status: JobStatus) -> Amendment | None:
        """Clear the pending mark, but only of the outcome that was sent (not a later run's)."""
        if not self.outcome_pending or self.run != run or self.status is not status:
            return None
        return Amendment(self, replace(self, outcome_pending=False))


def _appended(history: tuple[HistoryEntry, ...], entry: HistoryEntry) -> tuple[tuple[HistoryEntry, ...], int]:
    """The history with ``entry`` added, bounded: the first entry stays, the oldest after it go."""
    if len(history) < HISTORY_LIMIT:
        return (*history, entry), 0
    keep = HISTORY_LIMIT - 2  # the first entry + the newest (HISTORY_LIMIT - 2) + the new one
    return (history[0], *history[len(history) - keep:], entry), len(history) - 1 - keep
