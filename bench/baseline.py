"""The floor: the fewest single-entity storage operations that give a job the app's guarantees.

It uses the app's own storage clients (``StorageClients``: same pipelines, pooled transport,
retry policies and base64 queue encoding) but none of the app's job code, and writes entities
with the same properties as the app's (the bounded history included, on the entity), so the
bytes on the wire and the work Azurite does per operation match. No entity-group transactions.

- Submission: insert the Queued status entity, then send the job message. 2 calls, 2 sequential
  round trips (the entity first, so a crash never leaves a message without a status). No quota,
  no listing index, no validation.
- Processing: read the entity; claim it (If-Match update to Running, the history entry on it);
  run the work; complete it (If-Match update to Completed); send the outcome event. 4 calls.
  The host's receive and delete of the job message are not in here: the caller does them, for
  the floor exactly as for the app (see bench/main.py and bench/floor_worker.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

STATUS_ROW = "job"
LEASE_SECONDS = 30
_NAMESPACE = uuid.UUID("6f1c3a52-2d1e-4b7a-9c55-0a8f3e7b9d10")  # the floor's own job-id namespace

# The job's work between claim and completion: the job message (attempt set) -> its result summary.
Work = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class RawRequest:
    """What the floor is asked to submit (the same inputs the app's submission gets)."""

    tenant_id: uuid.UUID
    principal_key: str
    subject_id: uuid.UUID
    correlation_id: uuid.UUID
    payload: dict[str, Any]


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _history(previous: str | None, version: int, *, source: str | None, target: str, attempt: int,
             at: datetime, reason: str) -> str:
    """The app's compact history property: [version, source, target, attempt, at, reason] entries."""
    rows: list[Any] = json.loads(previous) if previous else []
    rows.append([version, source, target, attempt, at.isoformat(), reason])
    return json.dumps(rows, separators=(",", ":"))


async def _probe_work(message: dict[str, Any]) -> dict[str, Any]:
    """The probe handler's summary (the in-process benchmark's job type does no storage I/O)."""
    return {"attempt": message["attempt"], "effects": 1}


class RawJobs:
    """Submit and process jobs with the SDK directly."""

    def __init__(self, table: TableClient, jobs: QueueClient, outcomes: QueueClient, job_type: str = "probe",
                 max_attempts: int = 3):
        self.table = table
        self.jobs = jobs
        self.outcomes = outcomes
        self.job_type = job_type
        self.max_attempts = max_attempts

    async def submit(self, request: RawRequest) -> str:
        payload = json.dumps(request.payload, sort_keys=True, separators=(",", ":"))
        key = f"{self.job_type}-{request.subject_id}-{request.payload.get('tag', 't')}"
        job_id = str(uuid.uuid5(_NAMESPACE, f"{request.tenant_id}\n{self.job_type}\n{key}"))
        fingerprint = hashlib.sha256(f'{{"payload":{payload},"subjectId":"{request.subject_id}"}}'.encode())
        now = _now()
        entity = {
            "PartitionKey": job_id, "RowKey": STATUS_ROW, "tenantId": str(request.tenant_id),
            "jobType": self.job_type, "subjectId": str(request.subject_id),
            "correlationId": str(request.correlation_id), "idempotencyKey": key, "maxAttempts": self.max_attempts,
            "payload": payload, "payloadFingerprint": fingerprint.hexdigest(), "createdAt": now,
            "status": "Queued", "updatedAt": now, "visibleAt": now, "attempt": 0, "run": 1, "version": 1,
            "submitters": json.dumps([request.principal_key]), "cancelRequested": False, "outcomePending": False,
            "history": _history(None, 1, source=None, target="Queued", attempt=0, at=now, reason="Submitted"),
        }
        await self.table.create_entity(entity)
        message = {
            "jobId": job_id, "jobType": self.job_type, "subjectId": str(request.subject_id),
            "correlationId": str(request.correlation_id), "idempotencyKey": key, "attempt": 1,
            "maxAttempts": self.max_attempts, "payload": request.payload, "createdAt": _iso(now),
            "tenantId": str(request.tenant_id),
        }
        await self.jobs.send_message(json.dumps(message, separators=(",", ":")))
        return job_id

    async def process(self, body: str, work: Work = _probe_work) -> None:
        message = json.loads(body)
        job_id = message["jobId"]
        entity = await self.table.get_entity(job_id, STATUS_ROW)
        if entity["status"] != "Queued" or message["attempt"] <= entity["attempt"]:
            raise RuntimeError(f"floor job {job_id} is {entity['status']}: the benchmark expects Queued")
        now = _now()
        running = dict(entity)
        running.update(status="Running", attempt=entity["attempt"] + 1, version=entity["version"] + 1,
                       updatedAt=now, leaseOwner=uuid.uuid4().hex,
                       leaseExpiresAt=now + timedelta(seconds=LEASE_SECONDS), startedAt=now)
        running["history"] = _history(entity["history"], running["version"], source="Queued", target="Running",
                                      attempt=running["attempt"], at=now, reason="Claimed")
        etag = await self._write(running, str(entity.metadata["etag"]))

        result = await work({**message, "attempt": running["attempt"]})
        done_at = _now()
        completed = dict(running)
        del completed["leaseOwner"], completed["leaseExpiresAt"]
        completed.update(status="Completed", version=running["version"] + 1, updatedAt=done_at,
                         terminalAt=done_at, result=json.dumps(result, separators=(",", ":")),
                         outcomeCode="COMPLETED", progressPercent=100)
        completed["history"] = _history(running["history"], completed["version"], source="Running",
                                        target="Completed", attempt=running["attempt"], at=done_at,
                                        reason="Completed")
        await self._write(completed, etag)

        event = {
            "eventId": str(uuid.uuid5(_NAMESPACE, f"{job_id}\n1\nCompleted")), "eventType": "JobOutcome",
            "jobId": job_id, "jobType": self.job_type, "subjectId": message["subjectId"],
            "tenantId": message["tenantId"], "correlationId": message["correlationId"],
            "idempotencyKey": message["idempotencyKey"], "attempt": running["attempt"], "run": 1,
            "outcome": "Completed", "code": "COMPLETED", "message": None, "occurredAt": _iso(done_at),
            "traceParent": None,
        }
        cloud_event = {  # the same CloudEvents envelope the app sends, so both queues carry the same bytes
            "specversion": "1.0", "id": event["eventId"], "source": f"/background-jobs/tenants/{message['tenantId']}",
            "type": "BackgroundJobs.JobOutcome.Completed", "subject": job_id, "time": event["occurredAt"],
            "datacontenttype": "application/json", "data": event,
        }
        await self.outcomes.send_message(json.dumps(cloud_event, separators=(",", ":")))

    async def _write(self, entity: dict[str, Any], etag: str) -> str:
        """If-Match replace of the status entity (one single-entity write)."""
        metadata = await self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                                  match_condition=MatchConditions.IfNotModified)
        return str(metadata["etag"])
