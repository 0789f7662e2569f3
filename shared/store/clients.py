"""Storage clients, created once per process (and event loop), never per invocation.

Connections follow the Functions host's rules for ``AzureWebJobsStorage``: a connection string
in the setting itself wins; otherwise identity-based settings (``__accountName`` or
``__{blob,queue,table}ServiceUri`` with ``__credential``/``__clientId``) and a token credential.

There are two sets of clients, one per path (shared/store/retries.py): the background set
(worker, poison, maintenance) and the API set (the HTTP routes), which differ only in their retry
policy and per-try timeouts. Both share one connection pool and one credential
(shared/store/transport.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.data.tables.aio._policies_async import AsyncTablesRetryPolicy
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.config import STORAGE_CONNECTION, Settings
from shared.store.retries import API, BACKGROUND, StoragePolicy
from shared.store.transport import PooledTransport, open_pool

# The storage SDKs send both legacy and azure.core.rest requests through one transport (they type it
# unparameterized themselves), so the request/response type parameters are left open.
TransportFactory = Callable[[], AsyncHttpTransport[Any, Any]]
# The emulator's well-known account and key (published by Azurite; not a secret).
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def _identity_credential(storage: Mapping[str, str]) -> AsyncTokenCredential:
    # Imported here, not at the top: azure.identity (with msal) costs ~45 ms of cold start, and only
    # identity-based connections need it.
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential  # noqa: PLC0415 - lazy on purpose

    client_id = storage.get(f"{STORAGE_CONNECTION}__clientId") or None
    if storage.get(f"{STORAGE_CONNECTION}__credential", "").lower() == "managedidentity":
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def service_endpoint(storage: Mapping[str, str], service: str) -> str:
    """The service URI for an identity-based connection, as the host derives it."""
    account = storage.get(f"{STORAGE_CONNECTION}__accountName")
    if account:
        return f"https://{account}.{service}.core.windows.net"
    uri = storage.get(f"{STORAGE_CONNECTION}__{service}ServiceUri")
    if not uri:
        raise ValueError(
            f"storage is not configured: set {STORAGE_CONNECTION} to a connection string, or "
            f"{STORAGE_CONNECTION}__accountName / {STORAGE_CONNECTION}__{service}ServiceUri"
        )
    return uri


class _TableService(TableServiceClient):
    """A TableServiceClient that takes ``retry_policy=`` as the queue and blob clients do.

    azure-data-tables 12.7 always builds its own retry policy from the ``retry_*`` keywords; this
    puts the given one in its place. The table clients it hands out reuse its policies."""

    def _configure_policies(self, *, audience: str | None = None, **kwargs: Any) -> list[Any]:
        policies: list[Any] = super()._configure_policies(audience=audience, **kwargs)
        retry = kwargs.get("retry_policy")
        return [retry if retry is not None and isinstance(p, AsyncTablesRetryPolicy) else p for p in policies]


@dataclass(eq=False)
class StorageClients:
    """One path's three service clients; every store and queue gets its clients here.

    ``create`` returns the background set; its ``api`` is the API set, over the same pool and
    credential (the API set's ``api`` is itself). Closing the background set closes both, the
    pool and the credential."""

    tables: TableServiceClient
    queues: QueueServiceClient
    blobs: BlobServiceClient
    credential: AsyncTokenCredential | None = None
    policy: StoragePolicy = BACKGROUND
    pool: aiohttp.ClientSession | None = field(default=None, repr=False)  # None with a transport_factory
    api: StorageClients = field(init=False, repr=False)
    _owner: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self.api = self

    @classmethod
    def create(
        cls,
        settings: Settings,
        transport_factory: TransportFactory | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> StorageClients:
        """Build both sets (call inside the event loop that will use them). ``client_options`` reach
        every client of both (e.g. ``raw_request_hook``, azure-core's per-request hook, which tests
        use to count round trips and inject faults). ``transport_factory`` replaces the pooled
        transports (one call per client, timeouts its own); the retry policies apply either way."""
        conn = settings.storage.get(STORAGE_CONNECTION, "").strip()
        if conn.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
            conn = DEVELOPMENT_STORAGE
        credential = None if conn else _identity_credential(settings.storage)
        pool = None if transport_factory else open_pool(settings)

        def transport(policy: StoragePolicy) -> AsyncHttpTransport[Any, Any]:
            if transport_factory is not None:
                return transport_factory()
            assert pool is not None
            return PooledTransport(pool, policy)

        def build(policy: StoragePolicy, owner: bool) -> StorageClients:
            def options(retry_policy: Any) -> dict[str, Any]:
                return {**(client_options or {}), "transport": transport(policy), "retry_policy": retry_policy}

            if conn:
                return cls(
                    tables=_TableService.from_connection_string(conn, **options(policy.tables_retry())),
                    queues=QueueServiceClient.from_connection_string(conn, **options(policy.queues_retry())),
                    blobs=BlobServiceClient.from_connection_string(conn, **options(policy.blobs_retry())),
                    policy=policy, pool=pool, _owner=owner,
                )
            return cls(
                tables=_TableService(service_endpoint(settings.storage, "table"), credential=credential,
                                     **options(policy.tables_retry())),
                queues=QueueServiceClient(service_endpoint(settings.storage, "queue"), credential=credential,
                                          **options(policy.queues_retry())),
                blobs=BlobServiceClient(service_endpoint(settings.storage, "blob"), credential=credential,
                                        **options(policy.blobs_retry())),
                credential=credential, policy=policy, pool=pool, _owner=owner,
            )

        background = build(BACKGROUND, owner=True)
        background.api = build(API, owner=False)
        return background

    def table(self, name: str) -> TableClient:
        return self.tables.get_table_client(name)

    def queue(self, name: str) -> QueueClient:
        # Base64 both ways: the Functions host expects base64 message bodies (messageEncoding).
        return self.queues.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)

    async def close(self) -> None:
        if self.api is not self:
            await self.api.close()
        await self.tables.close()
        await self.queues.close()
        await self.blobs.close()
        if not self._owner:
            return
        if self.pool is not None:
            await self.pool.close()
        if self.credential is not None:
            await self.credential.close()
