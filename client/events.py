"""``jobsctl events``: read the JobOutcome events (CloudEvents) from the outcomes queue and acknowledge them.

For people who want to watch outcomes go by, not for a production consumer (that is Event Grid, a
Logic App or a queue-triggered function of your own): each event is printed, then deleted from the
queue, so two watchers share the events between them. The queue is reached directly, not through
the API: with a connection string (``JOBS_EVENTS_CONNECTION``, e.g. Azurite's) or with the queue's
URL (``JOBS_EVENTS_QUEUE_URL``, ``https://<account>.queue.core.windows.net/<queue>``) and your
Entra sign-in (DefaultAzureCredential; the operator role Storage Queue Data Message Processor is
enough). The queue's name defaults to ``job-outcomes`` (``JOBS_EVENTS_QUEUE``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from client.errors import ConfigurationError

DEFAULT_QUEUE = "job-outcomes"
FOLLOW_INTERVAL = 1.0  # seconds between empty polls with --follow


def open_queue(env: Mapping[str, str], queue: str | None = None) -> Any:
    """The outcomes queue as a (sync) QueueClient, decoding base64 bodies as the app writes them."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy  # noqa: PLC0415 - only this command needs it

    connection, url = env.get("JOBS_EVENTS_CONNECTION", "").strip(), env.get("JOBS_EVENTS_QUEUE_URL", "").strip()
    name = queue or env.get("JOBS_EVENTS_QUEUE", "").strip() or DEFAULT_QUEUE
    decode = TextBase64DecodePolicy()
    if connection:
        return QueueClient.from_connection_string(connection, name, message_decode_policy=decode)
    if url:
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415 - only with a URL

        return QueueClient.from_queue_url(url, credential=DefaultAzureCredential(), message_decode_policy=decode)
    raise ConfigurationError("set JOBS_EVENTS_CONNECTION (a storage connection string) or JOBS_EVENTS_QUEUE_URL")


def read_events(queue: Any, *, follow: bool, sleep: Callable[[float], None] = time.sleep,
                batch: int = 32) -> Iterator[tuple[dict[str, Any], Callable[[], None]]]:
    """Each event with its acknowledgement (delete it); without ``follow``, until the queue is empty."""
    while True:
        messages = list(queue.receive_messages(messages_per_page=batch, max_messages=batch, visibility_timeout=30))
        for message in messages:
            try:
                event = json.loads(str(message.content))
            except ValueError:
                event = {"unreadable": str(message.content)[:200]}
            yield event, _acknowledger(queue, message)
        if not messages:
            if not follow:
                return
            sleep(FOLLOW_INTERVAL)


def _acknowledger(queue: Any, message: Any) -> Callable[[], None]:
    def acknowledge() -> None:
        queue.delete_message(message)
    return acknowledge


def event_line(event: Mapping[str, Any]) -> str:
    """``<time> <jobId> <outcome> <code> <eventId>`` of a CloudEvent (or of an older plain event)."""
    data = event.get("data") if isinstance(event.get("data"), dict) else event
    assert isinstance(data, Mapping)
    return " ".join(str(part) for part in (
        event.get("time") or data.get("occurredAt"), data.get("jobId"), data.get("outcome"), data.get("code"),
        event.get("id") or data.get("eventId")))
