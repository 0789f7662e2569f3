"""Queue triggers against real Azurite: success, retries, poison handling, leases and outputs."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from tests.devhost.conftest import HostFactory, QueueFactory
from tests.devhost.helpers import wait_until, write_host_json


async def send(client: QueueClient, body: dict[str, Any]) -> None:
    try:
        await client.send_message(json.dumps(body))
    except ResourceNotFoundError:
        await client.create_queue()
        await client.send_message(json.dumps(body))


async def count(client: QueueClient) -> int:
    """Messages in the queue, visible or not."""
    return int((await client.get_queue_properties()).approximate_message_count or 0)


async def test_success_deletes_the_message(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType
) -> None:
    await start_host()
    client = queues(queue_name)
    await wait_until(lambda: _exists(client))  # the listener creates its queue
    await send(client, {"action": "ok", "n": 1})
    await wait_until(lambda: sample.CALLS["work"] and sample.CALLS["work"][0]["done"])
    call = sample.CALLS["work"][0]
    assert call["body"] == {"action": "ok", "n": 1}
    assert call["dequeue_count"] == 1
    assert call["type"] == "QueueMessage" and call["pop_receipt"] and call["insertion_time"] is not None
    await wait_until(lambda: _is_empty(client))
    assert len(sample.CALLS["work"]) == 1


async def test_failures_retry_then_poison(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType
) -> None:
    client = queues(queue_name)
    body = {"action": "fail", "id": "p1"}
    await send(client, body)
    await start_host()
    # maxDequeueCount is 3: three calls, then the copy in <queue>-poison reaches work_poison.
    await wait_until(lambda: sample.CALLS["work_poison"])
    assert [c["dequeue_count"] for c in sample.CALLS["work"]] == [1, 2, 3]
    poisoned = sample.CALLS["work_poison"][0]
    assert poisoned["body"] == body
    assert poisoned["id"] != sample.CALLS["work"][0]["id"]  # a new message, not a move
    await wait_until(lambda: _is_empty(client))
    await wait_until(lambda: _is_empty(queues(f"{queue_name}-poison")))
    assert len(sample.CALLS["work"]) == 3


async def test_dequeue_count_above_max_is_poisoned_without_a_call(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType, project_dir: Path
) -> None:
    write_host_json(project_dir, maxDequeueCount=1)
    client = queues(queue_name)
    await send(client, {"action": "ok", "id": "over"})
    # Someone else received it once already: dequeue count 1, visible again after 1 s.
    received = [m async for m in client.receive_messages(visibility_timeout=1)]
    assert len(received) == 1
    await wait_until(lambda: _has_visible(client), within=10)
    await start_host()
    await wait_until(lambda: sample.CALLS["work_poison"])
    assert sample.CALLS["work_poison"][0]["body"] == {"action": "ok", "id": "over"}
    assert sample.CALLS["work"] == []


async def test_invalid_base64_goes_to_poison(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType,
) -> None:
    raw = queues(queue_name, encode=False)
    await raw.create_queue()
    await raw.send_message("this is not base64 {}")
    host = await start_host(message_lease=1)
    poison_raw = queues(f"{queue_name}-poison", encode=False)
    await wait_until(lambda: _exists(poison_raw))
    await wait_until(lambda: _is_empty(raw))
    await host.stop()  # the -poison listener leaves it alone (no poison queue of its own); peek after the lease
    peeked = await wait_until(lambda: _peek(poison_raw), within=10)
    assert peeked[0].content == "this is not base64 {}"  # copied exactly as received
    assert sample.CALLS["work"] == [] and sample.CALLS["work_poison"] == []


async def test_poison_queue_function_failure_has_no_further_poison_queue(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="devhost.queues")
    poison = queues(f"{queue_name}-poison")
    await send(poison, {"poison_action": "fail"})
    await start_host(message_lease=60)
    await wait_until(lambda: sample.CALLS["work_poison"])
    await wait_until(lambda: any("has no poison queue" in r.getMessage() for r in caplog.records))
    assert not await _exists(queues(f"{queue_name}-poison-poison"))
    assert await count(poison) == 1  # still there, invisible until its lease ends
    assert not await _has_visible(poison)
    assert len(sample.CALLS["work_poison"]) == 1


async def test_lease_is_renewed_while_the_function_runs(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType
) -> None:
    client = queues(queue_name)
    await send(client, {"action": "sleep", "seconds": 3.5})
    await start_host(message_lease=2)  # renewed every second; without renewal it reappears after 2 s
    await wait_until(lambda: sample.CALLS["work"] and sample.CALLS["work"][0]["done"])
    await wait_until(lambda: _is_empty(client))  # deleted with the renewed pop receipt
    assert len(sample.CALLS["work"]) == 1


async def test_output_binding_sends_each_item(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType
) -> None:
    client = queues(queue_name)
    await send(client, {"action": "ok", "emit": ["first", '{"second": 2}']})
    await start_host()
    out = queues(f"{queue_name}-out")
    await wait_until(lambda: _exists(out))
    received: list[bytes] = []

    async def drain() -> bool:
        received.extend([m.content async for m in out.receive_messages(max_messages=10)])
        return len(received) >= 2

    await wait_until(drain)
    assert sorted(received) == [b"first", b'{"second": 2}']


async def test_batch_runs_messages_in_parallel(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType
) -> None:
    client = queues(queue_name)
    for n in range(4):
        await send(client, {"action": "sleep", "seconds": 1.5, "n": n})
    await start_host()
    await wait_until(lambda: len(sample.CALLS["work"]) == 4 and all(c["done"] for c in sample.CALLS["work"]))
    calls = sample.CALLS["work"]
    assert sorted(c["body"]["n"] for c in calls) == [0, 1, 2, 3]
    assert all(c["dequeue_count"] == 1 for c in calls)
    assert max(c["started"] for c in calls) < min(c["finished"] for c in calls)  # all ran at once


async def test_stop_lets_in_flight_messages_finish(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType
) -> None:
    client = queues(queue_name)
    await send(client, {"action": "sleep", "seconds": 1})
    host = await start_host()
    await wait_until(lambda: sample.CALLS["work"])
    await host.stop()
    assert sample.CALLS["work"][0]["done"]
    assert await _is_empty(client)


async def test_stop_is_bounded_and_hands_unfinished_messages_back_at_once(
    start_host: HostFactory, queues: QueueFactory, queue_name: str, sample: ModuleType
) -> None:
    client = queues(queue_name)
    await send(client, {"action": "sleep", "seconds": 60})
    host = await start_host()  # message lease 600 s: without a hand-back it would be invisible for 10 minutes
    await wait_until(lambda: sample.CALLS["work"])
    loop = asyncio.get_running_loop()
    began = loop.time()
    await host.stop()
    assert loop.time() - began < 5  # the stop's bound (3 s for work in flight, 1 s each for hand-backs and HTTP)
    assert not sample.CALLS["work"][0]["done"]
    assert await _has_visible(client)  # visible again now, for the next host


async def _exists(client: QueueClient) -> bool:
    try:
        await client.get_queue_properties()
    except ResourceNotFoundError:
        return False
    return True


async def _is_empty(client: QueueClient) -> bool:
    return await count(client) == 0


async def _has_visible(client: QueueClient) -> bool:
    return bool(await client.peek_messages())


async def _peek(client: QueueClient) -> list[Any]:
    return list(await client.peek_messages())
