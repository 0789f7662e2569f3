"""Cancel, re-drive, list and read, through function_app's HTTP functions: BOLA, races, paging."""

from __future__ import annotations

import asyncio
import uuid

from shared.domain.contract import JobStatus
from shared.engine.worker import handle_job_message
from tests.engine.helpers import events_for
from tests.support import (
    BOB_OID,
    EFFECTS,
    OTHER_TENANT,
    Api,
    RequestLog,
    force,
    make_runtime,
    make_settings,
    queued_jobs,
    run_until_settled,
)


async def _submit(api: Api, payload: dict[str, object] | None = None, token: str | None = "default",
                  job_type: str = "probe") -> str:
    res = await api.call("POST", "/api/jobs", {"jobType": job_type, "subjectId": str(uuid.uuid4()),
                                               "payload": payload or {"tag": uuid.uuid4().hex}}, token=token)
    assert res.status == 202, res.body
    return str(res.body["jobId"])


async def _take_message(api: Api) -> str:
    message = [m async for m in api.runtime.queues.jobs.receive_messages(max_messages=1)][0]
    await api.runtime.queues.jobs.delete_message(message)
    return str(message.content)


# ---- BOLA: A's job is invisible to everyone else, on every route ---------------------------

async def test_another_principal_cannot_read_cancel_retry_or_list_a_job(api: Api) -> None:
    job = await _submit(api, {"tag": "bola", "permanent": True})
    await run_until_settled(api.runtime, uuid.UUID(job))  # Failed: re-drivable, so retry would work for A
    outsiders = {
        "same tenant, other user": api.token(oid=BOB_OID),
        "other tenant, same oid": api.token(tenant=OTHER_TENANT),
        "app token without admin": api.token(oid=str(uuid.uuid4()), scopes=(), roles=("Jobs.Read", "Jobs.Submit")),
        "admin of another tenant": api.token(tenant=OTHER_TENANT, oid=BOB_OID, scopes=(), roles=("Jobs.Admin",)),
    }
    for who, token in outsiders.items():
        for method, path in (("GET", f"/api/jobs/{job}/status"), ("POST", f"/api/jobs/{job}/cancel"),
                             ("POST", f"/api/jobs/{job}/retry")):
            res = await api.call(method, path, token=token)
            assert res.status == 404 and res.code == "JOB_NOT_FOUND", (who, path, res.body)
        listed = await api.call("GET", "/api/jobs?pageSize=100", token=token)
        assert listed.status == 200 and job not in [i["jobId"] for i in listed.body["items"]], who
    unknown = await api.call("GET", f"/api/jobs/{uuid.uuid4()}/status")
    assert unknown.status == 404 and unknown.body["detail"] == (await api.call(
        "GET", f"/api/jobs/{job}/status", token=outsiders["same tenant, other user"])).body["detail"]
    record = await api.runtime.store.get(uuid.UUID(job))
    assert record is not None and record.status is JobStatus.FAILED and record.run == 1  # nothing changed


async def test_admin_of_the_tenant_sees_and_acts_on_any_job(api: Api) -> None:
    job = await _submit(api, {"tag": "admin"})
    admin = api.token(oid=BOB_OID, scopes=(), roles=("Jobs.Admin",))
    assert (await api.call("GET", f"/api/jobs/{job}/status", token=admin)).status == 200
    listed = await api.call("GET", "/api/jobs?pageSize=100", token=admin)
    assert job in [i["jobId"] for i in listed.body["items"]]
    assert (await api.call("POST", f"/api/jobs/{job}/cancel", token=admin)).status == 200


async def test_a_second_submitter_of_the_same_job_may_read_it(api: Api) -> None:
    body = {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {"tag": "shared"}}
    first = await api.call("POST", "/api/jobs", body)
    bob = api.token(oid=BOB_OID)
    second = await api.call("POST", "/api/jobs", body, token=bob)
    assert second.status == 202 and second.headers["idempotent-replayed"] == "true"
    assert (await api.call("GET", first.body["statusUrl"], token=bob)).status == 200
    assert first.body["jobId"] in [i["jobId"] for i in (await api.call("GET", "/api/jobs", token=bob)).body["items"]]


# ---- cancel ----------------------------------------------------------------------------

async def test_cancel_a_queued_job_cancels_it_at_once_with_its_event(api: Api) -> None:
    job = await _submit(api)
    res = await api.call("POST", f"/api/jobs/{job}/cancel")
    assert res.status == 200 and res.body["status"] == "Cancelled" and res.body["outcome"]["code"] == "CANCELLED"
    assert "retry-after" not in res.headers
    body = await _take_message(api)
    await handle_job_message(api.runtime, body, 1)  # the message still arrives: acknowledged, nothing runs
    assert EFFECTS[job] == 0
    events = await events_for(api.runtime, uuid.UUID(job))
    assert {e["outcome"] for e in events} == {"Cancelled"} and len({e["eventId"] for e in events}) == 1
    again = await api.call("POST", f"/api/jobs/{job}/cancel")
    assert again.status == 409 and again.code == "JOB_ALREADY_TERMINAL"


async def test_cancel_a_running_job_ends_it_cancelled_when_the_handler_checks(api: Api) -> None:
    job = await _submit(api, {"tag": "long", "sleep": 5})
    body = await _take_message(api)
    running = asyncio.create_task(handle_job_message(api.runtime, body, 1))
    for _ in range(50):
        record = await api.runtime.store.get(uuid.UUID(job))
        if record is not None and record.status is JobStatus.RUNNING:
            break
        await asyncio.sleep(0.05)
    res = await api.call("POST", f"/api/jobs/{job}/cancel")
    assert res.status == 202 and res.body["cancelRequested"] is True and res.headers["location"].endswith("/status")
    await asyncio.wait_for(running, 10)
    final = await api.call("GET", f"/api/jobs/{job}/status")
    assert final.body["status"] == "Cancelled" and EFFECTS[job] == 0
    assert [e["outcome"] for e in await events_for(api.runtime, uuid.UUID(job))] == ["Cancelled"]


async def test_cancel_racing_completion_ends_in_one_terminal_state_with_one_event(api: Api) -> None:
    for _ in range(8):
        job = await _submit(api, {"tag": uuid.uuid4().hex, "sleep": 0.1})
        body = await _take_message(api)
        results = await asyncio.gather(handle_job_message(api.runtime, body, 1),
                                       api.call("POST", f"/api/jobs/{job}/cancel"), return_exceptions=True)
        assert not isinstance(results[0], BaseException), results[0]
        cancel = results[1]
        assert not isinstance(cancel, BaseException) and cancel.status in (200, 202, 409), cancel
        record = await run_until_settled(api.runtime, uuid.UUID(job))
        assert record.status in (JobStatus.COMPLETED, JobStatus.CANCELLED)
        events = await events_for(api.runtime, uuid.UUID(job))
        assert {e["outcome"] for e in events} == {record.status.value}
        assert len({e["eventId"] for e in events}) == 1
        assert EFFECTS[job] == (1 if record.status is JobStatus.COMPLETED else 0)


# ---- re-drive -------------------------------------------------------------------------------

async def test_redrive_of_a_poisoned_job_runs_a_new_run_and_completes(api: Api) -> None:
    job = await _submit(api, {"tag": "redrive", "failTimes": 3})  # fails attempts 1-3: Poisoned
    poisoned = await run_until_settled(api.runtime, uuid.UUID(job), timeout=40)
    assert poisoned.status is JobStatus.POISONED
    not_now = await api.call("POST", f"/api/jobs/{job}/retry", token=api.token(scopes=("Jobs.Read",)))
    assert not_now.status == 403
    res = await api.call("POST", f"/api/jobs/{job}/retry")
    assert res.status == 202 and res.body["status"] == "Queued" and res.headers["location"] == res.body["statusUrl"]
    # The probe fails while attempt <= failTimes; the new run restarts attempts, so make it succeed now.
    record = await api.runtime.store.get(uuid.UUID(job))
    assert record is not None and record.run == 2 and record.attempt == 0
    await force(api.runtime, record, payload={**record.payload, "failTimes": 0})
    final = await run_until_settled(api.runtime, uuid.UUID(job))
    assert final.status is JobStatus.COMPLETED and final.run == 2 and final.attempt == 1
    events = await events_for(api.runtime, uuid.UUID(job))
    distinct = list({e["eventId"]: e["outcome"] for e in events}.values())  # consumers dedupe by eventId
    assert distinct == ["Poisoned", "Completed"]  # a new run's outcome is a new event
    history = await api.call("GET", f"/api/jobs/{job}/status?history=true")
    assert [h["to"] for h in history.body["history"]][-3:] == ["Queued", "Running", "Completed"]
    assert "Poisoned" in [h["to"] for h in history.body["history"]]  # the first run's story is kept
    again = await api.call("POST", f"/api/jobs/{job}/retry")
    assert again.status == 409 and again.code == "JOB_NOT_RETRYABLE"


# ---- list -------------------------------------------------------------------------------------

async def test_list_pages_newest_first_with_filters(api: Api) -> None:
    subject = uuid.uuid4()
    mine = []
    for n in range(7):
        body = {"jobType": "probe", "subjectId": str(subject if n % 2 else uuid.uuid4()),
                "payload": {"tag": f"list-{n}", "permanent": n == 3}}
        res = await api.call("POST", "/api/jobs", body)
        mine.append(res.body["jobId"])
        await asyncio.sleep(0.002)  # distinct millisecond timestamps: a defined newest-first order
    await _submit(api, {"tag": "bobs"}, token=api.token(oid=BOB_OID))  # not mine
    seen, token, pages = [], None, 0
    while True:
        query = "/api/jobs?pageSize=3" + (f"&continuationToken={token}" if token else "")
        res = await api.call("GET", query)
        assert res.status == 200 and len(res.body["items"]) <= 3 and res.headers["cache-control"] == "no-store"
        seen += [i["jobId"] for i in res.body["items"]]
        pages += 1
        token = res.body.get("continuationToken")
        if not token:
            break
    assert pages >= 3 and seen == list(reversed(mine))
    by_subject = await api.call("GET", f"/api/jobs?subjectId={subject}&pageSize=100")
    assert [i["jobId"] for i in by_subject.body["items"]] == [mine[5], mine[3], mine[1]]
    await run_until_settled(api.runtime, uuid.UUID(mine[3]))
    failed = await api.call("GET", "/api/jobs?status=Failed&jobType=probe&pageSize=100")
    assert [i["jobId"] for i in failed.body["items"]] == [mine[3]]
    assert (await api.call("GET", "/api/jobs?jobType=doc-index")).body["items"] == []
    clamped = await api.call("GET", "/api/jobs?pageSize=100000")
    assert clamped.status == 200 and len(clamped.body["items"]) <= api.runtime.settings.list_max_page_size


async def test_list_refuses_bad_queries_and_foreign_continuation_tokens(api: Api) -> None:
    for query in ("status=Done", "subjectId=nope", "pageSize=-1", "pageSize=abc", "continuationToken=%%%"):
        res = await api.call("GET", f"/api/jobs?{query}")
        assert res.status == 400 and res.code == "REQUEST_INVALID", query
    for _ in range(3):
        await _submit(api, token=api.token(oid=BOB_OID))
    bobs = await api.call("GET", "/api/jobs?pageSize=1", token=api.token(oid=BOB_OID))
    stolen = bobs.body["continuationToken"]
    res = await api.call("GET", f"/api/jobs?pageSize=1&continuationToken={stolen}")  # Alice replays Bob's token
    assert res.status == 400 and res.code == "REQUEST_INVALID"


# ---- status details, health, limits ----------------------------------------------------------

async def test_status_shows_progress_outcome_and_retry_after_only_while_not_terminal(api: Api) -> None:
    job = await _submit(api, {"tag": "status", "permanent": True})
    queued = await api.call("GET", f"/api/jobs/{job}/status")
    assert queued.headers["retry-after"] == "2" and "outcome" not in queued.body
    await run_until_settled(api.runtime, uuid.UUID(job))
    done = await api.call("GET", f"/api/jobs/{job}/status")
    assert "retry-after" not in done.headers and done.headers["cache-control"] == "no-store"
    outcome = done.body["outcome"]
    assert outcome["code"] == "SUBJECT_INVALID" and outcome["type"].endswith("/SUBJECT_INVALID") and outcome["title"]
    assert done.body["lastUpdatedAt"] >= done.body["createdAt"] and "history" not in done.body


async def test_health_is_anonymous_and_reveals_nothing(api: Api) -> None:
    res = await api.call("GET", "/api/health", token=None)
    assert res.status == 200 and res.body == {"status": "ok"}
    assert (await api.call("POST", "/api/health", token=None)).status == 405


async def test_wrong_method_media_type_and_malformed_bodies(api: Api) -> None:
    res = await api.call("DELETE", "/api/jobs")
    assert res.status == 405 and res.code == "METHOD_NOT_ALLOWED" and set(res.headers["allow"].split(", ")) == {
        "POST", "GET"}
    assert (await api.call("GET", f"/api/jobs/{uuid.uuid4()}/cancel")).status == 405
    res = await api.call("POST", "/api/jobs", raw=b"jobType=probe", headers={"content-type": "text/plain"})
    assert res.status == 415 and res.code == "UNSUPPORTED_MEDIA_TYPE"
    res = await api.call("POST", "/api/jobs", raw=b'{"jobType": ')
    assert res.status == 400 and res.code == "JSON_MALFORMED"
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": "x", "payload": []})
    assert res.status == 400 and {e["field"] for e in res.body["errors"]} == {"subjectId", "payload"}
    res = await api.call("POST", "/api/jobs", raw=b"[" * 100_000 + b"]" * 100_000)
    assert res.status == 413
    res = await api.call("POST", "/api/jobs", raw=b"[" * 5000 + b"]" * 5000)
    assert res.status == 400 and res.code in ("JSON_MALFORMED", "REQUEST_INVALID")
    assert all("Traceback" not in str(r.body) for r in (res,))


async def test_in_flight_quota_answers_429_with_retry_after(api: Api) -> None:
    runtime = api.runtime
    limited = await make_runtime(make_settings(runtime.settings.storage["AzureWebJobsStorage"],
                                               JOBS_MAX_INFLIGHT_PER_PRINCIPAL="2",
                                               JOBS_AUTH_JWKS_URI=runtime.settings.auth_jwks_uri or ""),
                                 RequestLog())
    capped = Api(limited, api.issuer)
    try:
        first = await _submit(capped)
        await _submit(capped)
        body = {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {"tag": "third"}}
        res = await capped.call("POST", "/api/jobs", body)
        assert res.status == 429 and res.code == "QUOTA_EXCEEDED" and int(res.headers["retry-after"]) > 0
        assert len(await queued_jobs(limited)) == 2
        await capped.call("POST", f"/api/jobs/{first}/cancel")  # one finishes: room again
        assert (await capped.call("POST", "/api/jobs", body)).status == 202
        other = await capped.call("POST", "/api/jobs", body, token=capped.token(oid=BOB_OID))
        assert other.status == 202  # the quota is per principal
    finally:
        await limited.close()
