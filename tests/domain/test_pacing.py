"""Retry-After from the job type's typical duration and the job's state (shared/domain/pacing.py), as tables."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.hostconfig import parse_host_config
from jobs import REGISTRY
from shared.domain import pacing
from shared.domain.contract import JobStatus
from tests.domain.records import NOW, C, F, P, Q, R, X, record

S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("typical", "visible_in", "expected"),
    [
        (0.1, 0, 1),  # 0.5 pickup + 0.1: at least 1
        (0.5, 0, 1),  # 0.5 + 0.5 = 1.0
        (1.0, 0, 2),  # 1.5, rounded up
        (1.5, 0, 2),
        (10.0, 0, 11),
        (60.0, 0, 30),  # the cap
        (1.0, -120, 2),  # overdue in the queue (a backlog): still pickup + typical from now
        (1.0, 8, 10),  # a retry's backoff: 8 s until visible + 0.5 + 1
        (1.0, 600, 30),
    ],
)
def test_queued_is_pickup_plus_typical_after_the_message_is_visible(typical: float, visible_in: int,
                                                                    expected: int) -> None:
    job = record(Q, visible_at=NOW + visible_in * S)
    assert pacing.retry_after(job, typical, NOW) == expected


@pytest.mark.parametrize(
    ("typical", "elapsed", "percent", "expected"),
    [
        (10.0, 0.0, None, 10),  # just claimed: the typical time
        (10.0, 3.2, None, 7),  # 6.8 left, rounded up
        (10.0, 9.9, None, 1),
        (1.0, 0.4, None, 1),
        (60.0, 5.0, None, 30),  # capped
        (10.0, 4.0, 20, 16),  # progress: 4 s for 20 % -> 16 s for the other 80 %
        (10.0, 4.0, 80, 1),  # 1.0 s left
        (10.0, 30.0, 75, 10),  # overdue, but progress knows better: 30 * 25 / 75
        (10.0, 5.0, 100, 1),  # done, not yet recorded terminal
        (10.0, 2.0, 0, 8),  # 0 % says nothing: typical - elapsed
    ],
)
def test_running_is_what_is_left_of_typical_or_of_the_progress_rate(typical: float, elapsed: float,
                                                                    percent: int | None, expected: int) -> None:
    job = record(R, started_at=NOW - elapsed * S, progress_percent=percent)
    assert pacing.retry_after(job, typical, NOW) == expected


@pytest.mark.parametrize(
    ("typical", "elapsed", "expected"),
    [
        (10.0, 10.0, 3),  # just overdue: a quarter of typical (2.5, rounded up)
        (10.0, 20.0, 5),  # 10 s overdue: half of it
        (10.0, 40.0, 15),
        (10.0, 100.0, 30),  # thinning out up to the cap (a dead worker's lease has minutes to run)
        (1.0, 1.5, 1),
        (1.0, 31.0, 15),
    ],
)
def test_an_overdue_job_is_polled_less_and_less_often(typical: float, elapsed: float, expected: int) -> None:
    assert pacing.retry_after(record(R, started_at=NOW - elapsed * S), typical, NOW) == expected


@pytest.mark.parametrize("status", [C, F, P, X])
def test_terminal_jobs_get_no_retry_after(status: JobStatus) -> None:
    assert pacing.retry_after(record(status), 10.0, NOW) is None


def test_the_cap_bounds_it_and_is_at_least_one_second() -> None:
    assert pacing.retry_after(record(Q, visible_at=NOW), 60.0, NOW, cap_seconds=5) == 5
    assert pacing.retry_after(record(Q, visible_at=NOW), 60.0, NOW, cap_seconds=120) == 61
    assert pacing.retry_after(record(Q, visible_at=NOW), 60.0, NOW, cap_seconds=0) == 1


def test_a_running_record_without_a_start_counts_from_now() -> None:
    assert pacing.retry_after(record(R, started_at=None), 4.0, NOW) == 4


def test_a_longer_job_type_waits_longer_at_every_step() -> None:
    for elapsed in (0.0, 0.5, 2.0, 5.0, 20.0):
        short = pacing.expected_remaining(record(R, started_at=NOW - elapsed * S), 1.0, NOW)
        long = pacing.expected_remaining(record(R, started_at=NOW - elapsed * S), 30.0, NOW)
        assert long > short
    assert pacing.expected_remaining(record(Q, visible_at=NOW), 30.0, NOW) > pacing.expected_remaining(
        record(Q, visible_at=NOW), 1.0, NOW)


def test_pickup_is_host_jsons_max_polling_interval() -> None:
    host = parse_host_config(json.loads((Path(__file__).parents[2] / "host.json").read_text()))
    assert host.queues.max_polling_interval == pacing.PICKUP_SECONDS


def test_every_shipped_job_type_declares_a_typical_duration_within_the_cap() -> None:
    typical = {t.name: t.typical_seconds for t in REGISTRY}
    assert typical == {"doc-index": 1.5, "ai-analyze": 0.5, "email-process": 0.5}
    assert all(0 < seconds <= pacing.DEFAULT_CAP_SECONDS for seconds in typical.values())


@pytest.mark.parametrize("seconds", [0.0, -1.0, 86401.0])
def test_a_job_type_must_declare_a_positive_typical_duration(seconds: float) -> None:
    with pytest.raises(ValueError, match="typical_seconds"):
        replace(REGISTRY.get("doc-index"), typical_seconds=seconds)  # type: ignore[type-var]
