"""Index rows that serve listing and the in-flight quota without scanning the jobs table.

They live in the jobs table, in one partition per tenant, ``idx|{tid}`` (job partitions are
keyed by jobId), so a submission indexes its job in one entity-group transaction:
- ``j|{inverted ms}_{jobId}``: every job of the tenant, newest first (``Jobs.Admin`` listings);
- ``o|{tid}|{oid}|{inverted ms}_{jobId}``: the jobs a principal submitted, newest first;
- ``l|{tid}|{oid}|{jobId}``: a job of that principal that is in flight (the quota counts these).

List rows hold only what never changes (jobType, subjectId, createdAt); the status comes from
each job's own entity. A live row is written with the job's list rows (and again by a re-drive)
and deleted alongside the job's outcome event, so the quota counts exactly the jobs whose
outcome has not been published yet. One partition per tenant bounds a tenant's index writes to
the Table service's partition target (about 2,000 entities per second: roughly 500 jobs per
second per tenant, each writing four index entities over its life); docs/operations.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.domain.record import JobRecord

MAX_TOKEN_LENGTH = 2048  # ours are ~200 characters; anything longer is not one of them
_INVERT_FROM = 10**13  # ms since 1970 stays below this until the year 2286


def index_partition(tenant_id: str) -> str:
    return f"idx|{tenant_id}"


@dataclass(frozen=True)
class ListScope:
    """One listing: a partition and the RowKey prefix of its rows."""

    partition: str
    prefix: str

    @property
    def upper(self) -> str:
        """The smallest RowKey after every key with this prefix ("|" + 1 is "}")."""
        return self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)

    @property
    def name(self) -> str:
        return f"{self.partition}/{self.prefix}"


def tenant_scope(tenant_id: str) -> ListScope:
    return ListScope(index_partition(tenant_id), "j|")


def owner_scope(principal_key: str) -> ListScope:
    return ListScope(index_partition(_tenant_of(principal_key)), f"o|{principal_key}|")


_LIVE = "l|"  # the RowKey prefix of every live row of a tenant


def live_scope(principal_key: str) -> ListScope:
    return ListScope(index_partition(_tenant_of(principal_key)), f"{_LIVE}{principal_key}|")


def _tenant_of(principal_key: str) -> str:
    return principal_key.split("|", 1)[0]


def index_row_key(created_at: datetime, job_id: uuid.UUID) -> str:
    millis = int(created_at.timestamp() * 1000)
    return f"{_INVERT_FROM - millis:013d}_{job_id}"


class InvalidContinuation(ValueError):
    """A continuation token that is malformed or continues another listing."""


@dataclass(frozen=True)
class IndexPage:
    job_ids: list[uuid.UUID]
    continuation: str | None


def _scope(scope: ListScope) -> str:
    return hashlib.sha256(scope.name.encode()).hexdigest()[:16]


def encode_token(token: dict[str, Any] | None, scope: ListScope) -> str | None:
    """The service's continuation markers, bound to the listing they continue."""
    if not token:
        return None
    raw = {"s": _scope(scope), "pk": token.get("PartitionKey"), "rk": token.get("RowKey")}
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str | None, scope: ListScope) -> dict[str, Any] | None:
    """Opaque to callers; refused unless it continues the caller's own listing."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidContinuation("continuationToken is not valid")
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        raw_scope, pk, rk = raw["s"], raw["pk"], raw["rk"]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as exc:
        raise InvalidContinuation("continuationToken is not valid") from exc
    if raw_scope != _scope(scope) or not isinstance(pk, str) or not isinstance(rk, str):
        raise InvalidContinuation("continuationToken is not valid")
    return {"PartitionKey": pk, "RowKey": rk}


class JobIndex:
    def __init__(self, table: TableClient):
        self.table = table

    async def add(self, record: JobRecord, principal_key: str) -> None:
        """Index a job for its tenant and its submitter and mark it live: one transaction, all upserts
        (a repeat, e.g. a replay repairing what a crash left unwritten, changes nothing)."""
        await self.table.submit_transaction(self._rows(record, principal_key))

    async def add_many(self, records: list[JobRecord], principal_key: str) -> None:
        """``add`` for a batch of one principal's jobs: their rows share the tenant's partition, so 33 jobs
        (99 rows) go in each transaction, all transactions at once."""
        rows = [row for record in records for row in self._rows(record, principal_key)]
        await asyncio.gather(*(self.table.submit_transaction(rows[start:start + 99])
                               for start in range(0, len(rows), 99)))

    @staticmethod
    def _rows(record: JobRecord, principal_key: str) -> list[Any]:
        row_key = index_row_key(record.created_at, record.job_id)
        row = {"jobId": str(record.job_id), "jobType": record.job_type, "subjectId": str(record.subject_id),
               "createdAt": record.created_at}
        tenant, owner, live = tenant_scope(str(record.tenant_id)), owner_scope(principal_key), live_scope(principal_key)
        if owner.partition != tenant.partition:
            raise ValueError(f"principal {principal_key} is not of the job's tenant {record.tenant_id}")
        rows: list[Any] = [
            ("upsert", {**row, "PartitionKey": tenant.partition, "RowKey": tenant.prefix + row_key}, _REPLACE),
            ("upsert", {**row, "PartitionKey": owner.partition, "RowKey": owner.prefix + row_key}, _REPLACE),
            ("upsert", {"PartitionKey": live.partition, "RowKey": f"{live.prefix}{record.job_id}"}, _REPLACE),
        ]
        return rows

    async def mark_live(self, job_id: uuid.UUID, principal_key: str) -> None:
        """The job is in flight again (a re-drive): it counts against the principal's quota."""
        live = live_scope(principal_key)
        await self.table.upsert_entity({"PartitionKey": live.partition, "RowKey": f"{live.prefix}{job_id}"})

    async def finished(self, record: JobRecord) -> None:
        """The job's outcome is out: it no longer counts against its submitters' quotas."""
        await asyncio.gather(*(self._delete(live_scope(key).partition, f"{live_scope(key).prefix}{record.job_id}")
                               for key in record.submitters))

    async def live_jobs(self, principal_key: str, limit: int) -> list[uuid.UUID]:
        """Up to ``limit`` of the principal's jobs in flight (one indexed range query)."""
        live = live_scope(principal_key)
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": live.partition, "lo": live.prefix, "hi": live.upper},
            select=["RowKey"], results_per_page=min(limit, 1000),
        )
        found: list[uuid.UUID] = []
        async for row in rows:
            found.append(uuid.UUID(str(row["RowKey"])[len(live.prefix):]))
            if len(found) >= limit:
                break
        return found

    async def live_before(self, tenant_id: str, cutoff: datetime, limit: int) -> list[uuid.UUID]:
        """Up to ``limit`` jobs of the tenant whose live rows were written before ``cutoff`` (one indexed
        range query of the tenant's partition): maintenance's candidates for an outcome that a crash
        kept from being sent (the live row goes only after the event is out)."""
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and Timestamp lt @cutoff",
            parameters={"pk": index_partition(tenant_id), "lo": _LIVE, "hi": "l}", "cutoff": cutoff},
            select=["RowKey"], results_per_page=min(limit, 1000),
        )
        found: dict[uuid.UUID, None] = {}
        async for row in rows:
            found[uuid.UUID(str(row["RowKey"]).rsplit("|", 1)[-1])] = None
            if len(found) >= limit:
                break
        return list(found)

    async def page(
        self, scope: ListScope, filters: dict[str, str], size: int, token: dict[str, Any] | None
    ) -> IndexPage:
        """One page of a listing's rows, newest first; ``filters`` are equality filters on row properties."""
        clauses = ["PartitionKey eq @pk", "RowKey ge @lo", "RowKey lt @hi"]
        parameters: dict[str, Any] = {"pk": scope.partition, "lo": scope.prefix, "hi": scope.upper}
        for name, value in filters.items():
            clauses.append(f"{name} eq @{name}")
            parameters[name] = value
        # The tables SDK's continuation token is a dict (next PartitionKey/RowKey), typed as str.
        pages: Any = self.table.query_entities(
            " and ".join(clauses), parameters=parameters, select=["jobId"], results_per_page=size,
        ).by_page(continuation_token=token)  # type: ignore[arg-type]
        job_ids: list[uuid.UUID] = []
        try:
            page = await pages.__anext__()
            job_ids = [uuid.UUID(str(row["jobId"])) async for row in page]
        except StopAsyncIteration:
            return IndexPage([], None)
        return IndexPage(job_ids, encode_token(pages.continuation_token, scope))

    async def remove(self, record: JobRecord) -> None:
        """Drop the job's index rows (retention purge); rows already gone are fine."""
        row_key = index_row_key(record.created_at, record.job_id)
        tenant = tenant_scope(str(record.tenant_id))
        targets = [tenant.prefix + row_key]
        for principal in record.submitters:
            targets += [owner_scope(principal).prefix + row_key, f"{live_scope(principal).prefix}{record.job_id}"]
        await asyncio.gather(*(self._delete(tenant.partition, rk) for rk in targets))

    async def _delete(self, partition: str, row_key: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await self.table.delete_entity(partition, row_key)


_REPLACE = {"mode": UpdateMode.REPLACE}
