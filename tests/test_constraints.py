"""One test per MUST / MUST NOT rule of background-jobs-constraints.md (ADR-004, ADR-017).

Each test is named after its rule and asserts the behaviour the rule asks for, against a real
Azurite through the real SDKs.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path

from jobs.storage_names import ANALYSIS, DOC_INDEX, DOCUMENTS, MAIL
from shared.domain.contract import JobContract, JobStatus
from shared.domain.errors import ErrorCode
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from shared.store.status_table import STATUS_ROW
from tests.engine.helpers import events_for, submit_job, upload
from tests.support import BOB_OID, EFFECTS, OTHER_TENANT, TENANT, Api, RequestLog, history_of, run_until_settled

ROOT = Path(__file__).resolve().parent.parent
SEED_FIELDS = {"jobId", "jobType", "subjectId", "correlationId", "idempotencyKey", "attempt", "maxAttempts",
               "payload", "createdAt"}


async def _receive_body(runtime: Runtime) -> str:
    message = [m async for m in runtime.queues.jobs.receive_messages(max_messages=1)][0]
    await runtime.queues.jobs.delete_message(message)
    return str(message.content)


# ---- MUST (ADR-004, job contract) -----------------------------------------------------------

async def test_must_use_job_contract_schema_for_all_async_work(runtime: Runtime) -> None:
    await submit_job(runtime, "probe", {"tag": "schema"})
    body = json.loads(await _receive_body(runtime))
    assert set(body) == SEED_FIELDS | {"tenantId"}  # the seed's fields exactly, plus tenantId
    contract = JobContract.model_validate(body)
    assert contract.attempt == 1 and body["createdAt"].endswith("Z")
    for field, bad in (("extra", 1), ("attempt", 0), ("jobId", "not-a-guid"), ("createdAt", "2025-12-12T00:00:00")):
        tampered = {**body, field: bad}
        assert _invalid(tampered), field


def _invalid(body: dict[str, object]) -> bool:
    try:
        JobContract.model_validate(body)
    except ValueError:
        return True
    return False


async def test_must_implement_handlers_as_idempotent(runtime: Runtime) -> None:
    """Every seed handler, run twice for one job, leaves exactly what one run leaves."""
    s = runtime.settings
    doc, mail = uuid.uuid4(), uuid.uuid4()
    await upload(runtime, s.name_of(DOCUMENTS), str(doc), b"Idempotent handlers repeat safely. Safely, always.")
    eml = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMessage-ID: <m-1@example.com>\r\n\r\nbody\r\n"
    await upload(runtime, s.name_of(MAIL), f"{mail}.eml", eml)
    jobs = [("doc-index", {"rowVersion": 1, "action": "index"}, doc),
            ("ai-analyze", {"analysisType": "full"}, doc),
            ("email-process", {"messageId": "m-1@example.com"}, mail)]
    tenant = uuid.UUID(TENANT)
    for job_type, payload, subject in jobs:
        await submit_job(runtime, job_type, payload, subject)
        body = await _receive_body(runtime)
        await handle_job_message(runtime, body, 1)
        first = await _snapshot(runtime, tenant, doc, mail)
        record = await runtime.store.get(JobContract.model_validate_json(body).job_id)
        assert record is not None and record.status is JobStatus.COMPLETED, record
        # Force a second run of the same job (as after a crash before the Completed write).
        await runtime.store.table.update_entity(
            {"PartitionKey": str(record.job_id), "RowKey": STATUS_ROW, "status": "Queued", "attempt": 0})
        await handle_job_message(runtime, body, 2)
        assert await _snapshot(runtime, tenant, doc, mail) == first, job_type


async def _snapshot(runtime: Runtime, tenant: uuid.UUID, doc: uuid.UUID, mail: uuid.UUID) -> dict[str, object]:
    rows = runtime.rows(tenant, DOC_INDEX)
    index = {k: (await rows.get(f"doc-{doc}", k) or {}).get("count") for k in await rows.keys(f"doc-{doc}")}
    files = runtime.files(tenant)
    out: dict[str, object] = {"index": index}
    for container, name in ((runtime.settings.name_of(ANALYSIS), f"{doc}/full.json"),
                            (runtime.settings.name_of(MAIL), f"{mail}.metadata.json")):
        if await files.exists(container, name):
            out[name] = json.loads(await files.read_text(container, name))
    return out


async def test_must_use_deterministic_idempotency_key_patterns(api: Api) -> None:
    doc = uuid.uuid4()
    cases = [
        ({"jobType": "doc-index", "subjectId": str(doc), "payload": {"rowVersion": 7, "action": "index"}},
         f"doc-{doc}-v7"),
        ({"jobType": "ai-analyze", "subjectId": str(doc), "payload": {"analysisType": "summary"}},
         f"analysis-{doc}-summary"),
        ({"jobType": "email-process", "subjectId": str(doc), "payload": {"messageId": "abc@example.com"}},
         "email-abc@example.com"),
    ]
    for request, key in cases:
        first = await api.call("POST", "/api/jobs", request)
        second = await api.call("POST", "/api/jobs", request)
        assert first.status == second.status == 202 and first.body["jobId"] == second.body["jobId"]
        status = await api.call("GET", first.body["statusUrl"])
        assert status.body["idempotencyKey"] == key
    # The key is derived by the server, never taken from the caller.
    free = await api.call("POST", "/api/jobs", {**cases[0][0], "idempotencyKey": "mine"})
    assert free.status == 400 and free.code == "REQUEST_INVALID"


async def test_must_propagate_correlation_id_from_original_request(api: Api) -> None:
    runtime = api.runtime
    corr = str(uuid.uuid4())
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                                "payload": {"tag": "corr"}}, headers={"x-correlation-id": corr})
    assert res.headers["x-correlation-id"] == corr
    body = json.loads(await _receive_body(runtime))
    assert body["correlationId"] == corr  # the message
    await handle_job_message(runtime, json.dumps(body), 1)
    record = await runtime.store.get(uuid.UUID(res.body["jobId"]))
    assert record is not None and str(record.correlation_id) == corr  # the entity
    events = await events_for(runtime, record.job_id)
    assert [e["correlationId"] for e in events] == [corr]  # the outcome event
    status = await api.call("GET", res.body["statusUrl"])
    assert status.body["correlationId"] == corr
    traced = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                                   "payload": {"tag": "trace"}},
                            headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert traced.headers["x-correlation-id"] == "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"


async def test_must_emit_job_outcome_events_completed_failed_poisoned(runtime: Runtime) -> None:
    ok = await submit_job(runtime, "probe", {"tag": "ok"})
    failed = await submit_job(runtime, "probe", {"tag": "failed", "permanent": True})
    poisoned = await submit_job(runtime, "probe", {"tag": "poisoned", "failTimes": 9})
    expected = {ok.record.job_id: "Completed", failed.record.job_id: "Failed", poisoned.record.job_id: "Poisoned"}
    for job_id in expected:
        await run_until_settled(runtime, job_id, timeout=40)
    for job_id, outcome in expected.items():
        events = await events_for(runtime, job_id)
        assert [e["outcome"] for e in events] == [outcome]
        event = events[0]
        assert event["eventType"] == "JobOutcome" and event["code"] in ErrorCode.__members__
        for field in ("eventId", "jobId", "jobType", "subjectId", "correlationId", "idempotencyKey", "attempt",
                      "occurredAt"):
            assert event[field] not in (None, ""), field


# ---- MUST (ADR-017, job status) -------------------------------------------------------------

async def test_must_persist_status_transitions_and_final_outcome(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "persist", "failTimes": 1})
    record = await run_until_settled(runtime, sub.record.job_id)
    history = await history_of(runtime, sub.record.job_id)
    assert [(h.source, h.target) for h in history] == [
        (None, "Queued"), ("Queued", "Running"), ("Running", "Queued"), ("Queued", "Running"),
        ("Running", "Completed")]
    assert [h.version for h in history] == sorted(h.version for h in history)
    assert record.outcome_code == "COMPLETED" and record.result == {"attempt": 2, "effects": 1}
    assert record.terminal_at is not None and record.version == len(history)


async def test_must_return_202_accepted_with_job_id_and_status_url(api: Api) -> None:
    for path, body in (("/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {}}),
                       ("/api/analysis/enqueue", {"documentId": str(uuid.uuid4()), "type": "keywords"})):
        res = await api.call("POST", path, body)
        assert res.status == 202, res.body
        job_id = uuid.UUID(res.body["jobId"])
        assert res.body["statusUrl"] == res.headers["location"] == f"/api/jobs/{job_id}/status"
        assert res.body["status"] == "Queued" and int(res.headers["retry-after"]) > 0


async def test_must_make_status_updates_idempotent(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "idem"})
    body = await _receive_body(runtime)
    await handle_job_message(runtime, body, 1)
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED
    etag = record.etag
    for _ in range(3):  # the same delivery again: nothing changes, nothing is written twice
        await handle_job_message(runtime, body, 2)
    again = await runtime.store.get(sub.record.job_id)
    assert again is not None and again.etag == etag and again.version == record.version
    assert len(await history_of(runtime, sub.record.job_id)) == record.version
    assert EFFECTS[str(sub.record.job_id)] == 1


async def test_must_enforce_authorization_on_status_endpoints(api: Api) -> None:
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {}})
    url = res.body["statusUrl"]
    assert (await api.call("GET", url)).status == 200  # the submitter
    admin = api.token(oid=BOB_OID, scopes=(), roles=("Jobs.Admin",))
    assert (await api.call("GET", url, token=admin)).status == 200  # an admin of the same tenant
    for token in (api.token(oid=BOB_OID),  # another principal of the same tenant
                  api.token(tenant=OTHER_TENANT),  # the same oid in another tenant
                  api.token(tenant=OTHER_TENANT, oid=BOB_OID, scopes=(), roles=("Jobs.Admin",))):  # foreign admin
        denied = await api.call("GET", url, token=token)
        assert denied.status == 404 and denied.code == "JOB_NOT_FOUND"
    no_scope = await api.call("GET", url, token=api.token(scopes=()))
    assert no_scope.status == 403 and no_scope.code == "AUTH_PERMISSION_MISSING"
    submit_only = await api.call("GET", url, token=api.token(scopes=("Jobs.Submit",)))
    assert submit_only.status == 403


async def test_must_use_stable_error_codes_in_outcomes(runtime: Runtime) -> None:
    missing = await submit_job(runtime, "doc-index", {"rowVersion": 1, "action": "index"})
    record = await run_until_settled(runtime, missing.record.job_id)
    assert record.outcome_code == ErrorCode.SUBJECT_NOT_FOUND.code
    source = (ROOT / "shared" / "domain" / "errors.py").read_text()
    catalogue = set(re.findall(r"^    ([A-Z_]+) = ErrorSpec", source, re.MULTILINE))
    docs = (ROOT / "docs" / "errors.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", docs, re.MULTILINE))
    assert catalogue == set(ErrorCode.__members__) == documented
    statuses = dict(re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", docs, re.MULTILINE))
    assert statuses == {c.code: str(c.status) for c in ErrorCode if c.status is not None}  # the HTTP column too


# ---- MUST NOT -------------------------------------------------------------------------------

async def test_must_not_place_document_bytes_or_large_blobs_in_payload(api: Api, request_log: RequestLog) -> None:
    await api.call("GET", "/api/jobs")  # warm the JWKS cache and clients
    mark = request_log.mark()
    big = {"jobType": "email-process", "subjectId": str(uuid.uuid4()), "payload": {"messageId": "x" * 9000}}
    res = await api.call("POST", "/api/jobs", big)
    assert res.status == 400 and res.code == "PAYLOAD_INVALID"
    smuggled = {"jobType": "doc-index", "subjectId": str(uuid.uuid4()),
                "payload": {"rowVersion": 1, "action": "index", "content": "the document bytes"}}
    res = await api.call("POST", "/api/jobs", smuggled)
    assert res.status == 400 and res.code == "PAYLOAD_INVALID"
    huge = await api.call("POST", "/api/jobs", raw=b'{"jobType":"probe","pad":"' + b"x" * 70_000 + b'"}')
    assert huge.status == 413 and huge.code == "REQUEST_TOO_LARGE"
    assert request_log.since(mark) == []  # refused before any storage call: nothing written
    probe = {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {"tag": "x" * 64, "sleep": 0}}
    assert (await api.call("POST", "/api/jobs", probe)).status == 202


async def test_must_not_assume_exactly_once_delivery(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "twice"})
    body = await _receive_body(runtime)
    await runtime.queues.jobs.send_message(body)  # the queue hands out the same job again
    await runtime.queues.jobs.send_message(body)
    await handle_job_message(runtime, body, 1)
    await run_until_settled(runtime, sub.record.job_id)
    assert EFFECTS[str(sub.record.job_id)] == 1
    assert len({e["eventId"] for e in await events_for(runtime, sub.record.job_id)}) == 1


def test_must_not_use_durable_functions_for_orchestration() -> None:
    requirements = (ROOT / "requirements.txt").read_text().lower()
    assert "durable" not in requirements
    host = json.loads((ROOT / "host.json").read_text())
    assert "durableTask" not in host.get("extensions", {})
    for path in [ROOT / "function_app.py", *ROOT.glob("shared/*.py"), *ROOT.glob("jobs/*.py")]:
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any("durable" in name for name in imported), path
        assert "orchestration_trigger" not in path.read_text() and "activity_trigger" not in path.read_text()


async def test_must_not_store_large_payloads_in_status_records(runtime: Runtime) -> None:
    doc = uuid.uuid4()
    text = " ".join(f"word{i}" for i in range(20_000)).encode()
    await upload(runtime, runtime.settings.name_of(DOCUMENTS), str(doc), text)
    sub = await submit_job(runtime, "ai-analyze", {"analysisType": "full"}, doc)
    await run_until_settled(runtime, sub.record.job_id)
    entity = await runtime.store.table.get_entity(str(sub.record.job_id), STATUS_ROW)
    assert len(json.dumps(dict(entity), default=str)) < 8 * 1024  # a summary, never the analysis or the text
    assert "summary" not in json.loads(entity["result"])  # the analysis itself lives in blob storage


async def test_must_not_expose_status_without_authorization(api: Api) -> None:
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()), "payload": {}})
    url = res.body["statusUrl"]
    for token, code in ((None, "AUTH_TOKEN_MISSING"), ("not.a.token", "AUTH_TOKEN_INVALID"),
                        (api.token(lifetime=-3600), "AUTH_TOKEN_INVALID")):
        denied = await api.call("GET", url, token=token)
        assert denied.status == 401 and denied.code == code
        assert "jobId" not in denied.body and "outcome" not in denied.body and denied.body["status"] == 401
    unknown = await api.call("GET", f"/api/jobs/{uuid.uuid4()}/status")
    assert unknown.status == 404 and unknown.code == "JOB_NOT_FOUND"


async def test_must_not_leave_jobs_without_status_records(runtime: Runtime, request_log: RequestLog) -> None:
    mark = request_log.mark()
    sub = await submit_job(runtime, "probe", {"tag": "order"})
    calls = request_log.since(mark)
    insert = next(i for i, (m, p) in enumerate(calls) if m == "POST" and p.endswith(f"/{runtime.settings.jobs_table}"))
    send = next(i for i, (m, p) in enumerate(calls) if p.endswith(f"/{runtime.settings.jobs_queue}/messages"))
    assert insert < send  # the entity is written before the message exists
    body = await _receive_body(runtime)
    assert await runtime.store.purge(sub.record)  # the entity is gone; the message is not
    await handle_job_message(runtime, body, 1)
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED
