"""Scheduled jobs: notBefore / delaySeconds on submit, through function_app's HTTP functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from shared.domain.contract import JobStatus
from shared.engine.worker import handle_job_message
from tests.support import Api, deliver_once, run_until_settled


def _body(tag: str, **schedule: object) -> dict[str, object]:
    return {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {"tag": tag}, **schedule}


async def test_a_delayed_job_is_queued_listed_and_invisible_until_due(api: Api) -> None:
    before = datetime.now(UTC)
    res = await api.call("POST", "/api/jobs", _body("later", delaySeconds=120))
    assert res.status == 202 and res.body["status"] == "Queued", res.body
    job = res.body["jobId"]
    status = await api.call("GET", f"/api/jobs/{job}/status")
    due = datetime.fromisoformat(status.body["notBefore"])
    assert before + timedelta(seconds=119) <= due <= datetime.now(UTC) + timedelta(seconds=121)
    assert not await api.runtime.queues.jobs.peek_messages()  # its message is invisible until then
    assert await deliver_once(api.runtime) == []
    listed = await api.call("GET", "/api/jobs?status=Queued&pageSize=100")
    assert job in [item["jobId"] for item in listed.body["items"]]
    same = {**_body("later", delaySeconds=5), "subjectId": status.body["subjectId"]}
    again = await api.call("POST", "/api/jobs", same)
    assert again.status == 202 and again.body["jobId"] == job  # the same key is the same job, whatever the time
    assert (await api.call("GET", f"/api/jobs/{job}/status")).body["notBefore"] == status.body["notBefore"]


async def test_a_scheduled_job_can_be_cancelled_while_it_waits(api: Api) -> None:
    at = (datetime.now(UTC) + timedelta(hours=3)).isoformat()  # RFC 3339 with an offset
    res = await api.call("POST", "/api/jobs", _body("cancel-me", notBefore=at))
    job = res.body["jobId"]
    cancelled = await api.call("POST", f"/api/jobs/{job}/cancel")
    assert cancelled.status == 200 and cancelled.body["status"] == "Cancelled"


async def test_a_copy_that_arrives_early_does_not_run_the_job(api: Api) -> None:
    res = await api.call("POST", "/api/jobs", _body("early", delaySeconds=600))
    record = await api.runtime.store.get(uuid.UUID(res.body["jobId"]))
    assert record is not None
    await handle_job_message(api.runtime, record.next_contract().to_json(), 1)  # a duplicate, delivered now
    still = await api.runtime.store.get(record.job_id)
    assert still is not None and (still.status, still.attempt) == (JobStatus.QUEUED, 0)


async def test_a_time_in_the_past_runs_now(api: Api) -> None:
    res = await api.call("POST", "/api/jobs", _body("past", notBefore="2020-01-01T00:00:00Z"))
    record = await run_until_settled(api.runtime, uuid.UUID(res.body["jobId"]))
    assert record.status is JobStatus.COMPLETED


async def test_bad_schedules_are_refused_and_write_nothing(api: Api) -> None:
    far = (datetime.now(UTC) + timedelta(days=7, minutes=1)).isoformat()
    cases = {
        "notBefore over 7 days": (_body("far", notBefore=far), 400, "SCHEDULE_TOO_FAR"),
        "delaySeconds over 7 days": (_body("far2", delaySeconds=7 * 86400 + 60), 400, "SCHEDULE_TOO_FAR"),
        "both": (_body("both", notBefore=far, delaySeconds=5), 400, "REQUEST_INVALID"),
        "no offset": (_body("naive", notBefore="2026-12-24T18:00:00"), 400, "REQUEST_INVALID"),
        "negative": (_body("neg", delaySeconds=-1), 400, "REQUEST_INVALID"),
    }
    for case, (body, status, code) in cases.items():
        res = await api.call("POST", "/api/jobs", body)
        assert (res.status, res.code) == (status, code), (case, res.body)
    listed = await api.call("GET", "/api/jobs?pageSize=100")
    assert listed.body["items"] == []  # nothing was written for any of them
