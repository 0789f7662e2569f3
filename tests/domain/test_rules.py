"""The engine's decisions as tables (pure: no Azurite): delivery, after an attempt, after a lost
lease, who owes the outcome event and what follows a committed transition."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.domain.contract import JobStatus
from shared.domain.errors import ErrorCode
from shared.domain.record import JobRecord
from shared.domain.rules import (
    AttemptOutcome,
    CancelledByHandler,
    Deferred,
    Delivery,
    FailedPermanently,
    FailedTransiently,
    FollowUp,
    Next,
    Origin,
    Succeeded,
    after_attempt,
    after_lost_lease,
    decide_delivery,
    delivery_transition,
    follow_up,
    look_again_delay,
    outcome_owed_later,
    retry_delay,
    what_next,
)
from tests.domain.records import NOW, C, F, P, Q, R, X, record

EXPIRED = NOW - timedelta(seconds=1)
LIMIT = timedelta(hours=1)  # JOBS_DEFER_LIMIT_SECONDS

# (record, the attempt its message carries, the decision)
DELIVERIES: list[tuple[str, JobRecord, int, Delivery]] = [
    ("queued, first attempt", record(Q), 1, Delivery.CLAIM),
    ("queued retry, its message", record(Q, attempt=1), 2, Delivery.CLAIM),
    ("queued retry, an older attempt's message", record(Q, attempt=1), 1, Delivery.STALE),
    ("running, live lease", record(R), 1, Delivery.OWNED),
    ("running, expired lease: take over", record(R, lease_expires_at=EXPIRED), 1, Delivery.CLAIM),
    ("running, expired lease, last attempt", record(R, attempt=3, lease_expires_at=EXPIRED), 3, Delivery.EXHAUSTED),
    ("queued, cancel requested", record(Q, cancel_requested=True), 1, Delivery.CANCEL),
    ("queued stale message, cancel requested", record(Q, attempt=1, cancel_requested=True), 1, Delivery.CANCEL),
    ("queued, no attempt left", record(Q, attempt=3), 4, Delivery.EXHAUSTED),
    ("queued, scheduled later: a copy came early", record(Q, visible_at=NOW + timedelta(minutes=5)), 1, Delivery.EARLY),
    ("queued, due within the tolerance", record(Q, visible_at=NOW + timedelta(seconds=4)), 1, Delivery.CLAIM),
    *[(f"{s.value}: acknowledge, re-send its outcome", record(s), 1, Delivery.TERMINAL) for s in (C, F, P, X)],
]


@pytest.mark.parametrize(("case", "job", "attempt", "expected"), DELIVERIES, ids=[d[0] for d in DELIVERIES])
def test_delivery_decision(case: str, job: JobRecord, attempt: int, expected: Delivery) -> None:
    contract = replace(job, attempt=attempt - 1).next_contract()
    assert decide_delivery(job, contract, NOW) is expected
    transition = delivery_transition(expected, job, NOW, owner="w", lease_seconds=60)
    targets = {Delivery.CLAIM: R, Delivery.CANCEL: X, Delivery.EXHAUSTED: P}
    assert (transition.after.status if transition else None) == targets.get(expected)


@pytest.mark.parametrize(("job", "expected"), [
    (record(R), Next.RUN), (record(R, attempt=3), Next.POISON), (record(R, cancel_requested=True), Next.CANCEL),
    (record(R, attempt=3, cancel_requested=True), Next.CANCEL),
])
def test_what_next(job: JobRecord, expected: Next) -> None:
    assert what_next(job) is expected


# (what the handler did, the attempt, cancel requested?, the target)
AFTER_ATTEMPT: list[tuple[AttemptOutcome, int, bool, JobStatus]] = [
    (Succeeded({"n": 1}), 1, False, C),
    (Succeeded({"n": 1}), 1, True, C),  # it finished first: the cancel is moot
    (FailedPermanently("SUBJECT_INVALID", "bad"), 1, False, F),
    (CancelledByHandler(), 1, True, X),
    (FailedTransiently("OSError"), 1, False, Q),
    (FailedTransiently("OSError"), 3, False, P),
    (FailedTransiently("OSError"), 1, True, X),
]


@pytest.mark.parametrize(("outcome", "attempt", "cancel", "target"), AFTER_ATTEMPT)
def test_after_an_attempt(outcome: AttemptOutcome, attempt: int, cancel: bool, target: JobStatus) -> None:
    transition = after_attempt(record(R, attempt=attempt, cancel_requested=cancel), outcome, NOW, 4.0, LIMIT)
    assert transition.after.status is target
    if target is Q:
        assert transition.after.visible_at == NOW + timedelta(seconds=4.0)
    if target is P:
        assert transition.after.outcome_code == "MAX_ATTEMPTS_EXCEEDED"
        assert transition.after.last_error_code == "TRANSIENT_ERROR"


def test_a_deferral_waits_until_the_time_asked_for_and_gives_the_attempt_back() -> None:
    until = NOW + timedelta(seconds=30)
    transition = after_attempt(record(R, attempt=3), Deferred(until, "locked"), NOW, 4.0, LIMIT)
    after = transition.after
    assert (after.status, after.attempt, after.visible_at, after.deferred_since) == (Q, 2, until, NOW)
    assert transition.entry.reason == "Deferred"
    assert after.next_contract().attempt == 3  # the same attempt runs again: none was spent (even the last)
    assert decide_delivery(after, after.next_contract(), until) is Delivery.CLAIM


def test_deferrals_are_bounded_by_the_wait_limit_of_the_run() -> None:
    waited = NOW - LIMIT + timedelta(seconds=10)  # this run first waited almost an hour ago
    near = after_attempt(record(R, attempt=1, deferred_since=waited), Deferred(NOW + timedelta(minutes=5), "x"),
                         NOW, 4.0, LIMIT)
    assert near.after.status is Q and near.after.visible_at == waited + LIMIT  # clipped to the deadline
    assert near.after.deferred_since == waited  # the first wait still counts
    past = record(R, attempt=1, deferred_since=NOW - LIMIT)
    spent = after_attempt(past, Deferred(NOW + timedelta(seconds=5), "x"), NOW, 4.0, LIMIT)
    assert (spent.after.status, spent.after.attempt, spent.entry.reason) == (Q, 1, "TRANSIENT_ERROR")
    last = after_attempt(replace(past, attempt=3), Deferred(NOW, "x"), NOW, 4.0, LIMIT)
    assert last.after.status is P and last.after.last_error_message == "RetryLaterPastWaitLimit"


def test_a_deferral_of_a_job_asked_to_stop_cancels_it() -> None:
    transition = after_attempt(record(R, cancel_requested=True), Deferred(NOW, "x"), NOW, 4.0, LIMIT)
    assert transition.after.status is X


def test_a_redrive_starts_the_wait_limit_afresh() -> None:
    failed = replace(record(F, deferred_since=NOW - LIMIT), terminal_at=NOW)
    assert failed.redriven(NOW, None).after.deferred_since is None


@pytest.mark.parametrize(("attempt", "cancel", "target", "reason"), [
    (1, False, Q, "LEASE_EXPIRED"), (3, False, P, "LEASE_EXPIRED"), (1, True, X, "CancelRequested")])
def test_after_a_lost_lease(attempt: int, cancel: bool, target: JobStatus, reason: str) -> None:
    transition = after_lost_lease(record(R, attempt=attempt, cancel_requested=cancel, lease_expires_at=EXPIRED), NOW)
    assert (transition.after.status, transition.entry.reason) == (target, reason)


@pytest.mark.parametrize("origin", list(Origin), ids=[o.name for o in Origin])
@pytest.mark.parametrize("target", [C, F, X, P], ids=lambda s: s.value)
def test_who_owes_the_outcome_event(origin: Origin, target: JobStatus) -> None:
    """A delivery's message is the outbox (nothing pending), except its Poisoned, which travels
    through the poison queue; every other origin marks the event pending and publishes it."""
    owed_later = outcome_owed_later(record(target), origin)
    assert owed_later is (origin is not Origin.DELIVERY or target is P)
    assert not outcome_owed_later(record(Q), origin) and not outcome_owed_later(record(R), origin)


FOLLOW_UPS: list[tuple[str, JobRecord, Origin, FollowUp]] = [
    ("submitted", record(Q), Origin.REQUEST, FollowUp.SEND_NEXT),
    ("recreated from its message", record(Q), Origin.DELIVERY, FollowUp.NOTHING),
    ("recreated by the poison function", record(Q), Origin.POISON, FollowUp.NOTHING),
]


@pytest.mark.parametrize(("case", "job", "origin", "expected"), FOLLOW_UPS, ids=[f[0] for f in FOLLOW_UPS])
def test_what_follows_a_creation(case: str, job: JobRecord, origin: Origin, expected: FollowUp) -> None:
    assert follow_up(job.created(), origin) is expected


@pytest.mark.parametrize("origin", list(Origin), ids=[o.name for o in Origin])
def test_what_follows_each_transition(origin: Origin) -> None:
    running = record(R)
    cases = {
        "claimed": (record(Q).claimed("w", NOW, NOW), FollowUp.NOTHING),
        "retry": (running.queued_for_retry(1, "E", NOW), FollowUp.SEND_NEXT),
        "lease expired": (running.lease_expired(NOW), FollowUp.SEND_NEXT),
        "resent": (record(Q).resent(NOW), FollowUp.SEND_NEXT),
        "redriven": (record(F).redriven(NOW, None), FollowUp.SEND_NEXT),
        "completed": (running.completed({}, NOW), FollowUp.PUBLISH),
        "failed": (running.failed("E", "m", NOW), FollowUp.PUBLISH),
        "cancelled": (running.cancelled(NOW), FollowUp.PUBLISH),
        "poisoned": (running.poisoned(ErrorCode.MAX_ATTEMPTS_EXCEEDED, "w", NOW),
                     FollowUp.HAND_TO_POISON if origin is Origin.DELIVERY else FollowUp.PUBLISH),
    }
    for name, (transition, expected) in cases.items():
        assert follow_up(transition, origin) is expected, name


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10])
def test_retry_delay_is_exponential_with_equal_jitter(attempt: int) -> None:
    ceiling = min(600.0, 5.0 * 2 ** (attempt - 1))
    for _ in range(50):
        assert ceiling / 2 <= retry_delay(5.0, 600.0, attempt) <= ceiling


@pytest.mark.parametrize(("lease_left", "expected"), [(30.0, 31.0), (0.2, 1.2), (-5.0, 1.0), (None, 1.0)])
def test_a_copy_looks_again_just_after_the_lease(lease_left: float | None, expected: float) -> None:
    until = NOW + timedelta(seconds=lease_left) if lease_left is not None else None
    assert look_again_delay(record(R, lease_expires_at=until), NOW) == expected
