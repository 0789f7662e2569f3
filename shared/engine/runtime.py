"""The process-wide wiring: settings, storage clients, status store, queues, lifecycle, job types.

One Runtime per process and event loop (the aio clients belong to the loop that created them):
functions call ``await provider()``; the first call builds it and makes sure the tables, queues
and containers exist (in Azure the template creates them; locally and in tests this does).
The containers and tables come from the job types' declarations, not from names known here.
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

from shared.config import Settings, StorageName, load_settings
from shared.domain.contract import utc_now
from shared.engine.lifecycle import Lifecycle
from shared.engine.watch import Watchers
from shared.handlers import JobRegistry
from shared.store.clients import StorageClients, TransportFactory
from shared.store.job_list import JobIndex
from shared.store.queues import JobQueues
from shared.store.status_table import StatusStore
from shared.store.tenant_data import TenantFiles, TenantRows
from shared.store.upload_urls import UploadUrls

logger = logging.getLogger("jobs.runtime")


@dataclass(eq=False)  # identity: one Runtime is one process's wiring (and a weak-key for the API's caches)
class Runtime:
    settings: Settings
    registry: JobRegistry
    clients: StorageClients
    clock: Callable[[], datetime] = utc_now
    store: StatusStore = field(init=False)
    queues: JobQueues = field(init=False)
    index: JobIndex = field(init=False)  # list and quota rows (they live in the jobs table)
    lifecycle: Lifecycle = field(init=False)
    watchers: Watchers = field(init=False, repr=False)  # long-polling status requests of this process
    upload_urls: UploadUrls = field(init=False, repr=False)
    # The HTTP routes' wiring: the same, over the API path's clients (``clients.api``: fast 503s).
    # Worker, poison and maintenance use this runtime's own ``clients`` (the background path).
    api: Runtime = field(init=False, repr=False)
    _tables: dict[str, TableClient] = field(init=False, repr=False)  # the job types' tables, by setting

    def __post_init__(self) -> None:
        self.store = StatusStore(self.clients.table(self.settings.jobs_table), self.clock)
        self.index = JobIndex(self.store.table)
        self.queues = JobQueues(
            self.clients, self.settings.jobs_queue, self.settings.poison_queue, self.settings.outcomes_queue,
            self.settings.outcome_ttl_seconds,
        )
        self.lifecycle = Lifecycle(self.store, self.queues, self.index, self.clock)
        self.watchers = Watchers(self.settings.status_max_waiters)
        self.upload_urls = UploadUrls(self.clients.blobs)
        self._tables = {n.setting: self.clients.table(self.settings.name_of(n)) for n in self.registry.tables()}
        self.api = self if self.clients.api is self.clients else Runtime(
            self.settings, self.registry, self.clients.api, self.clock)

    def files(self, tenant_id: uuid.UUID) -> TenantFiles:
        return TenantFiles(self.clients, tenant_id)

    def rows(self, tenant_id: uuid.UUID, table: StorageName) -> TenantRows:
        """A tenant's rows in a table a job type declared (one client per table, made at startup)."""
        client = self._tables.get(table.setting)
        if client is None:
            raise ValueError(f"no job type declares the table {table.setting}")
        return TenantRows(client, tenant_id)

    async def ensure_resources(self) -> None:
        """Create what the app uses if missing; tolerate a lack of permission (infra creates it).
        On the API path's clients: it runs on the first invocation's critical path (maybe an HTTP
        request), and a failure is simply tried again on the next one."""
        s, clients = self.settings, self.clients.api
        tables = [s.jobs_table, *(s.name_of(n) for n in self.registry.tables())]
        creations: list[Awaitable[object]] = [clients.tables.create_table(name) for name in tables]
        creations += [
            clients.queues.create_queue(name) for name in (s.jobs_queue, s.poison_queue, s.outcomes_queue)
        ]
        creations += [clients.blobs.create_container(s.name_of(n)) for n in self.registry.containers()]
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
    """Builds the Runtime lazily, once per event loop, from the environment.

    The settings are validated once when the provider is made (at import of function_app), so a
    malformed setting stops the app at startup with the setting's name, not on every request.
    """

    def __init__(
        self,
        registry: JobRegistry,
        *,
        transport_factory: TransportFactory | None = None,
        client_options: Mapping[str, Any] | None = None,
    ):
        self.registry = registry
        self._transport_factory = transport_factory
        self._client_options = client_options
        self._runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self.settings()

    def settings(self) -> Settings:
        return load_settings(storage_names=self.registry.storage_names())

    async def __call__(self) -> Runtime:
        loop = asyncio.get_running_loop()
        runtime = self._runtimes.get(loop)
        if runtime is not None:
            return runtime
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            runtime = self._runtimes.get(loop)
            if runtime is None:
                settings = self.settings()
                clients = StorageClients.create(settings, self._transport_factory, self._client_options)
                runtime = Runtime(settings, self.registry, clients)
                try:
                    await runtime.ensure_resources()
                except BaseException:  # storage down while starting: the next invocation tries again
                    await runtime.close()  # with clients of its own; these would leak their connection pool
                    raise
                self._runtimes[loop] = runtime
        return runtime

    async def close(self) -> None:
        """Close the current loop's runtime (tests and devhost shutdown)."""
        runtime = self._runtimes.pop(asyncio.get_running_loop(), None)
        if runtime is not None:
            await runtime.close()
