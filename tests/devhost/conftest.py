"""Fixtures for devhost tests: the sample app, unique queue names, a host factory and queue clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from devhost.azurite import Azurite
from devhost.host import DevHost
from tests.devhost import sample_app
from tests.devhost.helpers import SAMPLE_APP, write_host_json

NEVER = "0 0 0 1 1 *"  # the sample's tick timer stays quiet unless a test asks for it


@pytest.fixture
def sample() -> Iterator[ModuleType]:
    sample_app.reset()
    yield sample_app
    sample_app.reset()


@pytest.fixture
def queue_name() -> str:
    """A fresh queue name per test (the poison and output queues derive from it)."""
    return f"dh{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sample_env(monkeypatch: pytest.MonkeyPatch, azurite: Azurite, queue_name: str) -> dict[str, str]:
    values = {"SAMPLE_QUEUE": queue_name, "SAMPLE_SCHEDULE": NEVER, "AzureWebJobsStorage": azurite.connection_string}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    write_host_json(tmp_path)
    return tmp_path


HostFactory = Callable[..., Awaitable[DevHost]]


@pytest.fixture
async def start_host(project_dir: Path, sample_env: dict[str, str], sample: ModuleType) -> AsyncIterator[HostFactory]:
    """Start DevHost instances on free ports; all are stopped at the end of the test."""
    hosts: list[DevHost] = []

    async def start(**options: Any) -> DevHost:
        options.setdefault("project_dir", project_dir)
        options.setdefault("port", 0)
        host = DevHost(SAMPLE_APP, **options)
        await host.start()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        await host.stop()


QueueFactory = Callable[..., QueueClient]


@pytest.fixture
async def queues(azurite: Azurite) -> AsyncIterator[QueueFactory]:
    """Queue clients like the app's producers: TextBase64EncodePolicy out, raw bytes in."""
    clients: list[QueueClient] = []

    def client(name: str, *, encode: bool = True) -> QueueClient:
        made = QueueClient.from_connection_string(
            azurite.connection_string,
            name,
            message_encode_policy=TextBase64EncodePolicy() if encode else None,
            message_decode_policy=BinaryBase64DecodePolicy() if encode else None,
        )
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.close()
