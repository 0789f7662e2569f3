"""JobsClient.wait: polls honouring Retry-After (capped), rides out throttling, stops at terminal."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import timedelta

import pytest

from client import JobsApiError, JobsClient, JobStatus, WaitTimeoutError
from client.auth import StaticTokenProvider
from client.polling import PollPolicy, wait_for_terminal
from shared.domain import pacing
from tests.client.fake_api import JOB_ID, FakeApi, status_body
from tests.domain.records import NOW, C, Q, R, record

STATUS = f"/api/jobs/{JOB_ID}/status"


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_for(api: FakeApi, fake: FakeTime, **policy: float) -> JobsClient:
    return JobsClient(api.url, StaticTokenProvider("t"), timeout=5, poll_policy=PollPolicy(**policy),  # type: ignore[arg-type]
                      sleep=fake.sleep, clock=fake.clock)


def test_wait_sleeps_what_retry_after_says_capped_and_returns_the_terminal_status(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body("Queued"), headers={"Retry-After": "1"})
    fake_api.add("GET", STATUS, 200, status_body("Running", percentComplete=40), headers={"Retry-After": "120"})
    fake_api.add("GET", STATUS, 200, status_body("Running", percentComplete=80))  # no Retry-After: the default
    fake_api.add("GET", STATUS, 200, status_body("Completed", result={"terms": 7}))
    fake = FakeTime()
    updates: list[JobStatus] = []

    final = client_for(fake_api, fake, max_interval=30, first_interval=1).wait(JOB_ID, on_update=updates.append)

    assert final.status == "Completed" and final.result == {"terms": 7}
    assert fake.sleeps == [1, 30, 1]  # Retry-After 1; 120 capped at 30; none -> the backoff's first 1
    assert [(u.status, u.percent_complete) for u in updates] == [
        ("Queued", None), ("Running", 40), ("Running", 80), ("Completed", None)]


def test_wait_honours_retry_after_in_real_time(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body("Running"), headers={"Retry-After": "1"})
    fake_api.add("GET", STATUS, 200, status_body("Running"), headers={"Retry-After": "1"})
    fake_api.add("GET", STATUS, 200, status_body("Completed"))
    client = JobsClient(fake_api.url, StaticTokenProvider("t"), timeout=5)

    assert client.wait(JOB_ID, timeout=30).status == "Completed"

    times = [r.at for r in fake_api.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2 and all(0.95 <= gap < 3 for gap in gaps), gaps


def test_wait_rides_out_throttling_and_storage_outages_with_their_retry_after(fake_api: FakeApi) -> None:
    fake_api.problem("GET", STATUS, 429, "QUOTA_EXCEEDED", headers={"Retry-After": "4"})
    fake_api.problem("GET", STATUS, 503, "STORAGE_UNAVAILABLE", headers={"Retry-After": "5"})
    fake_api.add("GET", STATUS, 200, status_body("Failed", outcome={"code": "SUBJECT_NOT_FOUND", "detail": "x"}))
    fake = FakeTime()
    updates: list[JobStatus] = []

    final = client_for(fake_api, fake).wait(JOB_ID, on_update=updates.append)

    assert final.status == "Failed" and fake.sleeps == [4, 5]
    assert [u.status for u in updates] == ["Failed"]  # errors are not updates


def test_wait_stops_at_once_on_a_permanent_error(fake_api: FakeApi) -> None:
    fake_api.problem("GET", STATUS, 404, "JOB_NOT_FOUND")
    fake = FakeTime()
    with pytest.raises(JobsApiError) as raised:
        client_for(fake_api, fake).wait(JOB_ID, timeout=60)
    assert raised.value.code == "JOB_NOT_FOUND" and fake.sleeps == []


def test_wait_gives_up_after_too_many_transient_errors_without_a_deadline(fake_api: FakeApi) -> None:
    fake_api.problem("GET", STATUS, 503, "STORAGE_UNAVAILABLE", headers={"Retry-After": "1"})
    fake = FakeTime()
    with pytest.raises(JobsApiError):
        client_for(fake_api, fake, max_transient_errors=3).wait(JOB_ID)
    assert len(fake.sleeps) == 3


def test_wait_times_out_with_the_last_status_and_never_sleeps_past_the_deadline(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body("Running", percentComplete=10), headers={"Retry-After": "4"})
    fake = FakeTime()
    with pytest.raises(WaitTimeoutError) as raised:
        client_for(fake_api, fake).wait(JOB_ID, timeout=10)
    assert fake.sleeps == [4, 4, 2]  # the last pause is cut to the deadline
    assert raised.value.last is not None and raised.value.last.percent_complete == 10
    assert "still Running after 10s" in str(raised.value)


def test_wait_uses_the_sleep_it_is_given(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body("Running"), headers={"Retry-After": "1"})
    fake_api.add("GET", STATUS, 200, status_body("Cancelled"))
    fake = FakeTime()
    slept: list[float] = []
    client = client_for(fake_api, fake)
    assert client.wait(JOB_ID, sleep=slept.append).status == "Cancelled"
    assert slept == [1] and fake.sleeps == []


def test_wait_after_a_submit_sleeps_the_202s_retry_after_before_its_first_poll(fake_api: FakeApi) -> None:
    fake_api.add("GET", STATUS, 200, status_body("Running"), headers={"Retry-After": "3"})
    fake_api.add("GET", STATUS, 200, status_body("Completed"))
    fake = FakeTime()
    assert client_for(fake_api, fake).wait(JOB_ID, first_delay=2).status == "Completed"
    assert fake.sleeps == [2, 3] and len(fake_api.requests) == 2  # no poll at once: the job was surely Queued
    fake_api.add("GET", STATUS, 200, status_body("Completed"))
    assert client_for(fake_api, FakeTime()).wait(JOB_ID, first_delay=120).status == "Completed"


def test_answers_without_retry_after_back_off_to_the_cap_and_a_retry_after_resets_it(fake_api: FakeApi) -> None:
    for _ in range(7):
        fake_api.add("GET", STATUS, 200, status_body("Running"))
    fake_api.add("GET", STATUS, 200, status_body("Running"), headers={"Retry-After": "5"})
    fake_api.add("GET", STATUS, 200, status_body("Running"))
    fake_api.add("GET", STATUS, 200, status_body("Completed"))
    fake = FakeTime()
    assert client_for(fake_api, fake).wait(JOB_ID).status == "Completed"
    assert fake.sleeps == [1, 2, 4, 8, 16, 30, 30, 5, 1]


# ---- the server's rule and the client's loop together: what a wait costs ---------------------

PICKED_UP_AFTER = 0.3  # seconds from the 202 to the claim (measured single-job p50: 283 ms at 0.5 s polling)


def simulated_wait(duration: float, typical: float, *, after_submit: bool = True) -> tuple[int, float]:
    """Wait for a job that runs ``duration`` s, of a type declaring ``typical`` s, with the server's
    Retry-After rule (shared/domain/pacing.py) and the client's loop on a fake clock. Returns the
    status requests made and the time the wait ended."""
    fake = FakeTime()
    submitted = record(Q, visible_at=NOW)
    started, done = PICKED_UP_AFTER, PICKED_UP_AFTER + duration
    polls: list[float] = []

    def fetch() -> JobStatus:
        polls.append(fake.now)
        now = NOW + timedelta(seconds=fake.now)
        if fake.now >= done:
            state = replace(submitted, status=C, terminal_at=now)
        elif fake.now >= started:
            state = replace(submitted, status=R, attempt=1, started_at=NOW + timedelta(seconds=started))
        else:
            state = submitted
        hint = pacing.retry_after(state, typical, now)
        return JobStatus.from_json(status_body(state.status.value), retryAfter=hint)

    first = pacing.retry_after(submitted, typical, NOW) if after_submit else None  # the 202's Retry-After
    final = wait_for_terminal(JOB_ID, fetch, sleep=fake.sleep, clock=fake.clock, first_delay=first)
    assert final.status == "Completed"
    return len(polls), fake.now


@pytest.mark.parametrize(
    ("duration", "requests", "ended_at", "requests_at_a_constant_2s"),
    [(1.0, 1, 2.0, 2), (10.0, 1, 11.0, 7), (60.0, 3, 61.0, 32)],
)
def test_a_wait_after_submit_costs_one_to_three_status_requests(duration: float, requests: int, ended_at: float,
                                                               requests_at_a_constant_2s: int) -> None:
    """The numbers of docs/client.md#what-waiting-costs (each request is one storage point read)."""
    assert simulated_wait(duration, duration) == (requests, ended_at)
    assert simulated_wait(duration, duration, after_submit=False)[0] == requests + 1  # `jobsctl wait`: polls at once
    done_at = PICKED_UP_AFTER + duration
    assert math.ceil(done_at / 2) + 1 == requests_at_a_constant_2s  # before: at once, then every 2 s until done


def test_a_job_that_overruns_its_type_is_polled_less_and_less_often() -> None:
    requests, ended = simulated_wait(10.0, 1.0)  # a 1 s type that took 10 s
    # Polls at 2, 3, 4, 6, 9 and 13 s: each pause half the time the job is overdue (it ended at 10.3 s).
    assert (requests, ended) == (6, 13.0)


def test_each_poll_of_a_wait_long_polls_within_the_http_timeout_and_the_deadline(fake_api: FakeApi) -> None:
    held = {"Retry-After": "10", "Preference-Applied": "wait=5"}
    fake_api.add("GET", STATUS, 200, status_body("Running"), headers=held)
    fake_api.add("GET", STATUS, 200, status_body("Completed"), headers={"Preference-Applied": "wait=3"})
    fake = FakeTime()
    client = JobsClient(fake_api.url, StaticTokenProvider("t"), timeout=30, sleep=fake.sleep, clock=fake.clock)
    final = client.wait(JOB_ID, timeout=13)
    assert final.status == "Completed"
    asked = [seen.query.get("waitSeconds") for seen in fake_api.seen("GET", STATUS)]
    assert asked == [["5"], ["3"]]  # 5 s (the long poll), then only what is left of the 13 s deadline
    assert fake.sleeps == [10]  # a held answer is still paced by Retry-After
    assert JobsClient(fake_api.url, StaticTokenProvider("t"), timeout=8).long_poll_seconds == 3  # inside the timeout
