"""The storage transport: no environment lookups, one pool sized for the host, stale pooled
connections retried. Real SDK clients against a real Azurite (through a TCP relay where a test
needs a connection to die)."""

from __future__ import annotations

import asyncio
import json
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from devhost.azurite import Azurite, connection_string, free_port
from shared.store.clients import StorageClients
from shared.store.transport import HOST_JSON, PooledTransport, host_concurrency
from tests.store.network import Relay
from tests.support import make_settings


def transports(clients: StorageClients) -> list[Any]:
    """The transports at the bottom of each service client's pipeline (SDK internals, read only)."""
    return [clients.tables._client._client._pipeline._transport,
            clients.queues._pipeline._transport, clients.blobs._pipeline._transport]


def relayed(azurite: Azurite, *, table: int | None = None, queue: int | None = None) -> str:
    return connection_string(azurite.blob_port, queue or azurite.queue_port, table or azurite.table_port)


async def test_the_transport_ignores_proxy_variables_and_netrc_by_default(azurite: Azurite) -> None:
    clients = StorageClients.create(make_settings(azurite.connection_string))
    try:
        assert clients.pool is not None and clients.pool.trust_env is False
        for path in (clients, clients.api):
            assert path.pool is clients.pool  # one pool for both paths
            for transport in transports(path):
                assert isinstance(transport, PooledTransport) and transport.use_env_settings is False
                assert transport.session is clients.pool
    finally:
        await clients.close()


async def test_the_proxy_setting_brings_back_the_environment(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy variable pointing at nothing, the default transport never looks at it (calls
    reach Azurite); with JOBS_STORAGE_USE_ENV_PROXY=true every call goes to the (dead) proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    monkeypatch.setenv("http_proxy", dead_proxy)

    lean = StorageClients.create(make_settings(azurite.connection_string))
    try:
        await lean.api.tables.create_table(f"t{uuid.uuid4().hex[:12]}")
    finally:
        await lean.close()

    proxied = StorageClients.create(make_settings(azurite.connection_string, JOBS_STORAGE_USE_ENV_PROXY="true"))
    try:
        assert proxied.pool is not None and proxied.pool.trust_env is True
        assert all(t.use_env_settings for path in (proxied, proxied.api) for t in transports(path))
        with pytest.raises(ServiceRequestError):
            await proxied.api.tables.create_table(f"t{uuid.uuid4().hex[:12]}")
    finally:
        await proxied.close()


async def test_the_pool_limit_comes_from_the_setting(azurite: Azurite) -> None:
    """JOBS_STORAGE_POOL_SIZE=2: eight concurrent reads share two connections (the relay sees them)."""
    async with Relay(azurite.table_port) as relay:
        clients = StorageClients.create(make_settings(relayed(azurite, table=relay.port),
                                                      JOBS_STORAGE_POOL_SIZE="2"))
        try:
            assert clients.pool is not None and clients.pool.connector is not None
            assert clients.pool.connector.limit == 2
            name = f"t{uuid.uuid4().hex[:12]}"
            await clients.tables.create_table(name)
            table = clients.table(name)
            await table.create_entity({"PartitionKey": "p", "RowKey": "r"})
            await asyncio.gather(*(table.get_entity("p", "r") for _ in range(8)),
                                 *(clients.api.table(name).get_entity("p", "r") for _ in range(8)))
            assert relay.peak <= 2 and relay.opened <= 2
        finally:
            await clients.close()
        assert clients.pool.closed and clients.api.pool is clients.pool


def test_the_default_pool_limit_is_the_hosts_concurrency(tmp_path: Path) -> None:
    """Two queue functions x (batchSize + newBatchThreshold) + maxConcurrentRequests + the timer."""
    config = json.loads(HOST_JSON.read_text())
    queues, http = config["extensions"]["queues"], config["extensions"]["http"]
    assert host_concurrency() == 2 * (queues["batchSize"] + queues["newBatchThreshold"]) \
        + http["maxConcurrentRequests"] + 1 == 149
    assert make_settings("UseDevelopmentStorage=true").storage_pool_size is None  # so the default applies

    custom = tmp_path / "host.json"
    custom.write_text(json.dumps({"extensions": {"queues": {"batchSize": 32, "newBatchThreshold": 16},
                                                 "http": {"maxConcurrentRequests": -1}}}))
    assert host_concurrency(custom) == 2 * 48 + 100 + 1  # unbounded HTTP counts as aiohttp's default 100
    custom.write_text("not json")
    assert host_concurrency(custom) == host_concurrency(tmp_path / "missing.json")  # the host's defaults
    assert host_concurrency(tmp_path / "missing.json") >= 2 * 16 + 100 + 1


async def test_a_stale_pooled_connection_is_retried_not_surfaced(azurite: Azurite) -> None:
    """The server closes a pooled connection just as a request goes out on it: every write the app
    makes (insert POST, entity-group POST $batch, merge PATCH, queue POST) is sent again on a new
    connection, on both paths. The SDK's own tables policy does not retry the POST: checked too,
    so the relay really produces the failure."""
    async with Relay(azurite.table_port) as tables, Relay(azurite.queue_port) as queues:
        conn = relayed(azurite, table=tables.port, queue=queues.port)
        clients = StorageClients.create(make_settings(conn))
        name, queue_name = f"t{uuid.uuid4().hex[:12]}", f"q{uuid.uuid4().hex[:12]}"
        try:
            await clients.tables.create_table(name)
            await clients.queues.create_queue(queue_name)
            for n, path in enumerate((clients, clients.api)):
                table, queue, pk = path.table(name), path.queue(queue_name), f"p{n}"
                writes = [
                    partial(table.create_entity, {"PartitionKey": pk, "RowKey": "a"}),
                    partial(table.submit_transaction, [("create", {"PartitionKey": pk, "RowKey": "b"}),
                                                       ("create", {"PartitionKey": pk, "RowKey": "c"})]),
                    partial(table.update_entity, {"PartitionKey": pk, "RowKey": "a", "v": 1}, mode=UpdateMode.MERGE),
                    partial(queue.send_message, "x"),
                ]
                for write in writes:
                    relay = queues if write.func == queue.send_message else tables
                    before = relay.drops
                    relay.drop_next_reuse()
                    await write()
                    assert relay.drops == before + 1, "the relay did not get to drop a reused connection"
                assert (await table.get_entity(pk, "a"))["v"] == 1
                rows = [e async for e in table.query_entities("PartitionKey eq @pk", parameters={"pk": pk})]
                assert len(rows) == 3
            assert len(await clients.queue(queue_name).peek_messages(max_messages=32)) == 2

            sdk_default = TableClient.from_connection_string(conn, name)
            async with sdk_default:
                await sdk_default.get_entity("p0", "a")
                tables.drop_next_reuse()
                with pytest.raises(ServiceRequestError):
                    await sdk_default.create_entity({"PartitionKey": "p9", "RowKey": "a"})
        finally:
            await clients.close()
