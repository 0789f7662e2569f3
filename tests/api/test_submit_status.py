from __future__ import annotations

import uuid

from tests.support import BOB_OID, OTHER_TENANT, Api


async def test_submit_returns_202_and_status_is_readable(api: Api) -> None:
    subject = uuid.uuid4()
    corr = str(uuid.uuid4())
    res = await api.call("POST", "/api/jobs", {"jobType": "doc-index", "subjectId": str(subject),
                                                "payload": {"rowVersion": 3, "action": "index"}},
                         headers={"x-correlation-id": corr})
    assert res.status == 202, res.body
    assert res.headers["location"] == res.body["statusUrl"] == f"/api/jobs/{res.body['jobId']}/status"
    assert res.headers["retry-after"] == "2"
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
