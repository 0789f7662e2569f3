"""What a hostile caller's first hour found: snake_case aliases, cache and sniffing headers, 401 hints."""

from __future__ import annotations

import uuid

from tests.support import Api


async def test_snake_case_aliases_are_refused_like_any_unknown_field(api: Api) -> None:
    subject = str(uuid.uuid4())
    cases = [
        ("/api/jobs", {"job_type": "doc-index", "subject_id": subject, "payload": {}}, "REQUEST_INVALID"),
        ("/api/jobs", {"jobType": "doc-index", "subjectId": subject, "payload": {"row_version": 1, "action": "index"}},
         "PAYLOAD_INVALID"),
        ("/api/analysis/enqueue", {"document_id": subject, "type": "summary"}, "REQUEST_INVALID"),
        ("/api/jobs", {"jobType": "probe", "subjectId": subject, "payload": {}, "delay_seconds": 5}, "REQUEST_INVALID"),
    ]
    for path, body, code in cases:
        res = await api.call("POST", path, body)
        assert (res.status, res.code) == (400, code), (body, res.body)
    assert (await api.call("GET", "/api/jobs?pageSize=100")).body["items"] == []  # none of them wrote anything


async def test_every_answer_says_nosniff_and_authenticated_ones_are_never_cached(api: Api) -> None:
    accepted = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                                    "payload": {"tag": "headers"}})
    refused = await api.call("POST", "/api/jobs", {"jobType": "nope", "subjectId": str(uuid.uuid4()), "payload": {}})
    missing = await api.call("GET", f"/api/jobs/{uuid.uuid4()}/status")
    anonymous = await api.call("GET", "/api/jobs", token=None)
    for res in (accepted, refused, missing, anonymous):
        assert res.headers["cache-control"] == "no-store", (res.status, res.headers)
        assert res.headers["x-content-type-options"] == "nosniff"
    health = await api.call("GET", "/api/health", token=None)
    assert health.headers["x-content-type-options"] == "nosniff"


async def test_a_401_without_credentials_names_the_scheme_and_no_error(api: Api) -> None:
    bare = await api.call("GET", "/api/jobs", token=None)
    assert bare.status == 401 and bare.headers["www-authenticate"] == "Bearer"  # RFC 6750 section 3.1
    bad = await api.call("GET", "/api/jobs", token="not.a.token")
    assert bad.status == 401 and bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'
