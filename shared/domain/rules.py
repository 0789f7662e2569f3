"""The engine's decisions, as pure functions of a record: table-tested without storage.

- ``decide_delivery``: what one delivery of a job message means for the job as it stands.
- ``what_next``: the one rule for "cancel requested? attempts left?", used after a delivery,
  after a failed attempt and after a lost lease.
- ``after_attempt`` / ``after_lost_lease``: the transition that ends an attempt.
- ``outcome_owed_later`` and ``follow_up``: who owes the JobOutcome event, and what must
  follow a committed transition. The engine's lifecycle (shared/engine/lifecycle.py) applies them,
  chosen by the caller's ``Origin``; no caller decides them on its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, auto
from typing import Any

from shared.domain.contract import JobContract, JobStatus
from shared.domain.errors import ErrorCode
from shared.domain.record import JobRecord, Transition


class Origin(Enum):
    """Who commits a change; it decides who owes the outcome event."""

    DELIVERY = auto()  # the worker, for a job message the host deletes only after the function returns
    POISON = auto()  # the poison-queue function
    SWEEP = auto()  # the maintenance timer
    REQUEST = auto()  # an API request: submit, cancel, re-drive


def outcome_owed_later(after: JobRecord, origin: Origin) -> bool:
    """Whether a terminal write marks its event ``outcomePending``.

    A delivery sends the event before the host deletes its message, so a failed send means
    redelivery and a re-send: the message is the outbox, and nothing is marked. Every other origin
    has no message standing behind the send, so the write marks it pending; the lifecycle sends and
    clears it, and maintenance re-sends what is still pending after the grace period. A delivery's
    Poisoned is pending too: its event travels through the poison queue to the poison function.
    """
    if not after.is_terminal:
        return False
    return origin is not Origin.DELIVERY or after.status is JobStatus.POISONED


class FollowUp(Enum):
    NOTHING = auto()
    SEND_NEXT = auto()  # the next attempt's message, visible at the record's visibleAt
    HAND_TO_POISON = auto()  # the contract to the poison queue; the poison function publishes
    PUBLISH = auto()  # the outcome event (and clear outcomePending when it was marked)


def follow_up(transition: Transition, origin: Origin) -> FollowUp:
    """What a committed transition owes the queues."""
    after = transition.after
    if transition.before is None:  # created: a submission sends its first message; a recreation has it in hand
        return FollowUp.SEND_NEXT if origin is Origin.REQUEST else FollowUp.NOTHING
    if after.status is JobStatus.QUEUED:
        return FollowUp.SEND_NEXT
    if after.status is JobStatus.POISONED and origin is Origin.DELIVERY:
        return FollowUp.HAND_TO_POISON
    if after.is_terminal:
        return FollowUp.PUBLISH
    return FollowUp.NOTHING


class Next(Enum):
    CANCEL = auto()  # someone asked to stop: do not run it (again)
    POISON = auto()  # no attempt left
    RUN = auto()


def what_next(record: JobRecord) -> Next:
    if record.cancel_requested:
        return Next.CANCEL
    if not record.attempts_left:
        return Next.POISON
    return Next.RUN


# A message may arrive this much before the job's visibleAt and still run it: the queue's delays are whole
# seconds rounded up, and hosts' clocks differ a little. Earlier copies (a duplicate of a scheduled job's
# message) are acknowledged without work.
EARLY_TOLERANCE = timedelta(seconds=5)


class Delivery(Enum):
    CLAIM = auto()
    TERMINAL = auto()  # already finished: re-send the outcome, acknowledge
    OWNED = auto()  # another worker holds a live lease: acknowledge
    STALE = auto()  # an older attempt's message: acknowledge
    EARLY = auto()  # a copy that came before the job is due (scheduled, backing off): acknowledge
    CANCEL = auto()  # cancel was requested before it ran
    EXHAUSTED = auto()  # no attempt left: poison


def decide_delivery(record: JobRecord, contract: JobContract, now: datetime) -> Delivery:
    if record.is_terminal:
        return Delivery.TERMINAL
    if record.status is JobStatus.RUNNING and record.lease_is_live(now):
        return Delivery.OWNED
    step = what_next(record)
    if step is Next.CANCEL:
        return Delivery.CANCEL
    if record.status is JobStatus.QUEUED:
        not_due = _queued_message_not_due(record, contract, now)
        if not_due is not None:
            return not_due
    return Delivery.EXHAUSTED if step is Next.POISON else Delivery.CLAIM


def _queued_message_not_due(record: JobRecord, contract: JobContract, now: datetime) -> Delivery | None:
    """A message for a Queued job that must not run it: an older attempt's, or one that came early
    (the job's own message, timed for visibleAt, is still on the queue)."""
    if contract.attempt <= record.attempt:
        return Delivery.STALE
    if record.visible_at > now + EARLY_TOLERANCE:
        return Delivery.EARLY
    return None


def delivery_transition(delivery: Delivery, record: JobRecord, now: datetime, *, owner: str,
                        lease_seconds: float) -> Transition | None:
    """The transition a delivery decision commits, or None when it only acknowledges (or re-sends)."""
    match delivery:
        case Delivery.CLAIM:
            return record.claimed(owner, now + timedelta(seconds=lease_seconds), now)
        case Delivery.CANCEL:
            return record.cancelled(now)
        case Delivery.EXHAUSTED:
            return record.poisoned(ErrorCode.MAX_ATTEMPTS_EXCEEDED,
                                   f"no attempt left after {record.attempt} of {record.max_attempts} attempts", now)
        case _:
            return None


def look_again_delay(record: JobRecord, now: datetime) -> float:
    """When a copy of a leased job's message should look again: just after the lease ends."""
    expires = record.lease_expires_at or now
    return max(1.0, (expires - now).total_seconds() + 1)


@dataclass(frozen=True)
class Succeeded:
    summary: dict[str, Any]


@dataclass(frozen=True)
class FailedPermanently:
    code: str
    message: str


@dataclass(frozen=True)
class CancelledByHandler:
    pass


@dataclass(frozen=True)
class FailedTransiently:
    error_name: str  # the exception's type name: the message never carries user data


@dataclass(frozen=True)
class Deferred:
    """The handler asked to run again at ``until`` (RetryLater): waiting, not failing."""

    until: datetime
    reason: str


AttemptOutcome = Succeeded | FailedPermanently | CancelledByHandler | FailedTransiently | Deferred


def after_attempt(record: JobRecord, outcome: AttemptOutcome, now: datetime, retry_delay: float,
                  defer_limit: timedelta) -> Transition:
    """The transition that ends a Running attempt, from what its handler did."""
    match outcome:
        case Succeeded(summary):
            return record.completed(summary, now)
        case FailedPermanently(code, message):
            return record.failed(code, message, now)
        case CancelledByHandler():
            return record.cancelled(now)
        case FailedTransiently(name):
            return _after_transient_failure(record, name, now, retry_delay)
        case Deferred():
            return _after_deferral(record, outcome, now, retry_delay, defer_limit)
    raise AssertionError(f"unhandled attempt outcome {outcome!r}")  # pragma: no cover - the match is exhaustive


def _after_transient_failure(record: JobRecord, error_name: str, now: datetime, retry_delay: float) -> Transition:
    match what_next(record):
        case Next.CANCEL:  # no point retrying work someone asked to stop
            return record.cancelled(now)
        case Next.POISON:
            return record.poisoned(
                ErrorCode.MAX_ATTEMPTS_EXCEEDED, f"{error_name} after {record.attempt} of {record.max_attempts} "
                "attempts", now, last_error_code=ErrorCode.TRANSIENT_ERROR.code, last_error_message=error_name)
        case Next.RUN:
            return record.queued_for_retry(retry_delay, error_name, now)
    raise AssertionError("unhandled next step")  # pragma: no cover - the match is exhaustive


def _after_deferral(record: JobRecord, deferral: Deferred, now: datetime, retry_delay: float,
                    defer_limit: timedelta) -> Transition:
    """Waiting gives the attempt back, until the run has waited ``defer_limit`` in all (from its first
    deferral); past that a deferral is a transient failure and spends the attempt, so a job that
    would wait forever still ends (Poisoned)."""
    if record.cancel_requested:
        return record.cancelled(now)
    deadline = (record.deferred_since or now) + defer_limit
    if now >= deadline:
        return _after_transient_failure(record, "RetryLaterPastWaitLimit", now, retry_delay)
    return record.deferred(max(now, min(deferral.until, deadline)), deferral.reason, now)


def after_lost_lease(record: JobRecord, now: datetime, note: str | None = None) -> Transition:
    """Maintenance takes over a Running job whose worker stopped renewing its lease (or a worker whose
    host is stopping gives it up at once: the same step, without waiting for the lease to run out)."""
    note = note or f"lease of attempt {record.attempt} expired"
    match what_next(record):
        case Next.CANCEL:
            return record.cancelled(now, note=note)
        case Next.POISON:
            return record.poisoned(
                ErrorCode.MAX_ATTEMPTS_EXCEEDED, f"{note}; it was the last of {record.max_attempts} attempts", now,
                reason=ErrorCode.LEASE_EXPIRED.code, last_error_code=ErrorCode.LEASE_EXPIRED.code)
        case Next.RUN:
            return record.lease_expired(now, note)


def retry_delay(base_seconds: float, max_seconds: float, attempt: int) -> float:
    """Exponential backoff with equal jitter: never shorter than half the un-jittered delay."""
    ceiling = min(max_seconds, base_seconds * (2.0 ** max(0, attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security
