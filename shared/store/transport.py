"""The storage clients' HTTP transport: one aiohttp connection pool per process and event loop.

- **No environment lookups per call.** azure-core's ``AioHttpTransport`` defaults to
  ``use_env_settings=True``: its aiohttp session then looks up the proxy variables and
  ``~/.netrc`` in a worker thread on every request (measured at about 15% of the app's CPU). The
  pool is built with ``trust_env=False``; ``JOBS_STORAGE_USE_ENV_PROXY=true`` brings back
  ``HTTP(S)_PROXY`` / ``NO_PROXY`` and ``.netrc`` for a host behind a proxy.
- **One pool, sized for the host.** One ``aiohttp.ClientSession`` (one ``TCPConnector``) serves
  every table, queue and blob client of both paths (shared/store/retries.py). Its connection
  limit is ``JOBS_STORAGE_POOL_SIZE``, or else what host.json lets one instance run at once
  (``host_concurrency``): a request beyond the limit waits for a free connection, and that wait
  counts against its try's deadline.
- **A deadline per try.** aiohttp's socket timeouts bound a connect and each read, not a whole
  try (nor DNS, nor the wait for a pooled connection); ``PooledTransport`` bounds the whole try
  with the path's ``try_timeout``, so a policy's worst case is a real bound.

Each client gets its own ``PooledTransport`` over the shared session (``session_owner=False``),
rather than one transport for all: a transport carries the path's timeouts, and closing a client
closes its transport, which then must not close the pool under the other clients. The pool is
closed once, by ``StorageClients.close()`` of the set that opened it.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.exceptions import ServiceResponseTimeoutError
from azure.core.pipeline.transport._aiohttp import AioHttpTransport  # the package's lazy export is untyped

from shared.config import Settings
from shared.store.retries import StoragePolicy

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"  # next to function_app.py, as deployed
QUEUE_FUNCTIONS = 2  # function_app.py's queue triggers: run_job (jobs) and poison_job (jobs-poison)
TIMER_FUNCTIONS = 1  # maintenance
DEFAULT_HTTP_CONCURRENCY = 100  # when host.json leaves maxConcurrentRequests unbounded (-1) or unset
# What the storage SDKs give the transports they build themselves (reads of a streamed download);
# azure-core's default is 4 KiB.
DATA_BLOCK_SIZE = 256 * 1024


def host_concurrency(host_json: Path = HOST_JSON) -> int:
    """How many invocations one instance runs at once, by the host's rules: each queue function
    up to ``batchSize + newBatchThreshold`` messages, HTTP up to ``maxConcurrentRequests``, plus
    the timer. Missing values take the host's defaults (batchSize 16, newBatchThreshold
    batchSize/2 per core); an unreadable host.json counts as empty."""
    try:
        config = json.loads(host_json.read_text())
    except (OSError, ValueError):
        config = {}
    extensions = config.get("extensions", {}) if isinstance(config, dict) else {}
    queues, http = extensions.get("queues", {}), extensions.get("http", {})
    batch = int(queues.get("batchSize", 16))
    threshold = int(queues.get("newBatchThreshold", batch // 2 * (os.cpu_count() or 1)))
    requests = int(http.get("maxConcurrentRequests", -1))
    if requests <= 0:
        requests = DEFAULT_HTTP_CONCURRENCY
    return QUEUE_FUNCTIONS * (batch + threshold) + requests + TIMER_FUNCTIONS


def pool_size(settings: Settings) -> int:
    return settings.storage_pool_size or host_concurrency()


def open_pool(settings: Settings) -> aiohttp.ClientSession:
    """The connection pool; call it inside the event loop that will use it (aiohttp binds to it).

    Configured as azure-core configures the sessions it makes itself (no cookies, no automatic
    decompression: the transport decodes bodies itself), plus the limit and ``trust_env``."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pool_size(settings)),
        trust_env=settings.storage_use_env_proxy,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


class PooledTransport(AioHttpTransport):
    """azure-core's aiohttp transport over the shared pool, with the path's timeouts."""

    def __init__(self, session: aiohttp.ClientSession, policy: StoragePolicy):
        super().__init__(
            session=session, session_owner=False, use_env_settings=session.trust_env,
            connection_timeout=policy.connect_timeout, read_timeout=policy.try_timeout,
            connection_data_block_size=DATA_BLOCK_SIZE,
        )
        self.policy = policy

    @property
    def use_env_settings(self) -> bool:
        return bool(self._use_env_settings)

    async def send(self, request: Any, **config: Any) -> Any:
        try:
            async with asyncio.timeout(self.policy.try_timeout):
                return await super().send(request, **config)
        except TimeoutError as exc:  # the retry policy treats it as a read timeout, as azure-core's own
            raise ServiceResponseTimeoutError(
                f"no answer within {self.policy.try_timeout:g} s (the {self.policy.name} path's try deadline)",
                error=exc,
            ) from exc
