"""Tenant-scoped access to the data handlers work on: blobs and table rows.

Handlers never see SDK clients or other tenants' names: every blob path is
``<container>/<tenantId>/<name>`` and every table partition is ``<tenantId>|<partition>``,
built here from the job's tenant, so no request can make a handler touch another tenant's data.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient
from azure.storage.blob import ContentSettings

from shared.domain.errors import ErrorCode, PermanentJobError
from shared.store.clients import StorageClients

MAX_SUBJECT_BYTES = 16 * 1024 * 1024
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,500}$")
_SAFE_KEY = re.compile(r"^[^/\\#?\x00-\x1f\x7f-\x9f]{1,512}$")


def _blob_name(tenant_id: uuid.UUID, name: str) -> str:
    if not _SAFE_NAME.match(name) or ".." in name.split("/") or "//" in name:
        raise ValueError(f"unsafe blob name {name!r}")
    return f"{tenant_id}/{name}"


class TenantFiles:
    """Blobs of one tenant."""

    def __init__(self, clients: StorageClients, tenant_id: uuid.UUID):
        self._clients = clients
        self.tenant_id = tenant_id

    async def read_bytes(self, container: str, name: str, *, limit: int = MAX_SUBJECT_BYTES) -> bytes:
        """The blob's content; a missing blob is the job's permanent SUBJECT_NOT_FOUND."""
        blob = self._clients.container(container).get_blob_client(_blob_name(self.tenant_id, name))
        try:
            props = await blob.get_blob_properties()
            if props.size > limit:
                raise PermanentJobError(ErrorCode.SUBJECT_INVALID, f"subject is larger than {limit} bytes")
            stream = await blob.download_blob()
            return await stream.readall()
        except ResourceNotFoundError as exc:
            raise PermanentJobError(ErrorCode.SUBJECT_NOT_FOUND, f"{container}/<tenant>/{name} not found") from exc

    async def read_text(self, container: str, name: str) -> str:
        data = await self.read_bytes(container, name)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PermanentJobError(ErrorCode.SUBJECT_INVALID, "subject is not UTF-8 text") from exc

    async def write_json(self, container: str, name: str, value: Any) -> None:
        """Overwrite (idempotent): writing the same result twice leaves the same blob."""
        blob = self._clients.container(container).get_blob_client(_blob_name(self.tenant_id, name))
        body = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2).encode()
        await blob.upload_blob(
            body, overwrite=True, content_settings=ContentSettings(content_type="application/json")
        )

    async def exists(self, container: str, name: str) -> bool:
        blob = self._clients.container(container).get_blob_client(_blob_name(self.tenant_id, name))
        return bool(await blob.exists())


class RowChanged(Exception):
    """A conditional row write found the row changed (or present) since it was read."""


class TenantRows:
    """Rows of one tenant in one table, grouped in partitions the tenant cannot escape."""

    def __init__(self, table: TableClient, tenant_id: uuid.UUID):
        self._table = table
        self.tenant_id = tenant_id

    def partition(self, name: str) -> str:
        key = f"{self.tenant_id}|{name}"
        if not _SAFE_KEY.match(key):
            raise ValueError(f"unsafe partition name {name!r}")
        return key

    async def upsert(self, partition: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Idempotent upserts in entity-group transactions of up to 100 rows."""
        pk = self.partition(partition)
        batch: list[Any] = []
        count = 0
        for row in rows:
            batch.append(("upsert", {**row, "PartitionKey": pk}, {"mode": UpdateMode.REPLACE}))
            if len(batch) == 100:
                count += len(await self._table.submit_transaction(batch))
                batch = []
        if batch:
            count += len(await self._table.submit_transaction(batch))
        return count

    async def keys(self, partition: str) -> list[str]:
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": self.partition(partition)}, select=["RowKey"]
        )
        return [row["RowKey"] async for row in rows]

    async def get(self, partition: str, row_key: str) -> dict[str, Any] | None:
        try:
            return dict(await self._table.get_entity(self.partition(partition), row_key))
        except ResourceNotFoundError:
            return None

    async def get_versioned(self, partition: str, row_key: str) -> tuple[dict[str, Any] | None, str | None]:
        """The row and its ETag (None, None when absent), for a later ``put_if``."""
        try:
            entity = await self._table.get_entity(self.partition(partition), row_key)
        except ResourceNotFoundError:
            return None, None
        return dict(entity), entity.metadata.get("etag")

    async def put_if(self, partition: str, row: Mapping[str, Any], etag: str | None) -> str:
        """Write a row only if it is unchanged since read (or, with no ETag, only if it is absent).
        Raises RowChanged otherwise; returns the new ETag."""
        entity = {**row, "PartitionKey": self.partition(partition)}
        try:
            if etag is None:
                metadata = await self._table.create_entity(entity)
            else:
                metadata = await self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise RowChanged(str(row.get("RowKey"))) from exc
        return str(metadata.get("etag"))

    async def write_fenced(self, partition: str, fence: Mapping[str, Any], etag: str, *,
                           upserts: Iterable[Mapping[str, Any]] = (), deletes: Iterable[str] = ()) -> str:
        """Upsert and delete rows in entity-group transactions that each also rewrite the ``fence`` row
        If-Match ``etag``; returns the fence's new ETag.

        This is how a lock holder writes: a transaction is atomic, so once the fence changed (the lock
        was taken by someone else) the next batch fails as a whole with RowChanged and none of its
        rows land. Up to 99 rows per transaction (the 100th operation is the fence)."""
        pk = self.partition(partition)
        fenced = {**fence, "PartitionKey": pk}
        ops: list[Any] = [("upsert", {**row, "PartitionKey": pk}, {"mode": UpdateMode.REPLACE}) for row in upserts]
        ops += [("delete", {"PartitionKey": pk, "RowKey": key}) for key in deletes]
        for start in range(0, max(1, len(ops)), 99):
            guard = ("update", fenced, {"mode": UpdateMode.REPLACE, "etag": etag,
                                        "match_condition": MatchConditions.IfNotModified})
            try:
                results = await self._table.submit_transaction([*ops[start:start + 99], guard])
            except TableTransactionError as exc:
                if exc.status_code in (404, 412):
                    raise RowChanged(str(fence.get("RowKey"))) from exc
                raise
            etag = str(results[-1]["etag"])
        return etag

    async def delete(self, partition: str, row_keys: Iterable[str]) -> int:
        pk = self.partition(partition)
        keys = list(row_keys)
        for start in range(0, len(keys), 100):
            batch: list[Any] = [("delete", {"PartitionKey": pk, "RowKey": rk}) for rk in keys[start:start + 100]]
            await self._table.submit_transaction(batch)
        return len(keys)
