"""Three ``python -m devhost`` processes on one queue and one set of tables, as the Functions host
scales out: a batch of jobs of every type, and concurrent versions of one document, each job
submitted to some host. Every job ends as its input calls for, with one outcome event per run,
no run reaches two terminal states, and the document's index ends at its newest version."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

from chaos.workload import document_text, email_bytes
from devhost.azurite import Azurite
from jobs.text import term_counts
from shared.domain.contract import JobStatus
from shared.store.status_table import STATUS_ROW, entity_to_record
from tests.devhost_process import devhost_processes
from tests.e2e.test_devhost_end_to_end import _token
from tests.support import TENANT

VERSIONS = 5


async def _upload(storage: str, container: str, name: str, content: bytes) -> None:
    async with BlobServiceClient.from_connection_string(storage) as service:
        client = service.get_container_client(container)
        with contextlib.suppress(ResourceExistsError):
            await client.create_container()
        await client.upload_blob(f"{TENANT}/{name}", content, overwrite=True)


async def _events(storage: str, queue_name: str) -> dict[tuple[str, int], set[tuple[str, str]]]:
    events: dict[tuple[str, int], set[tuple[str, str]]] = defaultdict(set)
    async with QueueClient.from_connection_string(storage, queue_name) as queue:
        while batch := [m async for m in queue.receive_messages(messages_per_page=32, max_messages=32,
                                                                 visibility_timeout=600)]:
            for message in batch:
                event = json.loads(base64.b64decode(message.content))["data"]  # a CloudEvent: its data
                events[(event["jobId"], int(event["run"]))].add((event["eventId"], event["outcome"]))
    return events


async def _run(hosts: list[dict[str, str]], token: str) -> None:
    env, rng = hosts[0], random.Random(9)
    storage = env["AzureWebJobsStorage"]
    jobs: list[tuple[dict[str, Any], tuple[str, str | None]]] = []  # (request, (status, code) expected)
    document, text = uuid.uuid4(), document_text(rng)
    await _upload(storage, env["JOBS_DOCUMENTS_CONTAINER"], str(document), text.encode())
    jobs += [({"jobType": "doc-index", "subjectId": str(document), "payload": {"rowVersion": v, "action": "index"}},
              ("Completed", None)) for v in range(1, VERSIONS + 1)]
    for index in range(12):
        subject = uuid.uuid4()
        kind = ("doc-index", "ai-analyze", "email-process")[index % 3]
        if kind == "email-process":
            message_id = f"{subject.hex}@hosts.test"
            await _upload(storage, env["JOBS_MAIL_CONTAINER"], f"{subject}.eml", email_bytes(message_id, rng))
            payload: dict[str, Any] = {"messageId": message_id}
        else:
            await _upload(storage, env["JOBS_DOCUMENTS_CONTAINER"], str(subject), document_text(rng).encode())
            payload = ({"rowVersion": 1, "action": "index"} if kind == "doc-index"
                       else {"analysisType": ("statistics", "keywords", "summary", "full")[index % 4]})
        jobs.append(({"jobType": kind, "subjectId": str(subject), "payload": payload}, ("Completed", None)))
    for kind, payload in (("doc-index", {"rowVersion": 1, "action": "index"}), ("ai-analyze", {"analysisType": "full"}),
                          ("email-process", {"messageId": "missing@hosts.test"})):
        jobs.append(({"jobType": kind, "subjectId": str(uuid.uuid4()), "payload": payload},
                     ("Failed", "SUBJECT_NOT_FOUND")))

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as http:
        async def submit(index: int, request: dict[str, Any]) -> str:
            base = hosts[index % len(hosts)]["BASE_URL"]  # every host takes submissions
            async with http.post(f"{base}/api/jobs", json=request) as response:
                body = await response.json()
                assert response.status == 202, body
                return str(body["jobId"])

        ids = await asyncio.gather(*(submit(i, request) for i, (request, _) in enumerate(jobs)))
    assert len(set(ids)) == len(jobs)

    async with TableClient.from_connection_string(storage, env["JOBS_TABLE"]) as table:
        for _ in range(240):
            records = [entity_to_record(e, e.metadata["etag"] or "") for e in
                       [await table.get_entity(job_id, STATUS_ROW) for job_id in ids]]
            if all(r.is_terminal and not r.outcome_pending for r in records):
                break
            await asyncio.sleep(0.5)
    events = await _events(storage, env["JOBS_OUTCOMES_QUEUE"])
    for record, (request, (status, code)) in zip(records, jobs, strict=True):
        story = [(e.target.value, e.reason) for e in record.history]
        assert record.status.value == status, (request, story)
        if code is not None:
            assert record.outcome_code == code, (request, story)
        assert sum(1 for e in record.history if e.target.is_terminal) == 1, story  # one terminal state per run
        assert record.run == 1
        job_events = events[(str(record.job_id), 1)]
        assert len({event_id for event_id, _ in job_events}) == 1, job_events  # exactly one distinct eventId
        assert {outcome for _, outcome in job_events} == {status}

    async with TableClient.from_connection_string(storage, env["JOBS_INDEX_TABLE"]) as index:
        rows = [dict(r) async for r in index.query_entities("PartitionKey eq @pk",
                                                             parameters={"pk": f"{TENANT}|doc-{document}"})]
    meta = next(r for r in rows if r["RowKey"] == "~meta")
    terms = {r["RowKey"]: r for r in rows if r["RowKey"] != "~meta"}
    assert meta["rowVersion"] == VERSIONS
    assert {r["rowVersion"] for r in terms.values()} == {VERSIONS}  # no rows of an older version
    assert {k: r["count"] for k, r in terms.items()} == dict(term_counts(text))
    versions = [r for r, (request, _) in zip(records, jobs, strict=True) if request["subjectId"] == str(document)]
    assert all(r.status is JobStatus.COMPLETED for r in versions)


def test_three_hosts_on_one_queue_finish_every_job_once_with_one_event_per_run(
        azurite: Azurite, tmp_path: Path) -> None:
    with devhost_processes(azurite, tmp_path, "m", 3, {"JOBS_LEASE_SECONDS": "10"}) as hosts:
        token = _token(hosts[0], "Jobs.Submit", "Jobs.Read")
        asyncio.run(_run(hosts, token))
        ran = [Path(h["LOG_PATH"]).read_text().count("Executed 'Functions.run_job'") for h in hosts]
    assert sum(ran) >= 20, ran  # 20 jobs, each delivered at least once (waiting versions more than once)
