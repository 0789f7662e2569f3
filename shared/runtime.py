"""The process-wide wiring: settings, storage clients, status store, queues and job types.

One Runtime per process and event loop (the aio clients belong to the loop that created them):
functions call ``await provider()``; the first call builds it and makes sure the tables, queues
and containers exist (in Azure the template creates them; locally and in tests this does).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.data.tables.aio import TableClient

from shared.auth import TokenValidator
from shared.config import Settings, load_settings
from shared.contract import utc_now
from shared.job_index import JobIndex
from shared.queues import JobQueues
from shared.registry import JobRegistry
from shared.status_store import StatusStore
from shared.storage import StorageClients, TransportFactory
from shared.tenant_data import TenantFiles, TenantRows

logger = logging.getLogger("jobs.runtime")


@dataclass
class Runtime:
    settings: Settings
    registry: JobRegistry
    clients: StorageClients
    clock: Callable[[], datetime] = utc_now
    store: StatusStore = field(init=False)
    queues: JobQueues = field(init=False)
    validator: TokenValidator = field(init=False)
    index: JobIndex = field(init=False)  # list and quota rows (they live in the jobs table)
    _index_table: TableClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.validator = TokenValidator(self.settings)
        self._index_table = self.clients.table(self.settings.index_table)
        self.store = StatusStore(self.clients.table(self.settings.jobs_table), self.clock)
        self.index = JobIndex(self.store.table)
        self.queues = JobQueues(
            self.clients, self.settings.jobs_queue, self.settings.poison_queue, self.settings.outcomes_queue
        )

    def files(self, tenant_id: uuid.UUID) -> TenantFiles:
        return TenantFiles(self.clients, tenant_id)

    def index_rows(self, tenant_id: uuid.UUID) -> TenantRows:
        return TenantRows(self._index_table, tenant_id)

    async def ensure_resources(self) -> None:
        """Create what the app uses if missing; tolerate a lack of permission (infra creates it)."""
        s = self.settings
        creations: list[Awaitable[object]] = [
            self.clients.tables.create_table(name) for name in (s.jobs_table, s.index_table)
        ]
        creations += [
            self.clients.queues.create_queue(name) for name in (s.jobs_queue, s.poison_queue, s.outcomes_queue)
        ]
        creations += [
            self.clients.blobs.create_container(name)
            for name in (s.documents_container, s.analysis_container, s.mail_container)
        ]
        for result in await asyncio.gather(*creations, return_exceptions=True):
            if isinstance(result, ResourceExistsError) or not isinstance(result, BaseException):
                continue
            if isinstance(result, HttpResponseError) and result.status_code == 403:
                logger.warning("no permission to create a storage resource; expecting infra to have made it")
                continue
            raise result

    async def close(self) -> None:
        await self.clients.close()


class RuntimeProvider:
    """Builds the Runtime lazily, once per event loop, from the environment."""

    def __init__(
        self,
        registry: JobRegistry,
        *,
        settings: Callable[[], Settings] = load_settings,
        transport_factory: TransportFactory | None = None,
        client_options: Mapping[str, Any] | None = None,
    ):
        self.registry = registry
        self._settings = settings
        self._transport_factory = transport_factory
        self._client_options = client_options
        self._runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    async def __call__(self) -> Runtime:
        loop = asyncio.get_running_loop()
        runtime = self._runtimes.get(loop)
        if runtime is not None:
            return runtime
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            runtime = self._runtimes.get(loop)
            if runtime is None:
                settings = self._settings()
                clients = StorageClients.create(settings, self._transport_factory, self._client_options)
                runtime = Runtime(settings, self.registry, clients)
                await runtime.ensure_resources()
                self._runtimes[loop] = runtime
        return runtime

    async def close(self) -> None:
        """Close the current loop's runtime (tests and devhost shutdown)."""
        runtime = self._runtimes.pop(asyncio.get_running_loop(), None)
        if runtime is not None:
            await runtime.close()
