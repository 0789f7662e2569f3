"""Waiting for a job: poll its status, honouring the server's Retry-After, until it is terminal.

The delay between polls is the Retry-After the status (or a transient error) carried, else the
default interval, always clamped to [min_interval, max_interval] and never past the deadline.
Throttling (429), storage outages (503) and dropped connections are ridden out; other errors end
the wait at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from client.errors import JobsApiError, JobsConnectionError, WaitTimeoutError
from client.models import JobStatus

Sleep = Callable[[float], None]
Clock = Callable[[], float]
OnUpdate = Callable[[JobStatus], None]


@dataclass(frozen=True)
class PollPolicy:
    default_interval: float = 2.0  # when the server sends no Retry-After
    min_interval: float = 0.2
    max_interval: float = 30.0  # cap on any Retry-After
    max_transient_errors: int = 10  # consecutive ones, when there is no deadline


@dataclass
class _Waiter:
    job_id: str
    fetch: Callable[[], JobStatus]
    policy: PollPolicy
    sleep: Sleep
    clock: Clock
    deadline: float | None
    timeout: float | None
    last: JobStatus | None = None
    transient_errors: int = 0

    def poll(self) -> tuple[JobStatus | None, float]:
        """One status request: the status (None after a transient error) and the delay before the next."""
        try:
            status = self.fetch()
        except (JobsApiError, JobsConnectionError) as error:
            return None, self._transient(error)
        self.transient_errors = 0
        self.last = status
        return status, self._clamp(status.retry_after)

    def _transient(self, error: JobsApiError | JobsConnectionError) -> float:
        if isinstance(error, JobsApiError) and not error.is_transient:
            raise error
        self.transient_errors += 1
        if self.deadline is None and self.transient_errors > self.policy.max_transient_errors:
            raise error
        return self._clamp(error.retry_after if isinstance(error, JobsApiError) else None)

    def _clamp(self, retry_after: float | None) -> float:
        delay = self.policy.default_interval if retry_after is None else retry_after
        return min(max(delay, self.policy.min_interval), self.policy.max_interval)

    def pause(self, delay: float) -> None:
        if self.deadline is not None:
            remaining = self.deadline - self.clock()
            if remaining <= 0:
                raise WaitTimeoutError(self.job_id, self.timeout or 0.0, self.last)
            delay = min(delay, remaining)
        self.sleep(delay)


def wait_for_terminal(
    job_id: str, fetch: Callable[[], JobStatus], *, timeout: float | None = None, on_update: OnUpdate | None = None,
    policy: PollPolicy | None = None, sleep: Sleep = time.sleep, clock: Clock = time.monotonic,
) -> JobStatus:
    """Poll ``fetch`` until the job is terminal and return that status; WaitTimeoutError after ``timeout`` s."""
    deadline = None if timeout is None else clock() + timeout
    waiter = _Waiter(job_id, fetch, policy or PollPolicy(), sleep, clock, deadline, timeout)
    while True:
        status, delay = waiter.poll()
        if status is not None:
            if on_update is not None:
                on_update(status)
            if status.is_terminal:
                return status
        waiter.pause(delay)
