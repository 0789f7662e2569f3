"""End to end over HTTP: the real app hosted by ``python -m devhost`` in its own process, a token
from ``python -m devhost token``, a document in Azurite, a job through to Completed and its event."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from devhost.azurite import PROJECT_ROOT, Azurite
from tests.devhost_process import devhost_process
from tests.support import TENANT


@pytest.fixture(scope="module")
def devhost(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with devhost_process(azurite, Path(tmp_path_factory.mktemp("devhost")), "e") as env:
        yield env


def _http(method: str, url: str, token: str | None, body: Any = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, dict(error.headers), json.loads(raw or b"null")
        except ValueError:
            return error.code, dict(error.headers), raw.decode(errors="replace")


def _token(env: dict[str, str], *scopes: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "devhost", "token", "--scopes", *scopes], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, check=True, timeout=60,
    )
    return out.stdout.strip()


def test_doc_index_job_over_http_reaches_completed_with_one_completed_event(devhost: dict[str, str]) -> None:
    base, storage = devhost["BASE_URL"], devhost["AzureWebJobsStorage"]
    token = _token(devhost, "Jobs.Submit", "Jobs.Read")
    subject = uuid.uuid4()
    blobs = BlobServiceClient.from_connection_string(storage)
    container = blobs.get_container_client(devhost["JOBS_DOCUMENTS_CONTAINER"])
    if not container.exists():
        container.create_container()
    container.upload_blob(f"{TENANT}/{subject}", b"Queues deliver at least once. Handlers must be idempotent.")

    status, headers, body = _http("POST", f"{base}/api/jobs", token, {
        "jobType": "doc-index", "subjectId": str(subject), "payload": {"rowVersion": 1, "action": "index"}})
    assert status == 202, body
    assert headers["Location"] == body["statusUrl"] and "x-correlation-id" in {k.lower() for k in headers}

    deadline = time.monotonic() + 30
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, headers, state = _http("GET", f"{base}{body['statusUrl']}", token)
        assert status == 200, state
        if state["status"] in ("Completed", "Failed", "Poisoned", "Cancelled"):
            break
        assert headers["Retry-After"]
        time.sleep(0.5)
    assert state["status"] == "Completed", state
    assert state["result"]["terms"] >= 7 and "Retry-After" not in headers

    outcomes = QueueClient.from_connection_string(storage, devhost["JOBS_OUTCOMES_QUEUE"])
    events = [json.loads(base64.b64decode(m.content))["data"] for m in outcomes.peek_messages(max_messages=32)]
    mine = [e for e in events if e["jobId"] == body["jobId"]]
    assert [e["outcome"] for e in mine] == ["Completed"]
    assert mine[0]["correlationId"] == state["correlationId"]


def test_every_route_refuses_a_request_without_a_token(devhost: dict[str, str]) -> None:
    base = devhost["BASE_URL"]
    for method, path in (("POST", "/api/jobs"), ("POST", "/api/analysis/enqueue"),
                         ("GET", f"/api/jobs/{uuid.uuid4()}/status")):
        status, _, body = _http(method, f"{base}{path}", None, {} if method == "POST" else None)
        assert status == 401 and body["code"] == "AUTH_TOKEN_MISSING", (path, body)
    status, _, _ = _http("DELETE", f"{base}/api/jobs", None)
    assert status == 405


def test_devhost_stops_within_5_seconds_and_closes_the_apps_storage_clients(
        azurite: Azurite, tmp_path: Path) -> None:
    with devhost_process(azurite, tmp_path, "s") as env:
        token = _token(env, "Jobs.Read")
        status, _, _ = _http("GET", f"{env['BASE_URL']}/api/jobs", token)  # the app's runtime and its clients exist now
        assert status == 200
        began = time.monotonic()
    assert time.monotonic() - began < 5  # devhost_process sends SIGTERM and waits for the exit
    log = (tmp_path / "devhost.log").read_text()
    assert "Unclosed client session" not in log and "Unclosed connector" not in log, log[-2000:]


def test_a_scheduled_job_long_polled_to_its_result_over_http(devhost: dict[str, str]) -> None:
    """Scheduling, waiting without polling and the result, with a real token through devhost."""
    base, storage = devhost["BASE_URL"], devhost["AzureWebJobsStorage"]
    token = _token(devhost, "Jobs.Submit", "Jobs.Read")
    subject = uuid.uuid4()
    container = BlobServiceClient.from_connection_string(storage).get_container_client(
        devhost["JOBS_MAIL_CONTAINER"])
    if not container.exists():
        container.create_container()
    container.upload_blob(f"{TENANT}/{subject}.eml", b"Message-ID: <m1@example.com>\r\nFrom: a@example.com\r\n"
                          b"To: b@example.com\r\nSubject: hello\r\n\r\nbody\r\n")
    status, _, body = _http("POST", f"{base}/api/jobs", token, {
        "jobType": "email-process", "subjectId": str(subject), "payload": {"messageId": "m1@example.com"},
        "delaySeconds": 2})
    assert status == 202 and body["status"] == "Queued", body
    url = f"{base}{body['statusUrl']}"
    state: dict[str, Any] = {"status": "Queued"}
    headers: dict[str, str] = {}
    for _ in range(10):  # each answer comes when the job changes (or after 10 s)
        status, headers, state = _http("GET", f"{url}?waitSeconds=10", token)
        assert status == 200 and headers.get("Preference-Applied") == "wait=10", (headers, state)
        if state["status"] == "Completed":
            break
    assert state["status"] == "Completed" and state["resultUrl"] == f"/api/jobs/{body['jobId']}/result"
    status, _, result = _http("GET", f"{url}?redirect=true", token)  # urllib follows the 303 to the result
    assert status == 200 and result["jobId"] == body["jobId"], result
    assert result["result"]["subject"] == "hello" and result["result"]["messageId"] == "m1@example.com"
