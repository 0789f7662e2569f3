"""HTTP triggers through a real DevHost: routing, conversion, errors and timeouts."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from devhost.host import DevHost
from tests.devhost.conftest import HostFactory, QueueFactory
from tests.devhost.helpers import write_host_json

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


@pytest.fixture
async def host(start_host: HostFactory) -> DevHost:
    return await start_host()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def test_route_params_query_and_text_response(host: DevHost, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{host.base_url}/api/hello/World?suffix=!") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert await response.text() == "hello World!"


async def test_guid_constraint_and_literal_precedence(host: DevHost, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{host.base_url}/api/jobs/{GUID}/status?a=1&a=2&b=x") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        body = await response.json()
    assert body["jobId"] == GUID
    assert body["query"] == {"a": "1,2", "b": "x"}
    assert body["url"].startswith(f"{host.base_url}/api/jobs/{GUID}/status")
    async with http.get(f"{host.base_url}/api/jobs/latest/status") as response:
        assert await response.json() == {"latest": True}
    async with http.get(f"{host.base_url}/api/jobs/not-a-guid/status") as response:
        assert response.status == 404


async def test_int_optional_and_catch_all(host: DevHost, http: aiohttp.ClientSession) -> None:
    async with http.delete(f"{host.base_url}/api/items/42") as response:
        assert await response.json() == {"id": 42, "method": "DELETE"}
    async with http.get(f"{host.base_url}/api/items/abc") as response:
        assert response.status == 404
    async with http.get(f"{host.base_url}/api/files/a/b/c.txt") as response:
        assert await response.json() == {"path": "a/b/c.txt"}
    async with http.get(f"{host.base_url}/api/opt") as response:
        assert await response.json() == {"value": None}
    async with http.get(f"{host.base_url}/api/opt/x") as response:
        assert await response.json() == {"value": "x"}


async def test_unknown_paths_and_prefix(host: DevHost, http: aiohttp.ClientSession) -> None:
    for path in ("/api/nothing-here", "/hello/World", "/api", "/apix/hello/World"):
        async with http.get(f"{host.base_url}{path}") as response:
            assert response.status == 404, path


async def test_method_not_allowed(host: DevHost, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{host.base_url}/api/items/1") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "DELETE, GET"
    async with http.get(f"{host.base_url}/api/echo") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"


async def test_exception_is_a_bare_500(
    host: DevHost, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devhost")
    async with http.get(f"{host.base_url}/api/boom") as response:
        assert response.status == 500
        text = await response.text()
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    failed = [r for r in caplog.records if "Functions.boom" in r.getMessage() and "Failed" in r.getMessage()]
    assert failed and failed[0].exc_info is not None  # the trace goes to the log instead
    async with http.get(f"{host.base_url}/api/bad-return") as response:
        assert response.status == 500
        assert await response.text() == "Internal Server Error"


async def test_response_conversion_and_queue_output(
    host: DevHost, http: aiohttp.ClientSession, queues: QueueFactory, queue_name: str
) -> None:
    async with http.post(f"{host.base_url}/api/echo", data=b'{"x": 1}') as response:
        assert response.status == 201
        assert response.headers["X-Echo"] == "yes"
        assert response.headers["Content-Type"] == "application/json"
        assert await response.read() == b'{"x": 1}'
    out = queues(f"{queue_name}-out")
    messages = [m async for m in out.receive_messages()]
    assert [m.content for m in messages] == [b'{"x": 1}']


async def test_sync_function_runs_in_a_thread_with_context(host: DevHost, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{host.base_url}/api/sync") as response:
        body = await response.json()
    assert body["thread"].startswith("devhost")
    assert body["function"] == "sync_function"


async def test_devhost_endpoints(host: DevHost, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{host.base_url}/.devhost/health") as response:
        assert response.status == 200
    async with http.get(f"{host.base_url}/.devhost/keys") as response:
        keys = await response.json()
    assert keys["keys"][0]["kty"] == "RSA" and "d" not in keys["keys"][0]


async def test_keys_are_served_while_every_default_pool_thread_waits_for_them(
    start_host: HostFactory, http: aiohttp.ClientSession
) -> None:
    """The app validates tokens in the default thread pool, each thread waiting on the JWKS fetch (the
    first holds PyJWKClient's lock while it fetches): on a fresh host, the keys endpoint must not need
    a thread of that pool itself, or the fetch times out and a valid token is refused (401)."""
    host = await start_host()
    loop = asyncio.get_running_loop()
    release = threading.Event()
    blocked = [loop.run_in_executor(None, release.wait, 30) for _ in range(64)]  # more than the pool has
    try:
        began = time.monotonic()
        async with http.get(f"{host.base_url}/.devhost/keys", timeout=aiohttp.ClientTimeout(total=5)) as response:
            assert response.status == 200
        assert time.monotonic() - began < 2
    finally:
        release.set()
        await asyncio.gather(*blocked)


async def test_function_timeout_fails_the_request(
    start_host: HostFactory, project_dir: Path, http: aiohttp.ClientSession
) -> None:
    write_host_json(project_dir, function_timeout="00:00:01")
    host = await start_host()
    for route in ("slow", "slow-sync"):
        started = time.monotonic()
        async with http.get(f"{host.base_url}/api/{route}?seconds=3") as response:
            assert response.status == 500
        assert time.monotonic() - started < 2.9, route
    async with http.get(f"{host.base_url}/api/slow?seconds=0") as response:
        assert response.status == 200
