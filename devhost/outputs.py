"""Queue output bindings: after a successful invocation, send what the function set.

Whatever the trigger (HTTP, queue or timer), values set on a queue output (an ``Out`` parameter or
``$return``) are sent once the function returned, and a failed send fails the invocation, as with
the real host. Accepted values are those of the worker's converter: ``str``, ``bytes``, a
``QueueMessage``, or a list of them (several messages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from azure.functions import _abc as azf_abc
from azure.storage.queue.aio import QueueClient

from devhost.functions import FunctionSpec
from devhost.queue_clients import QueueClients, encode_body, send_creating
from devhost.settings import storage_connection_string


def output_messages(value: Any) -> list[str | bytes]:
    """Flatten an output value into message bodies; None means nothing was set."""
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value]
    if isinstance(value, azf_abc.QueueMessage):
        return [value.get_body()]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [body for item in value for body in _single(item)]
    raise TypeError(f"cannot send {type(value).__name__} to a queue: use str, bytes, QueueMessage or a list of them")


def _single(item: Any) -> list[str | bytes]:
    if isinstance(item, str | bytes):
        return [item]
    if isinstance(item, azf_abc.QueueMessage):
        return [item.get_body()]
    raise TypeError(f"invalid item {type(item).__name__} in a queue output list")


class QueueOutputs:
    """Sends queue output values; connections are resolved when the host starts."""

    def __init__(self, specs: Sequence[FunctionSpec], clients: QueueClients, encoding: str) -> None:
        self._encoding = encoding
        self._targets: dict[tuple[str, str], QueueClient] = {}
        for spec in specs:
            for output in spec.outputs:
                if output.type == "queue" and output.queue_name:
                    connection = storage_connection_string(output.connection)
                    self._targets[(spec.name, output.arg_name)] = clients.get(connection, output.queue_name)

    async def flush(self, spec: FunctionSpec, outputs: Mapping[str, Any]) -> None:
        """Send every value the invocation set on its queue outputs."""
        for output in spec.outputs:
            client = self._targets.get((spec.name, output.arg_name))
            if client is None:
                continue
            for body in output_messages(outputs.get(output.arg_name)):
                await send_creating(client, encode_body(body, self._encoding))
