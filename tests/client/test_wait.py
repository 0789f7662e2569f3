"""JobsClient.wait: polls honouring Retry-After (capped), rides out throttling, stops at terminal."""

from __future__ import annotations

import itertools

import pytest

from client import JobsApiError, JobsClient, JobStatus, WaitTimeoutError
from client.auth import StaticTokenProvider
from client.polling import PollPolicy
from tests.client.fake_api import JOB_ID, FakeApi, status_body

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

    final = client_for(fake_api, fake, max_interval=30, default_interval=2).wait(JOB_ID, on_update=updates.append)

    assert final.status == "Completed" and final.result == {"terms": 7}
    assert fake.sleeps == [1, 30, 2]  # Retry-After 1; 120 capped at 30; none -> the default 2
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
