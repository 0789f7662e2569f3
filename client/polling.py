"""Waiting for a job: poll its status, honouring the server's Retry-After, until it is terminal.

The server's Retry-After is the time until the job is expected to be done, from its job type's
typical duration and its state (docs/api.md#retry-after), so the loop sleeps exactly that,
clamped to [min_interval, max_interval] and never past the deadline. Right after a submit the
202's Retry-After is the first pause (``first_delay``): the job is certainly Queued before then,
so an immediate poll would be a wasted request. Answers without Retry-After (a server or proxy
that drops it) back off instead: first_interval, then times backoff_factor up to max_interval.
Throttling (429), storage outages (503) and dropped connections are ridden out the same way;
other errors end the wait at once.
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
    first_interval: float = 1.0  # the first pause after an answer without Retry-After ...
    backoff_factor: float = 2.0  # ... and the growth of each further one: 1, 2, 4, 8, 16, 30, 30 s
    min_interval: float = 0.2
    max_interval: float = 30.0  # cap on any pause (the server caps its Retry-After at 30 s too)
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
    unpaced: int = 0  # consecutive answers without Retry-After (the backoff's exponent)

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
        if retry_after is None:
            delay = self.policy.first_interval * self.policy.backoff_factor ** self.unpaced
            self.unpaced += 1
        else:
            delay, self.unpaced = retry_after, 0
        return self.clamp(delay)

    def clamp(self, delay: float) -> float:
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
    first_delay: float | None = None,
) -> JobStatus:
    """Poll ``fetch`` until the job is terminal and return that status; WaitTimeoutError after ``timeout`` s.

    ``first_delay`` (the submit's Retry-After) is slept before the first poll; None polls at once.
    """
    deadline = None if timeout is None else clock() + timeout
    waiter = _Waiter(job_id, fetch, policy or PollPolicy(), sleep, clock, deadline, timeout)
    if first_delay is not None:
        waiter.pause(waiter.clamp(first_delay))
    while True:
        status, delay = waiter.poll()
        if status is not None:
            if on_update is not None:
                on_update(status)
            if status.is_terminal:
                return status
        waiter.pause(delay)
