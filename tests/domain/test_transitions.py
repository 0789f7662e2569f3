"""The state machine and the record's typed transitions, table by table (pure: no Azurite)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.domain.contract import JobStatus
from shared.domain.errors import ErrorCode
from shared.domain.record import (
    ALLOWED_TRANSITIONS,
    HISTORY_LIMIT,
    HISTORY_MESSAGE_LIMIT,
    RESULT_SUMMARY_LIMIT,
    TRANSITIONS,
    IllegalTransition,
    JobRecord,
    Transition,
)
from tests.domain.records import NOW, C, F, P, Q, R, X, record

UNTIL = NOW + timedelta(minutes=5)

# Each typed transition: (name, method, the statuses it may start from, its target).
METHODS: list[tuple[str, Callable[[JobRecord], Transition], set[JobStatus], JobStatus]] = [
    ("claimed", lambda r: r.claimed("w", UNTIL, NOW), {Q, R}, R),
    ("queued_for_retry", lambda r: r.queued_for_retry(2.5, "OSError", NOW), {R}, Q),
    ("deferred", lambda r: r.deferred(UNTIL, "locked", NOW), {R}, Q),
    ("lease_expired", lambda r: r.lease_expired(NOW), {R}, Q),
    ("resent", lambda r: r.resent(NOW), {Q}, Q),
    ("redriven", lambda r: r.redriven(NOW, None), {F, P}, Q),
    ("completed", lambda r: r.completed({"ok": True}, NOW), {R}, C),
    ("failed", lambda r: r.failed("SUBJECT_INVALID", "bad", NOW), {R}, F),
    ("cancelled", lambda r: r.cancelled(NOW), {Q, R}, X),
    ("poisoned", lambda r: r.poisoned(ErrorCode.MAX_ATTEMPTS_EXCEEDED, "gone", NOW), {Q, R}, P),
]


def test_the_table_is_exactly_what_the_methods_can_do() -> None:
    assert {name: (frozenset(sources), target) for name, _, sources, target in METHODS} == TRANSITIONS
    reachable = {(source, target) for _, _, sources, target in METHODS for source in sources}
    assert reachable == set(ALLOWED_TRANSITIONS)
    assert all(hasattr(JobRecord, name) for name in TRANSITIONS)


@pytest.mark.parametrize(("name", "method", "sources", "target"), METHODS, ids=[m[0] for m in METHODS])
@pytest.mark.parametrize("source", list(JobStatus), ids=[s.value for s in JobStatus])
def test_each_transition_from_each_status(name: str, method: Callable[[JobRecord], Transition],
                                          sources: set[JobStatus], target: JobStatus, source: JobStatus) -> None:
    before = record(source)
    if source not in sources:
        with pytest.raises(IllegalTransition):
            method(before)
        return
    moved = method(before)
    assert moved.before is before and moved.after.status is target
    assert moved.after.version == before.version + 1 and moved.after.updated_at == NOW
    entry = moved.entry
    assert (entry.version, entry.source, entry.target, entry.at) == (moved.after.version, source, target, NOW)
    assert entry.attempt == moved.after.attempt and entry.reason
    if target.is_terminal:
        assert moved.after.terminal_at == NOW and moved.after.lease_owner is None
        assert moved.after.lease_expires_at is None and not moved.after.outcome_pending
    assert before.status is source  # records are values: the old one is untouched


def test_claim_is_the_next_attempt_under_a_lease() -> None:
    claimed = record(Q).claimed("w", UNTIL, NOW).after
    assert (claimed.attempt, claimed.lease_owner, claimed.lease_expires_at, claimed.started_at) == (1, "w", UNTIL, NOW)
    assert claimed.next_contract().attempt == 2 and claimed.running_contract().attempt == 1


def test_a_retry_records_its_delay_and_error_and_drops_the_lease() -> None:
    retry = record(R).queued_for_retry(2.5, "OSError", NOW)
    assert retry.after.visible_at == NOW + timedelta(seconds=2.5) and retry.after.lease_owner is None
    assert (retry.after.last_error_code, retry.after.last_error_message) == ("TRANSIENT_ERROR", "OSError")
    assert retry.entry.message == "retry in 2.5s after OSError"


def test_a_redrive_is_a_new_run_with_nothing_of_the_old_outcome() -> None:
    poisoned = record(P, run=1, attempt=3, outcome_pending=False, result={"x": 1}, last_error_code="E")
    run2 = poisoned.redriven(NOW, "00-trace").after
    assert (run2.run, run2.attempt, run2.result, run2.outcome_code, run2.terminal_at) == (2, 0, None, None, None)
    assert (run2.redriven_at, run2.visible_at, run2.trace_parent, run2.last_error_code) == (NOW, NOW, "00-trace", None)
    assert run2.next_contract().attempt == 1


def test_a_large_result_summary_is_replaced_by_a_note() -> None:
    done = record(R).completed({"blob": "x" * RESULT_SUMMARY_LIMIT}, NOW).after
    assert done.result == {"summaryOmitted": True, "reason": f"summary larger than {RESULT_SUMMARY_LIMIT} bytes"}


def test_poisoned_names_the_last_error() -> None:
    poisoned = record(R, last_error_code="LEASE_EXPIRED").poisoned(ErrorCode.MAX_ATTEMPTS_EXCEEDED, "why", NOW)
    assert poisoned.after.outcome_message == "why; last error: LEASE_EXPIRED"
    assert poisoned.after.outcome_code == "MAX_ATTEMPTS_EXCEEDED" and poisoned.entry.reason == "MAX_ATTEMPTS_EXCEEDED"


def test_amendments_keep_the_status_and_write_no_history() -> None:
    running = record(R)
    renewed = running.lease_renewed(UNTIL, NOW, 250, "m" * 300).after
    assert renewed.status is R and renewed.version == running.version
    assert (renewed.progress_percent, len(renewed.progress_message or "")) == (100, 200)  # clamped, cut
    assert running.with_cancel_requested(NOW).after.cancel_requested
    assert running.joined_by("t|o").after.submitters == ("t|o",)
    assert running.joined_by("t|o").after.joined_by("t|o").after.submitters == ("t|o",)  # once
    published = record(C, outcome_pending=True, run=2).outcome_published(2, C)
    assert published is not None and not published.after.outcome_pending
    assert record(C, outcome_pending=True, run=3).outcome_published(2, C) is None  # a later run's mark stays
    assert record(C, outcome_pending=False).outcome_published(1, C) is None


def test_the_history_travels_on_the_record_one_entry_per_transition() -> None:
    created = record(Q).created()
    claimed = created.after.claimed("me", NOW + timedelta(minutes=1), NOW)
    done = claimed.after.completed({}, NOW)
    assert [e.reason for e in done.after.history] == ["Submitted", "Claimed", "Completed"]
    assert done.after.history[-1] == done.entry and done.after.history_dropped == 0
    assert done.after.with_cancel_requested(NOW).after.history == done.after.history  # amendments add none


def test_the_history_is_bounded_keeping_the_first_entry_and_the_newest() -> None:
    current = record(Q).created().after
    for n in range(HISTORY_LIMIT + 7):  # each round: Queued -> Running -> Queued (a retry)
        current = current.claimed("me", NOW + timedelta(minutes=1), NOW + timedelta(seconds=n)).after
        current = replace(current, max_attempts=10_000)
        current = current.queued_for_retry(1.0, "Boom", NOW + timedelta(seconds=n)).after
    total = 1 + 2 * (HISTORY_LIMIT + 7)
    assert len(current.history) == HISTORY_LIMIT
    assert current.history[0].reason == "Submitted"  # how the job began stays
    assert current.history_dropped == total - HISTORY_LIMIT
    versions = [e.version for e in current.history[1:]]
    assert versions == list(range(current.version - HISTORY_LIMIT + 2, current.version + 1))  # the newest, in order


def test_history_messages_are_clipped_to_keep_the_entity_small() -> None:
    failed = record(R).failed("SUBJECT_INVALID", "x" * 2000, NOW)
    assert failed.entry.message is not None and len(failed.entry.message) == HISTORY_MESSAGE_LIMIT
    assert failed.after.outcome_message is not None and len(failed.after.outcome_message) > HISTORY_MESSAGE_LIMIT
