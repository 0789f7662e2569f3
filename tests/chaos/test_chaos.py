"""The chaos suite: its checker finds what it is meant to find, and a short seeded run is clean.

The short run is ``make chaos`` in small (2 hosts, 24 jobs, a 25 s fault window): host kills, an
Azurite restart, the fault proxy, duplicate deliveries, cancels and re-drives, then every count
of the history checker must be 0. ``make chaos`` runs the full-size one."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from chaos.checker import Checker, Findings, runs_of
from chaos.runner import Options, run
from chaos.workload import JobSpec, Plan
from shared.domain.contract import JobStatus
from shared.domain.record import HistoryEntry, JobRecord
from tests.domain.records import NOW, record

C, F, Q, R, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLED


def _with_history(base: JobRecord, *steps: tuple[JobStatus | None, JobStatus, str]) -> JobRecord:
    history = tuple(HistoryEntry(n + 1, source, target, 1, NOW + timedelta(seconds=n), reason)
                    for n, (source, target, reason) in enumerate(steps))
    return replace(base, history=history)


def _spec(**changes: object) -> JobSpec:
    spec = JobSpec("probe", "ai-analyze", uuid.uuid4(), {"analysisType": "full"}, ("Completed", None), 0.0,
                   job_id=str(uuid.UUID(int=1)), accepted=True)
    return replace(spec, **changes)  # type: ignore[arg-type]


def _checker() -> Checker:
    return Checker("", {}, Plan(seed=1, jobs=0, window=10))


def test_runs_split_at_redrives_and_a_second_terminal_state_in_one_run_is_a_duplicate_effect() -> None:
    twice = _with_history(record(C), (None, Q, "Submitted"), (Q, R, "Claimed"), (R, C, "Completed"),
                          (C, C, "Completed"))
    assert runs_of(twice) == {1: [C, C]}
    findings = Findings()
    _checker()._check_job(_spec(), twice, findings)
    assert findings.counts["duplicate_effects"] == 1 and findings.counts["missing_events"] == 1
    redriven = _with_history(record(C, run=2), (None, Q, "Submitted"), (Q, R, "Claimed"), (R, F, "SUBJECT_NOT_FOUND"),
                             (F, Q, "Redriven"), (Q, R, "Claimed"), (R, C, "Completed"))
    assert runs_of(redriven) == {1: [F], 2: [C]}


def test_events_missing_or_two_outcomes_for_one_run_are_counted() -> None:
    done = _with_history(record(C), (None, Q, "Submitted"), (Q, R, "Claimed"), (R, C, "Completed"))
    checker, findings = _checker(), Findings()
    checker.events[(str(done.job_id), 1)] |= {("e1", "Completed"), ("e2", "Failed")}
    checker._check_job(_spec(), done, findings)
    assert findings.counts == {"duplicate_effects": 1}
    findings = Findings()
    _checker()._check_job(_spec(), done, findings)
    assert findings.counts == {"missing_events": 1}


def test_expected_outcomes_given_the_input() -> None:
    wrong = Checker._wrong
    assert wrong(_spec(), record(C)) is None
    assert wrong(_spec(), record(F, outcome_code="SUBJECT_NOT_FOUND")) is not None
    missing = _spec(expected=("Failed", "SUBJECT_NOT_FOUND"))
    assert wrong(missing, record(F, outcome_code="SUBJECT_NOT_FOUND")) is None
    assert wrong(missing, record(F, outcome_code="INTERNAL_ERROR")) is not None
    cancelled = _spec(cancel_after=1.0, cancel_answer=202)
    assert wrong(cancelled, record(X)) is None and wrong(cancelled, record(C)) is None  # it may finish first
    assert wrong(replace(cancelled, cancel_answer=200), record(C)) is not None  # cancelled while Queued
    redrive = _spec(expected=("Failed", "SUBJECT_NOT_FOUND"), redrive=("JOBS_DOCUMENTS_CONTAINER", "x", b"x"))
    assert wrong(replace(redrive, redriven=True), record(C, run=2)) is None
    assert wrong(replace(redrive, redriven=True), record(F, outcome_code="SUBJECT_NOT_FOUND")) is not None
    assert wrong(replace(redrive, redriven=None), record(F, outcome_code="SUBJECT_NOT_FOUND")) is None
    assert wrong(replace(redrive, redriven=True), record(C, run=3)) is not None
    assert wrong(_spec(), record(C, run=2)) is not None  # never re-driven


def test_a_document_index_not_at_its_newest_version_or_with_stale_rows_is_found() -> None:
    checker = _checker()
    subject = uuid.uuid4()
    checker.plan.texts[subject] = "alpha beta beta"
    meta = {"RowKey": "~meta", "rowVersion": 3}

    def check(versions: list[int], rows: list[dict[str, object]]) -> Findings:
        findings = Findings()
        checker._check_document(subject, versions, rows, findings)
        return findings

    good = [meta, {"RowKey": "alpha", "count": 1, "rowVersion": 3}, {"RowKey": "beta", "count": 2, "rowVersion": 3}]
    assert check([1, 2, 3], good).clean
    assert check([1, 2, 3, 4], good).counts == {"wrong": 1}  # v4 completed, index at v3
    stale = [*good[:2], {"RowKey": "beta", "count": 2, "rowVersion": 2}]
    assert check([3], stale).counts == {"duplicate_effects": 1}
    unrecorded = [{"RowKey": "alpha", "count": 1, "rowVersion": 1}]
    assert check([], unrecorded).counts == {"wrong": 1}  # rows no completed version accounts for


@pytest.mark.timeout(170)
async def test_a_short_seeded_chaos_run_loses_nothing_and_finds_nothing_wrong() -> None:
    findings = await run(Options(seed=7, jobs=24, duration=25, hosts=2, settle=90))
    assert findings.jobs == 24 and findings.faults > 0, findings.line()
    assert findings.clean, (findings.line(), findings.problems)


def test_an_index_at_a_version_cancelled_after_it_ran_is_accepted_and_only_that() -> None:
    """A cancel that lands after an attempt applied the version, but before its host died with the
    Completed write unsent, ends the job Cancelled by the takeover: the version's rows stay (a cancel
    stops further attempts; it cannot undo one that ran). Seen once in `make chaos` with seed 2."""
    checker = _checker()
    subject = uuid.uuid4()
    checker.plan.texts[subject] = "alpha beta beta"
    rows = [{"RowKey": "~meta", "rowVersion": 1}, {"RowKey": "alpha", "count": 1, "rowVersion": 1},
            {"RowKey": "beta", "count": 2, "rowVersion": 1}]
    findings = Findings()
    checker._check_document(subject, [], rows, findings, interrupted={1})
    assert findings.clean
    never_ran = Findings()
    checker._check_document(subject, [], rows, never_ran, interrupted=set())
    assert never_ran.counts == {"wrong": 1}  # a version nothing completed or ran is still wrong
