"""How long each path waits for storage: the named retry policies, in one place.

Two paths talk to storage, and they want different things from a storage that is slow or down:

- ``API``: the HTTP routes (submit, status, list, cancel, retry). A caller is waiting and can
  retry; during an outage the answer must be a fast ``503 STORAGE_UNAVAILABLE``, not a hang.
- ``BACKGROUND``: the queue-triggered worker, the poison function and the maintenance timer.
  Nobody waits on them, and every failure costs a delivery (``maxDequeueCount``), so they ride
  out throttling and short outages before giving up.

Each ``StoragePolicy`` states its worst case (``worst_case_seconds``): every try runs into its
deadline (``try_timeout``, enforced by the transport, shared/store/transport.py) and every
pause is the longest allowed. Errors that fail fast (connection refused, 503 ServerBusy) give up
after the pauses alone. The numbers are in docs/configuration.md ("Storage retries").

The SDKs' own defaults are far longer: azure-data-tables retries 10 times with up to 120 s
pauses and 300 s per try; the queue and blob SDKs retry 3 times after 15-45 s pauses with 20 s
connect and 60 s read timeouts per try.

What is retried: connection errors (refused, reset, a pooled keep-alive connection the server
already closed), timeouts, and the answers 408, 500, 502, 503, 504 (tables also 429). The queue
and blob SDKs retry any method after any of these. The tables SDK (azure-core's rule) retries a
POST or PATCH only on a 500/503/504 answer, so a stale pooled connection under an entity-group
transaction (POST ``$batch``) or a merge (PATCH) surfaced as an error; ``_TablesRetry`` also
retries those methods after a connection error (``ServiceRequestError``), and still not after a
timeout, when the request may well have been applied. Even a connection error can hide an applied
request (the server may close the connection after writing); the app already meets that case
when a caller repeats a request after a 503: a repeated insert conflicts and is read back as the
same job (if its message was never sent, maintenance re-sends it, as after a crash between the
two steps), a repeated If-Match write gets 412 and is re-decided, a repeated queue message is a
duplicate delivery the worker acknowledges.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ServiceRequestError
from azure.data.tables.aio._policies_async import AsyncTablesRetryPolicy
from azure.storage.blob._shared.policies_async import ExponentialRetry as BlobRetry
from azure.storage.queue._shared.policies_async import ExponentialRetry as QueueRetry

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_ANY_METHOD = frozenset({*_IDEMPOTENT, "POST", "PATCH", "MERGE"})
_RETRIED_ANSWERS_TO_POST = frozenset({500, 503, 504})  # azure-core's own rule for POST and PATCH


@dataclass(frozen=True)
class StoragePolicy:
    """Retries, pauses and per-try deadlines for one path's storage calls.

    Pause before retry n (1-based): ``first_delay * 2**(n-1)``, at most ``max_delay``, with equal
    jitter (between half and all of it). ``connect_timeout`` bounds each TCP connect;
    ``try_timeout`` bounds a whole try (waiting for a pooled connection, DNS, connect, sending,
    and the answer; a streamed download's body is read after it, under the same per-read limit).
    """

    name: str
    retries: int
    first_delay: float
    max_delay: float
    connect_timeout: float
    try_timeout: float

    def delay(self, retry: int) -> float:
        """The longest pause before retry ``retry`` (1-based)."""
        return float(min(self.max_delay, self.first_delay * 2 ** max(retry - 1, 0)))

    def backoff(self, retry: int) -> float:
        full = self.delay(retry)
        return full / 2 + random.uniform(0, full / 2)  # noqa: S311 - jitter, not security

    @property
    def worst_case_seconds(self) -> float:
        """Every try runs into its deadline and every pause is the longest: the call's upper bound."""
        return (self.retries + 1) * self.try_timeout + sum(self.delay(n) for n in range(1, self.retries + 1))


    def tables_retry(self) -> AsyncTablesRetryPolicy:
        return _TablesRetry(self)

    def queues_retry(self) -> QueueRetry:
        return _QueueRetry(self)

    def blobs_retry(self) -> BlobRetry:
        return _BlobRetry(self)


# The HTTP routes: 3 tries of at most 1.2 s, pauses of at most 0.1 s and 0.2 s. Worst case
# 3 x 1.2 + 0.1 + 0.2 = 3.9 s per storage call; the first failing call ends the request, so an
# outage answers 503 within 5 s with room for the rest of the request (token, body, response).
API = StoragePolicy("api", retries=2, first_delay=0.1, max_delay=0.2, connect_timeout=1.0, try_timeout=1.2)

# Worker, poison, maintenance: 6 tries of at most 20 s, pauses of at most 1, 2, 4, 8 and 16 s.
# Worst case 6 x 20 + 31 = 151 s (errors that fail fast: about 31 s); well inside functionTimeout
# (10 min), and host.json's visibilityTimeout and maxDequeueCount cover longer outages.
BACKGROUND = StoragePolicy("background", retries=5, first_delay=1.0, max_delay=16.0, connect_timeout=5.0,
                           try_timeout=20.0)


class _TablesRetry(AsyncTablesRetryPolicy):
    """azure-data-tables' retry policy with the path's numbers, a capped Retry-After, and POST/PATCH
    retried after a connection error (see the module docstring)."""

    def __init__(self, policy: StoragePolicy):
        # retry_total is the bound: the SDKs' separate connect/read/status budgets (3 each) would cut it short
        n = policy.retries
        super().__init__(retry_total=n, retry_connect=n, retry_read=n, retry_status=n,  # type: ignore[no-untyped-call]
                         retry_backoff_max=policy.max_delay)
        self.policy = policy

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings: dict[str, Any] = super().configure_retries(options)  # type: ignore[no-untyped-call]
        settings["methods"] = _ANY_METHOD  # every method may be retried; increment() says when
        return settings

    def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
        # ``response`` is the PipelineRequest after an error, else the PipelineResponse
        request = getattr(response, "http_request", None)
        if request is not None and request.method.upper() not in _IDEMPOTENT:
            if error is not None and not isinstance(error, ServiceRequestError):
                return False  # a timeout after sending: the write may have been applied
            answer = getattr(response, "http_response", None)
            if error is None and not _retried_answer_to_post(answer):
                return False
        return bool(super().increment(settings, response=response, error=error))

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return self.policy.backoff(len(settings["history"]))

    def get_retry_after(self, response: Any) -> float | None:
        value: float | None = super().get_retry_after(response)
        return None if value is None else min(value, self.policy.max_delay)


def _retried_answer_to_post(answer: Any) -> bool:
    """azure-core's rule for an answer to a POST or PATCH, unchanged: 500/503/504, or a Retry-After."""
    if answer is None:
        return False
    return answer.status_code in _RETRIED_ANSWERS_TO_POST or bool(answer.headers.get("Retry-After"))


class _QueueRetry(QueueRetry):
    """azure-storage-queue's exponential retry with the path's numbers and pauses."""

    def __init__(self, policy: StoragePolicy):
        n = policy.retries
        super().__init__(retry_total=n, retry_connect=n, retry_read=n, retry_status=n)
        self.policy = policy

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return self.policy.backoff(int(settings["count"]))


class _BlobRetry(BlobRetry):
    """azure-storage-blob's exponential retry with the path's numbers and pauses."""

    def __init__(self, policy: StoragePolicy):
        n = policy.retries
        super().__init__(retry_total=n, retry_connect=n, retry_read=n, retry_status=n)
        self.policy = policy

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return self.policy.backoff(int(settings["count"]))
