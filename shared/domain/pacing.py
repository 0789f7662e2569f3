"""Retry-After on a job's status: when a poll is next likely to find something new.

A client waiting for a job wants its terminal status soon after it happens and as few status
requests as it takes (each is a storage point read). So the answer is the time until the job is
expected to be done, from what its job type usually takes (``JobType.typical_seconds``) and
where the job is:

- **Queued**: until its message is visible (``visibleAt``: a retry's backoff), plus the pickup
  (``PICKUP_SECONDS``, host.json's ``maxPollingInterval``: how long an idle worker may take to
  see it), plus the typical run time.
- **Running, with progress** p (1-99 %): the elapsed time scaled by what is left,
  ``elapsed * (100 - p) / p``.
- **Running, without progress**: the typical time minus the elapsed time.
- **Running, overdue** (elapsed past typical, no progress): half the time it is overdue, at least
  ``OVERDUE_FRACTION`` of the typical time, so a job that overruns (or whose worker died and waits
  for its lease to expire) is polled less and less often.

The result is whole seconds (RFC 9110 delta-seconds), rounded up (poll once it is likely done,
not just before), at least ``MIN_SECONDS`` and at most the cap
(``JOBS_STATUS_RETRY_AFTER_MAX_SECONDS``, 30 by default), so a long job still shows progress and a
stalled one is not forgotten. Terminal jobs get none: there is nothing to wait for. Pure: the
caller passes the clock's time and the job type's typical duration.
"""

from __future__ import annotations

import math
from datetime import datetime

from shared.domain.contract import JobStatus
from shared.domain.record import JobRecord

PICKUP_SECONDS = 0.5  # host.json extensions.queues.maxPollingInterval (tests check they agree)
MIN_SECONDS = 1
DEFAULT_CAP_SECONDS = 30
DEFAULT_TYPICAL_SECONDS = 1.0  # a job type no longer registered
OVERDUE_FRACTION = 0.25


def expected_remaining(record: JobRecord, typical_seconds: float, now: datetime) -> float:
    """Seconds until the job is expected to be terminal (the estimate before rounding and clamping)."""
    if record.status is JobStatus.QUEUED:
        until_visible = max(0.0, (record.visible_at - now).total_seconds())
        return until_visible + PICKUP_SECONDS + typical_seconds
    started = record.started_at or now
    elapsed = max(0.0, (now - started).total_seconds())
    percent = record.progress_percent
    if percent is not None and 0 < percent < 100:
        return elapsed * (100 - percent) / percent
    if percent is not None and percent >= 100:
        return 0.0
    if elapsed < typical_seconds:
        return typical_seconds - elapsed
    return max(OVERDUE_FRACTION * typical_seconds, (elapsed - typical_seconds) / 2)


def retry_after(record: JobRecord, typical_seconds: float, now: datetime,
                cap_seconds: int = DEFAULT_CAP_SECONDS) -> int | None:
    """Retry-After in whole seconds for a status or 202 response about ``record``; None once terminal."""
    if record.is_terminal:
        return None
    cap = max(MIN_SECONDS, cap_seconds)
    return min(cap, max(MIN_SECONDS, math.ceil(expected_remaining(record, typical_seconds, now))))
