"""Queue clients shared by the listeners and output bindings, plus the host's message encoding.

Clients use no SDK encode/decode policy: the host base64-encodes and decodes itself, so a message
that is not valid base64 can be recognised (and moved to the poison queue) instead of failing
inside the SDK, and a poison copy is byte-for-byte the message that was received.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

log = logging.getLogger("devhost.queues")
BASE64 = "base64"


def decode_body(content: str | None, encoding: str) -> bytes | None:
    """The message body as bytes, or None when base64 encoding is on and the text is not base64."""
    text = content or ""
    if encoding != BASE64:
        return text.encode("utf-8")
    try:
        # .NET's Convert.FromBase64String ignores white space; anything else invalid is rejected.
        return base64.b64decode("".join(text.split()).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


def encode_body(body: str | bytes, encoding: str) -> str:
    """The queue message text for an output value (what TextBase64EncodePolicy would send for str)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if encoding == BASE64:
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8")


class QueueClients:
    """One aio QueueClient per (connection string, queue name), closed together when the host stops."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], QueueClient] = {}

    def get(self, connection_string: str, queue_name: str) -> QueueClient:
        key = (connection_string, queue_name)
        client = self._clients.get(key)
        if client is None:
            client = QueueClient.from_connection_string(
                connection_string, queue_name, message_encode_policy=None, message_decode_policy=None
            )
            self._clients[key] = client
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except Exception:  # closing is best effort; a broken transport must not block shutdown
                log.debug("closing a queue client failed", exc_info=True)


async def ensure_queue(client: QueueClient) -> None:
    """Create the queue if it does not exist yet."""
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()


async def send_creating(client: QueueClient, content: str, **kwargs: Any) -> None:
    """Send a message, creating the queue first if needed (as the queue output binding does)."""
    try:
        await client.send_message(content, **kwargs)
    except ResourceNotFoundError:
        await ensure_queue(client)
        await client.send_message(content, **kwargs)
