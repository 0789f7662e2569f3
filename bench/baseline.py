"""The raw-SDK baseline: the fewest storage operations that leave the same durable state.

It uses the app's own aio clients (the same ``StorageClients``: same pipelines, transport and
connection pool, same base64 queue encoding) but none of the app's code, and writes entities
with the same properties as the app's, so the bytes on the wire and the work Azurite does per
operation match. What it leaves out is everything the app adds on top of that minimum.

- Submission: one entity-group transaction (status entity + first history row), then one queue
  send of the job message. 2 calls, 2 sequential round trips. No quota, no listing index.
- Processing: read the entity; claim it (If-Match replace to Running + history row, one
  transaction); complete it (If-Match replace to Completed + history row, one transaction);
  send the outcome event. 4 calls, the app's budget. The history rows keep the durable effect
  equal to the app's; a plain ``update_entity`` would be cheaper but would lose them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient
from azure.storage.queue.aio import QueueClient

STATUS_ROW = "job"
LEASE_SECONDS = 30
_NAMESPACE = uuid.UUID("6f1c3a52-2d1e-4b7a-9c55-0a8f3e7b9d10")  # the baseline's own job-id namespace


@dataclass(frozen=True)
class RawRequest:
    """What the baseline is asked to submit (the same inputs the app's submission gets)."""

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


def _history(job_id: str, version: int, *, source: str | None, target: str, attempt: int, at: datetime,
             reason: str) -> dict[str, Any]:
    row: dict[str, Any] = {"PartitionKey": job_id, "RowKey": f"h{version:08d}", "target": target,
                           "attempt": attempt, "at": at, "reason": reason}
    if source is not None:
        row["source"] = source
    return row


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
        key = f"probe-{request.subject_id}-{request.payload.get('tag', 't')}"
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
        }
        history = _history(job_id, 1, source=None, target="Queued", attempt=0, at=now, reason="Submitted")
        await self.table.submit_transaction([("create", entity), ("create", history)])
        message = {
            "jobId": job_id, "jobType": self.job_type, "subjectId": str(request.subject_id),
            "correlationId": str(request.correlation_id), "idempotencyKey": key, "attempt": 1,
            "maxAttempts": self.max_attempts, "payload": request.payload, "createdAt": _iso(now),
            "tenantId": str(request.tenant_id),
        }
        await self.jobs.send_message(json.dumps(message, separators=(",", ":")))
        return job_id

    async def process(self, body: str) -> None:
        message = json.loads(body)
        job_id = message["jobId"]
        entity = await self.table.get_entity(job_id, STATUS_ROW)
        if entity["status"] != "Queued" or message["attempt"] <= entity["attempt"]:
            raise RuntimeError(f"baseline job {job_id} is {entity['status']}: the benchmark expects Queued")
        now = _now()
        running = dict(entity)
        running.update(status="Running", attempt=entity["attempt"] + 1, version=entity["version"] + 1,
                       updatedAt=now, leaseOwner=uuid.uuid4().hex,
                       leaseExpiresAt=now + timedelta(seconds=LEASE_SECONDS), startedAt=now)
        etag = await self._transition(running, str(entity.metadata["etag"]), "Queued", "Claimed", now)

        result = {"attempt": running["attempt"], "effects": 1}  # the probe handler's summary
        done_at = _now()
        completed = dict(running)
        del completed["leaseOwner"], completed["leaseExpiresAt"]
        completed.update(status="Completed", version=running["version"] + 1, updatedAt=done_at,
                         terminalAt=done_at, result=json.dumps(result, separators=(",", ":")),
                         outcomeCode="COMPLETED", progressPercent=100)
        await self._transition(completed, etag, "Running", "Completed", done_at)

        event = {
            "eventId": str(uuid.uuid5(_NAMESPACE, f"{job_id}\n1\nCompleted")), "eventType": "JobOutcome",
            "jobId": job_id, "jobType": self.job_type, "subjectId": message["subjectId"],
            "tenantId": message["tenantId"], "correlationId": message["correlationId"],
            "idempotencyKey": message["idempotencyKey"], "attempt": running["attempt"], "run": 1,
            "outcome": "Completed", "code": "COMPLETED", "message": None, "occurredAt": _iso(done_at),
            "traceParent": None,
        }
        await self.outcomes.send_message(json.dumps(event, separators=(",", ":")))

    async def _transition(self, entity: dict[str, Any], etag: str, source: str, reason: str, at: datetime) -> str:
        """If-Match replace of the status entity plus its history row, in one transaction."""
        history = _history(entity["PartitionKey"], entity["version"], source=source, target=entity["status"],
                           attempt=entity["attempt"], at=at, reason=reason)
        parts = await self.table.submit_transaction([
            ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag,
                                "match_condition": MatchConditions.IfNotModified}),
            ("create", history),
        ])
        return str(parts[0]["etag"])
