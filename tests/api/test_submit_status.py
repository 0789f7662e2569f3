from __future__ import annotations

import uuid
from datetime import timedelta

from shared.domain.contract import JobStatus
from tests.support import BOB_OID, OTHER_TENANT, Api, force


async def test_submit_returns_202_and_status_is_readable(api: Api) -> None:
    subject = uuid.uuid4()
    corr = str(uuid.uuid4())
    res = await api.call("POST", "/api/jobs", {"jobType": "doc-index", "subjectId": str(subject),
                                                "payload": {"rowVersion": 3, "action": "index"}},
                         headers={"x-correlation-id": corr})
    assert res.status == 202, res.body
    assert res.headers["location"] == res.body["statusUrl"] == f"/api/jobs/{res.body['jobId']}/status"
    assert res.headers["retry-after"] == "2"  # doc-index: 0.5 s pickup + its typical 1.5 s
    assert res.headers["x-correlation-id"] == corr
    assert res.body["status"] == "Queued"
    again = await api.call("POST", "/api/jobs", {"jobType": "doc-index", "subjectId": str(subject),
                                                  "payload": {"rowVersion": 3, "action": "index"}})
    assert again.status == 202 and again.body == res.body
    assert again.headers["idempotent-replayed"] == "true"
    reused = await api.call("POST", "/api/jobs", {"jobType": "doc-index", "subjectId": str(subject),
                                                   "payload": {"rowVersion": 3, "action": "remove"}})
    assert reused.status == 422 and reused.code == "IDEMPOTENCY_KEY_REUSED"
    status = await api.call("GET", res.body["statusUrl"])
    assert status.status == 200, status.body
    assert status.body["status"] == "Queued" and status.body["correlationId"] == corr
    assert status.headers["cache-control"] == "no-store"
    other = await api.call("GET", res.body["statusUrl"], token=api.token(oid=BOB_OID))
    assert other.status == 404 and other.code == "JOB_NOT_FOUND"
    foreign = await api.call("GET", res.body["statusUrl"], token=api.token(tenant=OTHER_TENANT))
    assert foreign.status == 404 and foreign.code == "JOB_NOT_FOUND"
    missing = await api.call("GET", res.body["statusUrl"], token=None)
    assert missing.status == 401 and missing.code == "AUTH_TOKEN_MISSING"


async def test_retry_after_comes_from_the_job_type_and_the_jobs_state(api: Api) -> None:
    long_type = api.runtime.registry.get("doc-index")
    short_type = api.runtime.registry.get("ai-analyze")
    assert long_type is not None and short_type is not None
    assert long_type.typical_seconds > short_type.typical_seconds  # 1.5 s and 0.5 s
    subject = str(uuid.uuid4())
    long = await api.call("POST", "/api/jobs", {"jobType": "doc-index", "subjectId": subject,
                                                 "payload": {"rowVersion": 1, "action": "index"}})
    short = await api.call("POST", "/api/analysis/enqueue", {"documentId": subject, "type": "summary"})
    assert (long.status, short.status) == (202, 202)
    assert int(long.headers["retry-after"]) > int(short.headers["retry-after"])
    assert (long.headers["retry-after"], short.headers["retry-after"]) == ("2", "1")  # pickup + typical, rounded up
    long_status = await api.call("GET", long.body["statusUrl"])
    short_status = await api.call("GET", short.body["statusUrl"])
    assert (long_status.headers["retry-after"], short_status.headers["retry-after"]) == ("2", "1")

    # Running at 50 % after 10 s: about 10 s to go, whatever the type's typical time says.
    record = await api.runtime.store.get(uuid.UUID(long.body["jobId"]))
    assert record is not None
    await force(api.runtime, record, status=JobStatus.RUNNING, attempt=1, progress_percent=50,
                started_at=api.runtime.clock() - timedelta(seconds=10))
    running = await api.call("GET", long.body["statusUrl"])
    assert running.body["status"] == "Running" and running.body["percentComplete"] == 50
    assert 11 <= int(running.headers["retry-after"]) <= 13  # 10 s and the moments since, rounded up
