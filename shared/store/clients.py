"""Storage clients, created once per process (and event loop), never per invocation.

Connections follow the Functions host's rules for ``AzureWebJobsStorage``: a connection string
in the setting itself wins; otherwise identity-based settings (``__accountName`` or
``__{blob,queue,table}ServiceUri`` with ``__credential``/``__clientId``) and a token credential.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.config import STORAGE_CONNECTION, Settings

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


@dataclass
class StorageClients:
    """The three service clients the app uses; every store and queue gets its clients here."""

    tables: TableServiceClient
    queues: QueueServiceClient
    blobs: BlobServiceClient
    credential: AsyncTokenCredential | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        transport_factory: TransportFactory | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> StorageClients:
        """Build the clients. ``client_options`` reach every client (e.g. ``raw_request_hook``,
        azure-core's per-request hook, which tests use to count round trips and inject faults)."""

        def options() -> dict[str, Any]:
            extra = dict(client_options or {})
            if transport_factory:
                extra["transport"] = transport_factory()
            return extra

        conn = settings.storage.get(STORAGE_CONNECTION, "").strip()
        if conn:
            if conn.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
                conn = DEVELOPMENT_STORAGE
            return cls(
                tables=TableServiceClient.from_connection_string(conn, **options()),
                queues=QueueServiceClient.from_connection_string(conn, **options()),
                blobs=BlobServiceClient.from_connection_string(conn, **options()),
            )
        credential = _identity_credential(settings.storage)
        return cls(
            tables=TableServiceClient(service_endpoint(settings.storage, "table"), credential=credential, **options()),
            queues=QueueServiceClient(service_endpoint(settings.storage, "queue"), credential=credential, **options()),
            blobs=BlobServiceClient(service_endpoint(settings.storage, "blob"), credential=credential, **options()),
            credential=credential,
        )

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
        await self.tables.close()
        await self.queues.close()
        await self.blobs.close()
        if self.credential is not None:
            await self.credential.close()
