"""POST /api/jobs/batch: one answer per item, each accepted, replayed or refused; cheaper per job."""

from __future__ import annotations

import uuid

from devhost.azurite import Azurite
from shared.domain.contract import JobStatus
from tests.support import Api, RequestLog, make_runtime, make_settings, run_until_settled


def _job(tag: str, subject: str | None = None) -> dict[str, object]:
    return {"jobType": "probe", "subjectId": subject or str(uuid.uuid4()), "payload": {"tag": tag}}


async def test_each_item_gets_its_own_answer_and_bad_items_write_nothing(api: Api) -> None:
    existing = await api.call("POST", "/api/jobs", _job("old", subject := str(uuid.uuid4())))
    items = [
        _job("a"), _job("old", subject),  # new; a replay of the job submitted above
        {"jobType": "nope", "subjectId": str(uuid.uuid4()), "payload": {}},  # unknown type
        {"jobType": "probe", "subjectId": "not-a-guid", "payload": {}},  # schema
        "not an object",
        _job("b", twin := str(uuid.uuid4())), _job("b", twin),  # the same job twice in one batch
    ]
    res = await api.call("POST", "/api/jobs/batch", {"jobs": items})
    assert res.status == 207, res.body
    answers = res.body["items"]
    assert [a["index"] for a in answers] == list(range(len(items)))
    assert [a["status"] for a in answers] == [202, 202, 400, 400, 400, 202, 202]
    assert [a.get("replayed") for a in answers] == [False, True, None, None, None, False, True]
    assert answers[1]["jobId"] == existing.body["jobId"] and answers[5]["jobId"] == answers[6]["jobId"]
    assert answers[2]["problem"]["code"] == "UNKNOWN_JOB_TYPE" and answers[3]["problem"]["code"] == "REQUEST_INVALID"
    assert (res.body["accepted"], res.body["replayed"], res.body["refused"]) == (2, 2, 3)
    listed = await api.call("GET", "/api/jobs?pageSize=100")
    assert len(listed.body["items"]) == 3  # the old job and the two new ones: nothing for the refused items
    for answer in (answers[0], answers[5]):
        record = await run_until_settled(api.runtime, uuid.UUID(answer["jobId"]))
        assert record.status is JobStatus.COMPLETED


async def test_a_batch_costs_about_half_the_calls_per_job(api: Api, request_log: RequestLog) -> None:
    n = 40
    mark = request_log.mark()
    res = await api.call("POST", "/api/jobs/batch", {"jobs": [_job(f"cost{i}") for i in range(n)]})
    assert res.body["accepted"] == n
    calls = request_log.since(mark)
    assert len(calls) == 1 + n + n + 2, calls  # quota query, inserts, sends, two index transactions (33 jobs each)
    assert len(calls) / n < 4 * 0.6  # single submissions cost 4 each


async def test_a_batch_is_held_to_the_quota_in_its_order(azurite: Azurite, request_log: RequestLog,
                                                         jwks_url: str, issuer: object) -> None:
    settings = make_settings(azurite.connection_string, JOBS_AUTH_JWKS_URI=jwks_url,
                             JOBS_MAX_INFLIGHT_PER_PRINCIPAL="5")
    runtime = await make_runtime(settings, request_log)
    try:
        api = Api(runtime, issuer)
        await api.call("POST", "/api/jobs", _job("first"))
        res = await api.call("POST", "/api/jobs/batch", {"jobs": [_job(f"q{i}") for i in range(6)]})
        assert [a["status"] for a in res.body["items"]] == [202, 202, 202, 202, 429, 429]
        assert res.body["items"][4]["problem"]["code"] == "QUOTA_EXCEEDED"
        listed = await api.call("GET", "/api/jobs?pageSize=100")
        assert len(listed.body["items"]) == 5  # the refused ones were deleted again
        assert len(await runtime.queues.jobs.peek_messages(max_messages=32)) == 5  # and never sent
    finally:
        await runtime.close()


async def test_a_batch_outside_its_bounds_is_refused_whole(api: Api) -> None:
    for jobs in ([], [_job(f"x{i}") for i in range(101)]):
        res = await api.call("POST", "/api/jobs/batch", {"jobs": jobs})
        assert (res.status, res.code) == (400, "REQUEST_INVALID")
