"""The queues the app writes to: jobs (with an optional visibility delay), poison, outcomes.

Every message is base64-encoded UTF-8 JSON (``TextBase64EncodePolicy``), which is what the
Functions host's queue trigger expects by default (host.json ``messageEncoding: base64``).
"""

from __future__ import annotations

import math

from azure.storage.queue.aio import QueueClient

from shared.domain.contract import JobContract, JobOutcomeEvent
from shared.store.clients import StorageClients

QUEUE_MESSAGE_LIMIT = 64 * 1024  # bytes, after base64
MAX_VISIBILITY_DELAY = 7 * 24 * 3600


def encoded_size(text: str) -> int:
    """Size of a message body after base64, as the queue service counts it."""
    return 4 * math.ceil(len(text.encode()) / 3)


class JobQueues:
    def __init__(self, clients: StorageClients, jobs: str, poison: str, outcomes: str, outcome_ttl: int = 604800):
        self.outcome_ttl = outcome_ttl  # seconds an unread event stays (JOBS_OUTCOME_TTL_SECONDS; -1: forever)
        self.jobs: QueueClient = clients.queue(jobs)
        self.poison: QueueClient = clients.queue(poison)
        self.outcomes: QueueClient = clients.queue(outcomes)

    async def send_job(self, contract: JobContract, delay_seconds: float = 0) -> None:
        """Enqueue a contract; ``delay_seconds`` keeps it invisible that long (a schedule, a retry's backoff).
        Job messages never expire (time-to-live -1): the default 7 days would drop a job scheduled 7 days
        ahead the moment it became visible, and a job message must never vanish on its own."""
        delay = min(MAX_VISIBILITY_DELAY, max(0, math.ceil(delay_seconds)))
        await self.jobs.send_message(contract.to_json(), visibility_timeout=delay or None, time_to_live=-1)

    async def send_poison(self, body: str) -> None:
        """Hand a message to the poison function (the same path the host uses after maxDequeueCount)."""
        await self.poison.send_message(body)

    async def send_outcome(self, event: JobOutcomeEvent) -> None:
        """The event as a CloudEvents 1.0 structured JSON message, kept ``outcome_ttl`` seconds."""
        await self.outcomes.send_message(event.to_cloud_event_json(), time_to_live=self.outcome_ttl)
