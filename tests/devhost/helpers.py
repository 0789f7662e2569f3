"""Helpers for devhost tests: polling with deadlines and a per-test project folder."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE_APP = "tests.devhost.sample_app"


async def wait_until(predicate: Callable[[], Any], within: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def write_host_json(project_dir: Path, *, function_timeout: str = "00:00:30", **queues: Any) -> Path:
    """A host.json tuned for fast tests; keyword arguments override ``extensions.queues`` entries."""
    options = {
        "batchSize": 4,
        "maxPollingInterval": "00:00:00.500",
        "visibilityTimeout": "00:00:00",
        "maxDequeueCount": 3,
        "messageEncoding": "base64",
        **queues,
    }
    document = {
        "version": "2.0",
        "functionTimeout": function_timeout,
        "extensions": {"http": {"routePrefix": "api"}, "queues": options},
    }
    path = project_dir / "host.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
