"""The polling loop of one queue-triggered function, after the extension's QueueListener.

Receive up to batchSize messages under a lease, start each as its own task, and poll again as soon
as no more than newBatchThreshold are in flight. Empty polls (and storage errors) back off with
randomized exponential delays from 100 ms up to maxPollingInterval; a poll that found messages
resets the delay. A missing queue is created (the real host would only wait for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from devhost.hostconfig import MIN_POLLING_INTERVAL, QueueOptions
from devhost.queue_clients import ensure_queue
from devhost.queue_messages import MessageProcessor, seconds

log = logging.getLogger("devhost.queues")


class Backoff:
    """Randomized exponential backoff: 100 ms, then x2 (jitter 0.8-1.2) per miss, capped."""

    def __init__(self, maximum: float, minimum: float = MIN_POLLING_INTERVAL) -> None:
        self._minimum = minimum
        self._maximum = maximum
        self._current = 0.0

    def next_delay(self) -> float:
        if self._current == 0.0:
            self._current = self._minimum
        else:
            jitter = random.uniform(0.8, 1.2)  # noqa: S311 - scheduling jitter, not security
            self._current = min(self._maximum, self._current * 2 * jitter)
        return self._current

    def reset(self) -> None:
        self._current = 0.0


class QueueListener:
    """Polls one queue and hands each message to a MessageProcessor task."""

    def __init__(self, client: QueueClient, processor: MessageProcessor, options: QueueOptions, lease: float) -> None:
        self._client = client
        self._processor = processor
        self._options = options
        self._lease = lease
        self._backoff = Backoff(options.max_polling_interval)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._queue_ready = False

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self) -> None:
        """Poll until ``stop()``; storage errors are logged and backed off, never raised."""
        while not self._stopping.is_set():
            try:
                messages = await self._receive()
            except Exception as error:
                log.warning("Polling queue %s failed: %s", self._client.queue_name, error)
                await self._pause(self._backoff.next_delay())
                continue
            if not messages:
                await self._pause(self._backoff.next_delay())
                continue
            self._backoff.reset()
            for message in messages:
                self._start(message)
            await self._wait_for_capacity()

    async def _receive(self) -> list[QueueMessage]:
        if not self._queue_ready:
            await ensure_queue(self._client)
            self._queue_ready = True
        pages = self._client.receive_messages(
            messages_per_page=self._options.batch_size,
            max_messages=self._options.batch_size,
            visibility_timeout=seconds(self._lease),
        ).by_page()
        async for page in pages:  # only the first page: one request per poll
            return [message async for message in page]
        return []

    def _start(self, message: QueueMessage) -> None:
        task = asyncio.create_task(self._processor.process(message), name=f"devhost-message-{message.id}")
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._changed.set()

    async def _wait_for_capacity(self) -> None:
        while len(self._in_flight) > self._options.new_batch_threshold and not self._stopping.is_set():
            self._changed.clear()
            await self._changed.wait()

    async def _pause(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def stop(self) -> None:
        """Stop polling; in-flight messages keep running (see ``drain``)."""
        self._stopping.set()
        self._changed.set()

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for in-flight messages, then cancel the rest."""
        pending = set(self._in_flight)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
