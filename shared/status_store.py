"""Table persistence for job status: a few small primitives, no job logic.

Layout (one partition per job, PartitionKey = jobId):
- RowKey ``job``: the status entity (the JobRecord);
- RowKey ``h00000001``...: one history row per transition, written in the same entity-group
  transaction as the ETag-conditional replace of the status entity;
- RowKey ``once-<sha256>``: markers of ``ctx.once()`` steps, with their small results.

Orchestration (re-read and re-decide on a stale ETag) is ``StatusStore.transition``; the
decisions themselves live with the worker, the poison function and maintenance.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from shared.contract import JobStatus, utc_now
from shared.status import HistoryEntry, JobRecord, Transition

STATUS_ROW = "job"
HISTORY_PREFIX = "h"
MARKER_PREFIX = "once-"

# JobRecord field -> entity property. Names are camelCase, as on the wire.
_DATETIMES = ("created_at", "updated_at", "visible_at", "lease_expires_at", "started_at", "terminal_at",
              "redriven_at")
_JSON = ("payload", "result")
_UUIDS = ("job_id", "tenant_id", "subject_id", "correlation_id")

# One operation of an entity-group transaction: (kind, entity) or (kind, entity, options).
_Operation = tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], Mapping[str, Any]]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class JobAlreadyExists(Exception):
    """The job's status entity exists already (a duplicate submission)."""


class ConcurrencyConflict(Exception):
    """The entity changed since it was read (HTTP 412): re-read and re-decide."""


@dataclass(frozen=True)
class TransitionResult:
    record: JobRecord | None  # None: the job does not exist
    applied: bool  # False: the decision was a no-op (e.g. the transition already happened)


def _to_property(name: str, value: Any) -> Any:
    """A JobRecord field's value as the entity property stores it."""
    if name in _UUIDS:
        return str(value)
    if name in _JSON:
        return json.dumps(value, separators=(",", ":"))
    if name == "submitters":
        return json.dumps(list(value))
    if name == "status":
        return value.value
    return value


def _from_property(name: str, value: Any) -> Any:
    """An entity property's value as the JobRecord field holds it."""
    if name in _UUIDS:
        return uuid.UUID(value)
    if name in _JSON:
        return json.loads(value)
    if name == "submitters":
        return tuple(json.loads(value))
    if name == "status":
        return JobStatus(value)
    if name in _DATETIMES:
        return datetime.fromisoformat(value.isoformat())  # plain datetime, tz-aware UTC
    return value


def record_to_entity(record: JobRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": str(record.job_id), "RowKey": STATUS_ROW}
    for name, value in record.__dict__.items():
        if name in ("etag", "job_id") or value is None:
            continue
        entity[_camel(name)] = _to_property(name, value)
    return entity


def entity_to_record(entity: Mapping[str, Any], etag: str) -> JobRecord:
    values: dict[str, Any] = {"job_id": uuid.UUID(entity["PartitionKey"]), "etag": etag}
    for name in JobRecord.__dataclass_fields__:
        key = _camel(name)
        if name in ("job_id", "etag") or key not in entity:
            continue
        values[name] = _from_property(name, entity[key])
    return JobRecord(**values)


def _read_etag(entity: TableEntity) -> str:
    """The ETag of an entity the service returned (only locally built entities lack one)."""
    etag = entity.metadata["etag"]
    if etag is None:
        raise ValueError(f"entity {entity.get('PartitionKey')}/{entity.get('RowKey')} was read without an ETag")
    return etag


def history_to_entity(job_id: uuid.UUID, entry: HistoryEntry) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": str(job_id), "RowKey": f"{HISTORY_PREFIX}{entry.version:08d}",
        "target": entry.target.value, "attempt": entry.attempt, "at": entry.at, "reason": entry.reason,
    }
    if entry.source is not None:
        entity["source"] = entry.source.value
    if entry.message:
        entity["message"] = entry.message
    return entity


def _conflict(exc: TableTransactionError) -> bool:
    return exc.status_code == 412


def _exists(exc: TableTransactionError) -> bool:
    return exc.status_code == 409


class StatusStore:
    """Reads and conditionally writes job status entities in one table."""

    def __init__(self, table: TableClient, clock: Callable[[], datetime] = utc_now):
        self.table = table
        self.clock = clock

    async def create(self, record: JobRecord, reason: str = "Submitted") -> JobRecord:
        """Insert the status entity with its first history row, atomically. Raises JobAlreadyExists."""
        entry = HistoryEntry(record.version, None, record.status, record.attempt, record.created_at, reason)
        try:
            parts = await self.table.submit_transaction(
                [("create", record_to_entity(record)), ("create", history_to_entity(record.job_id, entry))]
            )
        except TableTransactionError as exc:
            if _exists(exc):
                raise JobAlreadyExists(str(record.job_id)) from exc
            raise
        return replace(record, etag=parts[0]["etag"])

    async def get(self, job_id: uuid.UUID) -> JobRecord | None:
        try:
            entity = await self.table.get_entity(str(job_id), STATUS_ROW)
        except ResourceNotFoundError:
            return None
        return entity_to_record(entity, _read_etag(entity))

    async def apply(self, record: JobRecord, transition: Transition) -> JobRecord:
        """One entity-group transaction: the If-Match replace plus one history row."""
        now = self.clock()
        updated = transition.apply(record, now)
        entry = HistoryEntry(
            updated.version, record.status, updated.status, updated.attempt, now, transition.reason,
            transition.message,
        )
        operations: list[_Operation] = [
            ("update", record_to_entity(updated),
             {"mode": UpdateMode.REPLACE, "etag": record.etag, "match_condition": MatchConditions.IfNotModified}),
            ("create", history_to_entity(record.job_id, entry)),
        ]
        try:
            parts = await self.table.submit_transaction(operations)
        except TableTransactionError as exc:
            if _conflict(exc) or _exists(exc):
                raise ConcurrencyConflict(str(record.job_id)) from exc
            raise
        return replace(updated, etag=parts[0]["etag"])

    async def update(self, record: JobRecord, **changes: Any) -> JobRecord:
        """An If-Match replace that is not a status transition (lease, progress, flags): no history row."""
        updated = replace(record, **changes)
        try:
            metadata = await self.table.update_entity(
                record_to_entity(updated), mode=UpdateMode.REPLACE, etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError as exc:
            raise ConcurrencyConflict(str(record.job_id)) from exc
        return replace(updated, etag=metadata["etag"])

    async def transition(
        self,
        job_id: uuid.UUID,
        decide: Callable[[JobRecord], Transition | None],
        *,
        current: JobRecord | None = None,
        max_rounds: int = 8,
    ) -> TransitionResult:
        """Apply ``decide``'s transition; on a stale ETag re-read and re-decide.

        ``decide`` returns None when there is nothing to do (the transition already happened, or
        no longer applies), which makes re-applied transitions no-ops.
        """
        record = current
        for _ in range(max_rounds):
            if record is None:
                record = await self.get(job_id)
                if record is None:
                    return TransitionResult(None, applied=False)
            decision = decide(record)
            if decision is None:
                return TransitionResult(record, applied=False)
            try:
                return TransitionResult(await self.apply(record, decision), applied=True)
            except ConcurrencyConflict:
                record = None
        raise ConcurrencyConflict(f"job {job_id}: still conflicting after {max_rounds} rounds")

    async def history(self, job_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": str(job_id), "lo": HISTORY_PREFIX, "hi": chr(ord(HISTORY_PREFIX) + 1)},
        )
        return [dict(row) async for row in rows]

    async def get_marker(self, job_id: uuid.UUID, step_key: str) -> dict[str, Any] | None:
        try:
            entity = await self.table.get_entity(str(job_id), _marker_key(step_key))
        except ResourceNotFoundError:
            return None
        return dict(entity)

    async def put_marker(self, job_id: uuid.UUID, step_key: str, result_json: str) -> None:
        entity = {"PartitionKey": str(job_id), "RowKey": _marker_key(step_key), "stepKey": step_key[:1024],
                  "result": result_json, "at": self.clock()}
        # ResourceExistsError: another delivery recorded the same step first; both ran the same idempotent step
        with contextlib.suppress(ResourceExistsError):
            await self.table.create_entity(entity)

    async def query(
        self, query_filter: str, parameters: dict[str, Any], limit: int
    ) -> AsyncIterator[JobRecord]:
        """Status entities matching an OData filter (``@name`` tokens must stand alone)."""
        rows = self.table.query_entities(
            f"RowKey eq @statusRow and {query_filter}", parameters={"statusRow": STATUS_ROW, **parameters},
            results_per_page=min(limit, 1000),
        )
        count = 0
        async for row in rows:
            yield entity_to_record(row, _read_etag(row))
            count += 1
            if count >= limit:
                break

    async def delete_job(self, job_id: uuid.UUID) -> int:
        """Delete every row of the job's partition (status, history, markers)."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": str(job_id)}, select=["PartitionKey", "RowKey"]
        )
        keys = [(row["PartitionKey"], row["RowKey"]) async for row in rows]
        for start in range(0, len(keys), 100):
            batch: list[_Operation] = [
                ("delete", {"PartitionKey": pk, "RowKey": rk}) for pk, rk in keys[start:start + 100]
            ]
            await self.table.submit_transaction(batch)
        return len(keys)


def _marker_key(step_key: str) -> str:
    return MARKER_PREFIX + hashlib.sha256(step_key.encode()).hexdigest()[:40]
