"""One queue message through a queue-triggered function, following the Storage Queues extension 5.x.

Per message: poison it without a call when its dequeue count is already past maxDequeueCount or its
body is not valid base64; otherwise invoke the function while renewing the message's lease at half
its length. Success deletes the message. Failure either copies it to ``<queue>-poison`` (when the
function has a poison queue and this was the last allowed try) or makes it visible again after
host.json's visibilityTimeout. Functions on a ``-poison`` queue (or on a name too long for a
``-poison`` suffix) have no poison queue: their failed messages stay invisible until the lease ends.
A message whose invocation is cancelled because the host stops is handed back (visible at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Any

import azure.functions.queue as func_queue
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from devhost.functions import FunctionSpec
from devhost.hostconfig import QueueOptions
from devhost.invoker import Invoker
from devhost.queue_clients import decode_body, send_creating

log = logging.getLogger("devhost.queues")
POISON_SUFFIX = "-poison"
MAX_QUEUE_NAME = 63
HAND_BACK_SECONDS = 1.0


def poison_queue_name(queue_name: str) -> str | None:
    """``<queue>-poison``, or None when the queue has no poison queue."""
    candidate = queue_name + POISON_SUFFIX
    if queue_name.endswith(POISON_SUFFIX) or len(candidate) > MAX_QUEUE_NAME:
        return None
    return candidate


def seconds(value: float) -> int:
    """Visibility timeouts are whole seconds on the wire; round up so a lease is never shorter."""
    return max(0, math.ceil(value))


def to_function_message(message: QueueMessage, body: bytes) -> Any:
    """The ``azure.functions`` QueueMessage the worker would build from the trigger metadata."""
    return func_queue.QueueMessage(  # type: ignore[no-untyped-call]
        id=message.id,
        body=body,
        dequeue_count=message.dequeue_count,
        expiration_time=message.expires_on,
        insertion_time=message.inserted_on,
        time_next_visible=message.next_visible_on,
        pop_receipt=message.pop_receipt,
    )


@dataclass
class _Lease:
    """The message's current pop receipt: each visibility update returns a new one."""

    pop_receipt: str | None


class MessageProcessor:
    """Processes messages for one queue-triggered function."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        client: QueueClient,
        poison_client: QueueClient | None,
        options: QueueOptions,
        lease: float,
        invoker: Invoker,
    ) -> None:
        self._spec = spec
        self._client = client
        self._poison = poison_client
        self._options = options
        self._lease = lease
        self._invoker = invoker
        self._queue = spec.queue_name

    async def process(self, message: QueueMessage) -> None:
        """Handle one received message completely; never raises except on cancellation."""
        try:
            await self._process(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Functions.%s: error handling message %s", self._spec.name, message.id)

    async def _process(self, message: QueueMessage) -> None:
        lease = _Lease(message.pop_receipt)
        if (message.dequeue_count or 0) > self._options.max_dequeue_count:
            log.warning("Message %s was dequeued %s times: poisoning it", message.id, message.dequeue_count)
            await self._poison_message(message, lease)
            return
        body = decode_body(message.content, self._options.message_encoding)
        if body is None:
            log.warning("Message %s on %s is not valid base64: poisoning it", message.id, self._spec.queue_name)
            await self._poison_message(message, lease)
            return
        try:
            succeeded = await self._invoke(message, body, lease)
        except asyncio.CancelledError:  # the host is stopping: hand the message back, don't let it sit out its lease
            await asyncio.shield(self._hand_back(message, lease))
            raise
        if succeeded:
            await self._delete(message, lease)
        elif self._poison is None:
            # As the extension does: without a poison queue, a failed message stays invisible until
            # its lease ends, which keeps a failing message from spinning in a fast loop.
            log.warning("Message %s failed; %s has no poison queue: it waits for its lease", message.id, self._queue)
        elif (message.dequeue_count or 0) >= self._options.max_dequeue_count:
            await self._poison_message(message, lease)
        else:
            await self._release(message, lease)

    async def _invoke(self, message: QueueMessage, body: bytes, lease: _Lease) -> bool:
        finished = asyncio.Event()
        renewal = asyncio.create_task(self._renew(message, lease, finished))
        try:
            reason = f"New queue message detected on '{self._queue}'"
            await self._invoker.invoke(self._spec, to_function_message(message, body), reason=reason)
        except Exception:
            return False  # the invoker logged it
        finally:
            # Not cancel(): an update already sent must finish, or its new pop receipt would be lost.
            finished.set()
            await renewal
        return True

    async def _renew(self, message: QueueMessage, lease: _Lease, finished: asyncio.Event) -> None:
        """Keep the message invisible while the function runs: extend the lease every half lease."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), self._lease / 2)
            if finished.is_set():
                return
            try:
                updated = await self._client.update_message(
                    message.id, pop_receipt=lease.pop_receipt, visibility_timeout=seconds(self._lease)
                )
            except Exception as error:
                log.warning("Could not renew the lease of message %s: %s", message.id, error)
                return
            lease.pop_receipt = updated.pop_receipt

    async def _delete(self, message: QueueMessage, lease: _Lease) -> None:
        try:
            await self._client.delete_message(message.id, pop_receipt=lease.pop_receipt)
        except Exception as error:
            log.warning("Could not delete message %s (its lease may have ended): %s", message.id, error)

    async def _release(self, message: QueueMessage, lease: _Lease) -> None:
        """Make a failed message visible again after host.json's visibilityTimeout."""
        try:
            await self._client.update_message(
                message.id, pop_receipt=lease.pop_receipt, visibility_timeout=seconds(self._options.visibility_timeout)
            )
        except Exception as error:
            log.warning("Could not release message %s: %s", message.id, error)

    async def _hand_back(self, message: QueueMessage, lease: _Lease) -> None:
        """Make the message visible at once (a stopping host's unfinished work), within a second or two."""
        try:
            await asyncio.wait_for(self._client.update_message(message.id, pop_receipt=lease.pop_receipt,
                                                               visibility_timeout=0), HAND_BACK_SECONDS)
            log.info("Handed message %s back to %s (the host is stopping)", message.id, self._queue)
        except Exception as error:
            log.warning("Could not hand message %s back (it returns after its lease): %s", message.id, error)

    async def _poison_message(self, message: QueueMessage, lease: _Lease) -> None:
        """Copy the message, exactly as received, to the poison queue and delete the original."""
        if self._poison is None:
            log.warning("%s has no poison queue: message %s stays until its lease ends", self._queue, message.id)
            return
        await send_creating(self._poison, message.content or "")
        log.warning("Moved message %s to %s", message.id, self._poison.queue_name)
        await self._delete(message, lease)
