"""GET /api/jobs/{jobId}/status?waitSeconds=N: answered when the job changes, or after N seconds."""

from __future__ import annotations

import asyncio
import uuid

from devhost.azurite import Azurite
from shared.engine.watch import WATCH_INTERVAL
from tests.support import Api, RequestLog, make_runtime, make_settings, run_until_settled


async def _queued(api: Api, tag: str) -> str:
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                               "payload": {"tag": tag}})
    return str(res.body["jobId"])


async def test_a_waiting_status_request_answers_with_the_change(api: Api) -> None:
    job = await _queued(api, "change")
    waiting = asyncio.create_task(api.call("GET", f"/api/jobs/{job}/status?waitSeconds=20"))
    await asyncio.sleep(1.0)
    assert not waiting.done()  # held: nothing changed yet
    await api.call("POST", f"/api/jobs/{job}/cancel")  # Queued -> Cancelled
    answer = await asyncio.wait_for(waiting, 5)  # well before the 20 s: it answered with the change
    assert answer.status == 200 and answer.body["status"] == "Cancelled"
    assert answer.headers["preference-applied"] == "wait=20"


async def test_a_wait_that_sees_no_change_costs_two_reads_a_second(api: Api, request_log: RequestLog) -> None:
    job = await _queued(api, "quiet")
    mark = request_log.mark()
    answer = await api.call("GET", f"/api/jobs/{job}/status?waitSeconds=2")
    assert answer.status == 200 and answer.body["status"] == "Queued" and answer.headers["preference-applied"]
    reads = [p for m, p in request_log.since(mark) if m == "GET" and job in p]
    assert len(reads) <= 1 + 2 / WATCH_INTERVAL  # the first read, then one per interval


async def test_a_terminal_job_is_answered_at_once(api: Api) -> None:
    job = await _queued(api, "done")
    await run_until_settled(api.runtime, uuid.UUID(job))
    answer = await asyncio.wait_for(api.call("GET", f"/api/jobs/{job}/status?waitSeconds=30"), 5)
    assert answer.body["status"] == "Completed" and "preference-applied" not in answer.headers


async def test_waiters_are_bounded_per_instance(azurite: Azurite, request_log: RequestLog, jwks_url: str,
                                               issuer: object) -> None:
    settings = make_settings(azurite.connection_string, JOBS_AUTH_JWKS_URI=jwks_url, JOBS_STATUS_MAX_WAITERS="1")
    runtime = await make_runtime(settings, request_log)
    try:
        api = Api(runtime, issuer)
        job = await _queued(api, "bounded")
        first = asyncio.create_task(api.call("GET", f"/api/jobs/{job}/status?waitSeconds=2"))
        await asyncio.sleep(0.3)
        second = await api.call("GET", f"/api/jobs/{job}/status?waitSeconds=2")  # the one slot is taken
        assert second.status == 200 and "preference-applied" not in second.headers
        assert "preference-applied" in (await first).headers
    finally:
        await runtime.close()


async def test_a_bad_wait_is_refused(api: Api) -> None:
    job = await _queued(api, "bad")
    for value in ("31", "-1", "abc", "%C2%B2", "1.5"):
        answer = await api.call("GET", f"/api/jobs/{job}/status?waitSeconds={value}")
        assert (answer.status, answer.code) == (400, "REQUEST_INVALID"), value
