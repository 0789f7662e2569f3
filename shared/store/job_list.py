"""Index rows that serve listing and the in-flight quota without scanning the jobs table.

They live in the jobs table, in partitions of their own (job partitions are keyed by jobId):
- ``own|{tid}|{oid}``: one row per job the principal submitted, RowKey ``{inverted ms}_{jobId}``
  (newest first), and one ``live_{jobId}`` row per job that may still be in flight;
- ``ten|{tid}``: one row per job of the tenant, same RowKey, for ``Jobs.Admin`` listings.

Index rows hold only what never changes (jobType, subjectId, createdAt); the status comes from
each job's own entity. Live rows are cleaned lazily: only when a principal reaches the quota are
its live rows checked against their jobs and the finished ones dropped, so the worker never
writes here and the per-job round-trip budget is untouched.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.domain.record import JobRecord

LIVE_PREFIX = "live_"
_INVERT_FROM = 10**13  # ms since 1970 stays below this until the year 2286


def owner_partition(principal_key: str) -> str:
    return f"own|{principal_key}"


def tenant_partition(tenant_id: str) -> str:
    return f"ten|{tenant_id}"


def index_row_key(created_at: datetime, job_id: uuid.UUID) -> str:
    millis = int(created_at.timestamp() * 1000)
    return f"{_INVERT_FROM - millis:013d}_{job_id}"


class InvalidContinuation(ValueError):
    """A continuation token that is malformed or continues another listing."""


@dataclass(frozen=True)
class IndexPage:
    job_ids: list[uuid.UUID]
    continuation: str | None


def _scope(partition: str) -> str:
    return hashlib.sha256(partition.encode()).hexdigest()[:16]


def encode_token(token: dict[str, Any] | None, partition: str) -> str | None:
    """The service's continuation markers, bound to the partition they continue."""
    if not token:
        return None
    raw = {"s": _scope(partition), "pk": token.get("PartitionKey"), "rk": token.get("RowKey")}
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str | None, partition: str) -> dict[str, Any] | None:
    """Opaque to callers; refused unless it continues the caller's own listing."""
    if not token:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        scope, pk, rk = raw["s"], raw["pk"], raw["rk"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidContinuation("continuationToken is not valid") from exc
    if scope != _scope(partition) or not isinstance(pk, str) or not isinstance(rk, str):
        raise InvalidContinuation("continuationToken is not valid")
    return {"PartitionKey": pk, "RowKey": rk}


class JobIndex:
    def __init__(self, table: TableClient):
        self.table = table

    async def add(self, record: JobRecord, principal_key: str) -> None:
        """Index a job for its submitter and its tenant, and mark it live for the quota."""
        row_key = index_row_key(record.created_at, record.job_id)
        row = {"RowKey": row_key, "jobId": str(record.job_id), "jobType": record.job_type,
               "subjectId": str(record.subject_id), "createdAt": record.created_at}
        owner = owner_partition(principal_key)
        live = {"PartitionKey": owner, "RowKey": f"{LIVE_PREFIX}{record.job_id}"}
        owner_rows: list[Any] = [
            ("upsert", {**row, "PartitionKey": owner}, {"mode": UpdateMode.REPLACE}),
            ("upsert", live, {"mode": UpdateMode.REPLACE}),
        ]
        await asyncio.gather(
            self.table.submit_transaction(owner_rows),
            self.table.upsert_entity({**row, "PartitionKey": tenant_partition(str(record.tenant_id))}),
        )

    async def mark_live(self, job_id: uuid.UUID, principal_key: str) -> None:
        await self.table.upsert_entity({"PartitionKey": owner_partition(principal_key),
                                        "RowKey": f"{LIVE_PREFIX}{job_id}"})

    async def live_jobs(self, principal_key: str, limit: int) -> list[uuid.UUID]:
        rows = self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": owner_partition(principal_key), "lo": LIVE_PREFIX, "hi": "live`"},
            select=["RowKey"], results_per_page=min(limit, 1000),
        )
        found: list[uuid.UUID] = []
        async for row in rows:
            found.append(uuid.UUID(str(row["RowKey"])[len(LIVE_PREFIX):]))
            if len(found) >= limit:
                break
        return found

    async def drop_live(self, principal_key: str, job_ids: Sequence[uuid.UUID]) -> None:
        pk = owner_partition(principal_key)
        for start in range(0, len(job_ids), 100):
            batch: list[Any] = [("delete", {"PartitionKey": pk, "RowKey": f"{LIVE_PREFIX}{j}"})
                                for j in job_ids[start:start + 100]]
            await self.table.submit_transaction(batch)

    async def page(
        self, partition: str, filters: dict[str, str], size: int, token: dict[str, Any] | None
    ) -> IndexPage:
        """One page of index rows, newest first; ``filters`` are equality filters on row properties."""
        clauses = ["PartitionKey eq @pk", "RowKey lt @live"]
        parameters: dict[str, Any] = {"pk": partition, "live": LIVE_PREFIX}
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
        return IndexPage(job_ids, encode_token(pages.continuation_token, partition))

    async def remove(self, record: JobRecord) -> None:
        """Drop the job's index rows (retention purge); rows already gone are fine."""
        row_key = index_row_key(record.created_at, record.job_id)
        targets = [(tenant_partition(str(record.tenant_id)), row_key)]
        for principal in record.submitters:
            targets += [(owner_partition(principal), row_key),
                        (owner_partition(principal), f"{LIVE_PREFIX}{record.job_id}")]
        for pk, rk in targets:
            with contextlib.suppress(ResourceNotFoundError):
                await self.table.delete_entity(pk, rk)
