"""Table persistence for job status: a few small primitives, no job logic.

Layout (one partition per job, PartitionKey = jobId):
- RowKey ``job``: the status entity (the JobRecord), its bounded history in one compact
  property, so a transition is one ETag-conditional single-entity write, a status read with
  history is one point read, and a purge is one delete;
- RowKey ``once-<sha256>``: markers of ``ctx.once()`` steps, with their small results.

The store writes what it is given, guarded by the ETag of the record it was read as, and
raises ConcurrencyConflict when that record is stale. Re-reading and re-deciding is the
engine's lifecycle (shared/engine/lifecycle.py); so is every decision about what to write.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient

from shared.domain.contract import JobStatus, utc_now
from shared.domain.record import Change, HistoryEntry, JobRecord, Transition

STATUS_ROW = "job"
MARKER_PREFIX = "once-"

# JobRecord field -> entity property. Names are camelCase, as on the wire.
_DATETIMES = ("created_at", "updated_at", "visible_at", "lease_expires_at", "started_at", "terminal_at",
              "redriven_at", "deferred_since")
_JSON = ("payload", "result")
_UUIDS = ("job_id", "tenant_id", "subject_id", "correlation_id")

# One operation of an entity-group transaction: (kind, entity).
_Operation = tuple[str, Mapping[str, Any]]


@functools.cache  # a handful of field names, converted on every read and write
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class JobAlreadyExists(Exception):
    """The job's status entity exists already (a duplicate submission); ``existing`` is it, when read."""

    def __init__(self, job_id: str, existing: JobRecord | None = None):
        super().__init__(job_id)
        self.existing = existing


class ConcurrencyConflict(Exception):
    """The entity changed since it was read (HTTP 412): re-read and re-decide."""


def _to_property(name: str, value: Any) -> Any:
    """A JobRecord field's value as the entity property stores it."""
    if name in _UUIDS:
        return str(value)
    if name in _JSON:
        return json.dumps(value, separators=(",", ":"))
    encode = _ENCODERS.get(name)
    return encode(value) if encode else value


def _from_property(name: str, value: Any) -> Any:
    """An entity property's value as the JobRecord field holds it."""
    if name in _UUIDS:
        return uuid.UUID(value)
    if name in _JSON:
        return json.loads(value)
    if name in _DATETIMES:
        return datetime.fromisoformat(value.isoformat())  # plain datetime, tz-aware UTC
    decode = _DECODERS.get(name)
    return decode(value) if decode else value


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


def history_to_property(history: tuple[HistoryEntry, ...]) -> str:
    """The history as one compact JSON string: [version, source, target, attempt, at, reason(, message)]."""
    rows = []
    for e in history:
        row: list[Any] = [e.version, e.source.value if e.source else None, e.target.value, e.attempt,
                          e.at.astimezone(UTC).isoformat(), e.reason]
        if e.message:
            row.append(e.message)
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"))


def history_from_property(value: str) -> tuple[HistoryEntry, ...]:
    entries = []
    for version, source, target, attempt, at, reason, *message in json.loads(value):
        entries.append(HistoryEntry(
            version=int(version), source=JobStatus(source) if source else None, target=JobStatus(target),
            attempt=int(attempt), at=datetime.fromisoformat(at), reason=str(reason),
            message=str(message[0]) if message else None))
    return tuple(entries)


_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "submitters": lambda value: json.dumps(list(value)),
    "status": lambda value: value.value,
    "history": history_to_property,
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "submitters": lambda value: tuple(json.loads(value)),
    "status": JobStatus,
    "history": history_from_property,
}


class StatusStore:
    """Reads and conditionally writes job status entities in one table."""

    def __init__(self, table: TableClient, clock: Callable[[], datetime] = utc_now):
        self.table = table
        self.clock = clock

    async def insert(self, created: Transition) -> JobRecord:
        """Insert a new job's entity (its first history entry on it). Raises JobAlreadyExists."""
        record = created.after
        try:
            metadata = await self.table.create_entity(record_to_entity(record))
        except ResourceExistsError as exc:
            raise JobAlreadyExists(str(record.job_id)) from exc
        return replace(record, etag=metadata["etag"])

    async def get(self, job_id: uuid.UUID) -> JobRecord | None:
        try:
            entity = await self.table.get_entity(str(job_id), STATUS_ROW)
        except ResourceNotFoundError:
            return None
        return entity_to_record(entity, _read_etag(entity))

    async def write(self, change: Change) -> JobRecord:
        """Replace the entity If-Match the ETag it was read with (a transition carries its history entry on
        the record). Raises ConcurrencyConflict when the entity changed or went away since it was read."""
        if change.before is None:
            raise ValueError("a new job is inserted, not written")
        try:
            metadata = await self.table.update_entity(
                record_to_entity(change.after), mode=UpdateMode.REPLACE, etag=change.before.etag,
                match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyConflict(str(change.after.job_id)) from exc
        return replace(change.after, etag=metadata["etag"])

    async def delete(self, record: JobRecord) -> bool:
        """Delete the job's entity If-Match the ETag it was read with: False when it changed or is gone."""
        try:
            await self.table.delete_entity(str(record.job_id), STATUS_ROW, etag=record.etag,
                                           match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    async def get_marker(self, job_id: uuid.UUID, step_key: str) -> str | None:
        """The recorded result (JSON) of a ``once()`` step, or None if it never finished."""
        try:
            entity = await self.table.get_entity(str(job_id), _marker_key(step_key))
        except ResourceNotFoundError:
            return None
        return str(entity.get("result", "null"))

    async def put_marker(self, job_id: uuid.UUID, step_key: str, result_json: str) -> None:
        entity = {"PartitionKey": str(job_id), "RowKey": _marker_key(step_key), "stepKey": step_key[:1024],
                  "result": result_json, "at": self.clock()}
        # ResourceExistsError: another delivery recorded the same step first; both ran the same idempotent step
        with contextlib.suppress(ResourceExistsError):
            await self.table.create_entity(entity)

    # ---- named queries (maintenance). They filter on non-key properties, which Table storage
    # serves by scanning the table; retention keeps it bounded (docs/operations.md).

    def stranded_queued(self, visible_before: datetime, limit: int) -> AsyncIterator[JobRecord]:
        """Queued jobs whose message should have been visible before the cutoff."""
        return self._query("status eq @status and visibleAt lt @cutoff",
                           {"status": JobStatus.QUEUED.value, "cutoff": visible_before}, limit)

    def expired_leases(self, now: datetime, limit: int) -> AsyncIterator[JobRecord]:
        """Running jobs whose lease ran out: their worker stopped renewing it."""
        return self._query("status eq @status and leaseExpiresAt lt @now",
                           {"status": JobStatus.RUNNING.value, "now": now}, limit)

    def pending_outcomes(self, terminal_before: datetime, limit: int) -> AsyncIterator[JobRecord]:
        """Terminal jobs whose outcome event is still owed after the grace period."""
        return self._query("outcomePending eq @pending and terminalAt lt @cutoff",
                           {"pending": True, "cutoff": terminal_before}, limit)

    def finished_before(self, cutoff: datetime, limit: int) -> AsyncIterator[JobRecord]:
        """Terminal jobs older than the retention cutoff."""
        return self._query("terminalAt lt @cutoff", {"cutoff": cutoff}, limit)

    async def _query(self, query_filter: str, parameters: dict[str, Any], limit: int) -> AsyncIterator[JobRecord]:
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

    async def purge(self, record: JobRecord) -> bool:
        """Retention: the job's other rows (its once-markers, and history rows of the layout before one
        entity per job) found by one keys-only query of its partition and deleted in batches, then its
        entity, If-Match the ETag it was read with. False: it changed since (it is kept)."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ne @status", select=["PartitionKey", "RowKey"],
            parameters={"pk": str(record.job_id), "status": STATUS_ROW},
        )
        keys = [str(row["RowKey"]) async for row in rows]
        for start in range(0, len(keys), 100):
            batch: list[_Operation] = [("delete", {"PartitionKey": str(record.job_id), "RowKey": rk})
                                       for rk in keys[start:start + 100]]
            await self.table.submit_transaction(batch)
        return await self.delete(record)


def _marker_key(step_key: str) -> str:
    return MARKER_PREFIX + hashlib.sha256(step_key.encode()).hexdigest()[:40]
