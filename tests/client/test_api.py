"""JobsClient against a scripted local server: what it sends, how it parses, how errors map."""

from __future__ import annotations

import uuid

import pytest

from client import Accepted, JobsApiError, JobsClient, JobsConnectionError, JobStatus
from client.auth import StaticTokenProvider
from devhost.azurite import free_port
from tests.client.fake_api import JOB_ID, SUBJECT_ID, FakeApi, accepted_body, status_body


def make_client(api: FakeApi) -> JobsClient:
    return JobsClient(api.url, StaticTokenProvider("tkn"), timeout=5)


def test_submit_posts_the_job_with_bearer_token_and_correlation_id(fake_api: FakeApi) -> None:
    fake_api.add("POST", "/api/jobs", 202, accepted_body(),
                 headers={"Location": f"/api/jobs/{JOB_ID}/status", "Retry-After": "2"})
    correlation = uuid.uuid4()
    accepted = make_client(fake_api).submit("doc-index", SUBJECT_ID, {"rowVersion": 1}, correlation_id=correlation)

    assert isinstance(accepted, Accepted)
    assert (accepted.job_id, accepted.status, accepted.replayed, accepted.retry_after) == (JOB_ID, "Queued", False, 2)
    assert accepted.location == f"/api/jobs/{JOB_ID}/status"
    assert accepted.raw == accepted_body()
    [seen] = fake_api.seen("POST", "/api/jobs")
    assert seen.headers["authorization"] == "Bearer tkn"
    assert seen.headers["x-correlation-id"] == str(correlation)
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {"jobType": "doc-index", "subjectId": SUBJECT_ID, "payload": {"rowVersion": 1}}


def test_a_replayed_submission_is_marked(fake_api: FakeApi) -> None:
    fake_api.add("POST", "/api/jobs", 202, accepted_body("Running"), headers={"Idempotent-Replayed": "true"})
    accepted = make_client(fake_api).submit("doc-index", SUBJECT_ID, {})
    assert accepted.replayed and accepted.status == "Running"


def test_every_request_gets_a_fresh_correlation_id_unless_given(fake_api: FakeApi) -> None:
    fake_api.add("GET", f"/api/jobs/{JOB_ID}/status", 200, status_body())
    client = make_client(fake_api)
    client.status(JOB_ID)
    client.status(JOB_ID)
    first, second = (uuid.UUID(r.headers["x-correlation-id"]) for r in fake_api.requests)
    assert first != second


def test_enqueue_analysis_posts_document_and_type(fake_api: FakeApi) -> None:
    fake_api.add("POST", "/api/analysis/enqueue", 202, accepted_body())
    make_client(fake_api).enqueue_analysis(SUBJECT_ID, "summary")
    assert fake_api.requests[0].json() == {"documentId": SUBJECT_ID, "type": "summary"}


def test_status_parses_tolerantly_and_keeps_the_raw_body(fake_api: FakeApi) -> None:
    body = status_body("Failed", outcome={"type": "https://errors/x", "title": "t", "code": "SUBJECT_NOT_FOUND",
                                          "detail": "no such document", "somethingNew": 1},
                       completedAt="2025-01-02T03:04:07.000Z", futureField={"x": 1},
                       history=[{"version": 1, "from": None, "to": "Queued", "attempt": 0,
                                 "at": "2025-01-02T03:04:05.678Z", "reason": "Submitted", "extra": True}])
    fake_api.add("GET", f"/api/jobs/{JOB_ID}/status", 200, body)
    status = make_client(fake_api).status(JOB_ID, history=True)

    assert isinstance(status, JobStatus) and status.is_terminal
    assert status.outcome is not None and status.outcome.code == "SUBJECT_NOT_FOUND"
    assert status.outcome.text == "no such document"
    assert status.history is not None and status.history[0].to_status == "Queued"
    assert status.completed_at is not None and status.completed_at.year == 2025
    assert status.raw == body and status.retry_after is None
    assert fake_api.requests[0].query == {"history": ["true"]}


def test_status_reads_retry_after_while_not_terminal(fake_api: FakeApi) -> None:
    fake_api.add("GET", f"/api/jobs/{JOB_ID}/status", 200, {"jobId": JOB_ID, "status": "Queued"},
                 headers={"Retry-After": "3"})
    status = make_client(fake_api).status(JOB_ID)
    assert (status.status, status.retry_after, status.job_type, status.cancel_requested) == ("Queued", 3, None, False)


def test_problem_json_maps_to_jobs_api_error(fake_api: FakeApi) -> None:
    fake_api.problem("POST", "/api/jobs", 400, "PAYLOAD_INVALID", "bad payload",
                     errors=[{"field": "rowVersion", "message": "Field required"}])
    with pytest.raises(JobsApiError) as raised:
        make_client(fake_api).submit("doc-index", SUBJECT_ID, {})
    error = raised.value
    assert (error.status, error.code, error.detail) == (400, "PAYLOAD_INVALID", "bad payload")
    assert error.correlation_id == "11111111-2222-4333-8444-555555555555"
    assert error.errors == [{"field": "rowVersion", "message": "Field required"}]
    assert str(error) == "PAYLOAD_INVALID: bad payload (correlation id 11111111-2222-4333-8444-555555555555)"
    assert not error.is_transient


def test_throttling_carries_retry_after_and_is_transient(fake_api: FakeApi) -> None:
    fake_api.problem("POST", "/api/jobs", 429, "QUOTA_EXCEEDED", headers={"Retry-After": "7"})
    with pytest.raises(JobsApiError) as raised:
        make_client(fake_api).submit("doc-index", SUBJECT_ID, {})
    assert (raised.value.code, raised.value.retry_after, raised.value.is_transient) == ("QUOTA_EXCEEDED", 7, True)


def test_an_error_that_is_not_problem_json_gets_an_http_code(fake_api: FakeApi) -> None:
    fake_api.add("GET", f"/api/jobs/{JOB_ID}/status", 502, raw=b"<html>Bad Gateway</html>",
                 headers={"Content-Type": "text/html"})
    with pytest.raises(JobsApiError) as raised:
        make_client(fake_api).status(JOB_ID)
    assert (raised.value.status, raised.value.code) == (502, "HTTP_502")
    assert "Bad Gateway" in raised.value.detail
    assert raised.value.correlation_id  # the one the client sent, echoed


def test_an_unexpected_success_body_is_an_invalid_response(fake_api: FakeApi) -> None:
    fake_api.add("GET", f"/api/jobs/{JOB_ID}/status", 200, ["not", "an", "object"])
    with pytest.raises(JobsApiError) as raised:
        make_client(fake_api).status(JOB_ID)
    assert raised.value.code == "INVALID_RESPONSE"


def test_no_server_is_a_connection_error_with_the_correlation_id() -> None:
    client = JobsClient(f"http://127.0.0.1:{free_port()}", StaticTokenProvider("t"), timeout=2)
    with pytest.raises(JobsConnectionError) as raised:
        client.status(JOB_ID, correlation_id="0b5c6d7e-1111-4222-8333-944455556666")
    assert raised.value.correlation_id == "0b5c6d7e-1111-4222-8333-944455556666"


def test_job_ids_are_escaped_in_paths(fake_api: FakeApi) -> None:
    fake_api.problem("GET", "/api/jobs/a%2Fb/status", 404, "JOB_NOT_FOUND")
    with pytest.raises(JobsApiError) as raised:
        make_client(fake_api).status("a/b")
    assert raised.value.code == "JOB_NOT_FOUND"


def test_cancel_returns_the_status_and_retry_an_accepted(fake_api: FakeApi) -> None:
    fake_api.add("POST", f"/api/jobs/{JOB_ID}/cancel", 202, status_body("Running", cancelRequested=True),
                 headers={"Retry-After": "2"})
    fake_api.add("POST", f"/api/jobs/{JOB_ID}/retry", 202, accepted_body())
    client = make_client(fake_api)
    cancelled = client.cancel(JOB_ID)
    assert cancelled.status == "Running" and cancelled.cancel_requested
    assert client.retry(JOB_ID).status == "Queued"
    assert [r.body for r in fake_api.requests] == [b"", b""]


def test_list_page_sends_filters_and_list_follows_continuation_tokens(fake_api: FakeApi) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    fake_api.add("GET", "/api/jobs", 200, {"items": [status_body(jobId=ids[0]), status_body(jobId=ids[1])],
                                            "continuationToken": "page 2"})
    fake_api.add("GET", "/api/jobs", 200, {"items": [], "continuationToken": "page 3"})  # a page may be empty
    fake_api.add("GET", "/api/jobs", 200, {"items": [status_body(jobId=ids[2])]})
    client = make_client(fake_api)

    found = list(client.list(status="Completed", job_type="doc-index", subject_id=SUBJECT_ID, page_size=2))

    assert [job.job_id for job in found] == ids
    queries = [r.query for r in fake_api.requests]
    assert queries[0] == {"status": ["Completed"], "jobType": ["doc-index"], "subjectId": [SUBJECT_ID],
                          "pageSize": ["2"]}
    assert queries[1]["continuationToken"] == ["page 2"] and queries[2]["continuationToken"] == ["page 3"]


def test_list_page_returns_one_page(fake_api: FakeApi) -> None:
    fake_api.add("GET", "/api/jobs", 200, {"items": [status_body()], "continuationToken": "next"})
    page = make_client(fake_api).list_page()
    assert len(page.items) == 1 and page.continuation_token == "next"
    assert fake_api.requests[0].query == {}


def test_health_and_openapi_send_no_token(fake_api: FakeApi) -> None:
    fake_api.add("GET", "/api/health", 200, {"status": "ok"})
    fake_api.add("GET", "/api/openapi.json", 200, {"openapi": "3.1.0"})
    client = JobsClient(fake_api.url, lambda: pytest.fail("no token needed"))
    assert client.health() == {"status": "ok"} and client.openapi()["openapi"] == "3.1.0"
    assert all("authorization" not in r.headers for r in fake_api.requests)


def test_the_client_refuses_plain_http_to_another_host() -> None:
    import pytest

    from client.api import JobsClient
    from client.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        JobsClient("http://jobs.example.com", lambda: "token")
    JobsClient("https://jobs.example.com", lambda: "token")
    JobsClient("http://127.0.0.1:7071", lambda: "token")
