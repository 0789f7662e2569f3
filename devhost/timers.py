"""Timer triggers: fire each timer function on its NCRONTAB schedule (UTC, as in Azure).

Like the real host, one timer never overlaps itself: the next occurrence is computed after the
previous invocation has finished, so occurrences missed while it ran are skipped. ``past_due`` is
set when an invocation starts noticeably later than its scheduled time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import azure.functions.timer as func_timer

from devhost.functions import FunctionSpec
from devhost.invoker import Invoker
from devhost.ncrontab import CronSchedule

log = logging.getLogger("devhost.timers")
PAST_DUE_AFTER = timedelta(seconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def timer_request(past_due: bool, last: datetime | None, next_time: datetime) -> func_timer.TimerRequest:
    """The TimerRequest the worker builds, with the schedule status the host reports."""
    status = {
        "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
        "Next": next_time.isoformat(),
        "LastUpdated": utc_now().isoformat(),
    }
    return func_timer.TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})


class TimerRunner:
    """Runs one timer-triggered function until stopped."""

    def __init__(self, spec: FunctionSpec, invoker: Invoker) -> None:
        self._spec = spec
        self._schedule = CronSchedule.parse(spec.schedule or "")
        self._invoker = invoker
        self._stopping = asyncio.Event()
        self._last: datetime | None = None

    async def run(self) -> None:
        if self._spec.run_on_startup:
            await self._fire(past_due=False, next_time=self._schedule.next_after(utc_now()))
        moment = utc_now()
        while not self._stopping.is_set():
            scheduled = self._schedule.next_after(moment)
            if not await self._sleep_until(scheduled):
                return
            late = utc_now() - scheduled
            await self._fire(past_due=late > PAST_DUE_AFTER, next_time=self._schedule.next_after(scheduled))
            moment = max(utc_now(), scheduled)

    async def _sleep_until(self, moment: datetime) -> bool:
        """Sleep until ``moment``; False when stopped first. Loops because the loop can wake early."""
        while (remaining := (moment - utc_now()).total_seconds()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), remaining)
            if self._stopping.is_set():
                return False
        return not self._stopping.is_set()

    async def _fire(self, *, past_due: bool, next_time: datetime) -> None:
        request = timer_request(past_due, self._last, next_time)
        self._last = utc_now()
        with contextlib.suppress(Exception):  # the invoker logged it; the schedule goes on
            await self._invoker.invoke(self._spec, request, reason=f"Timer fired at {self._last.isoformat()}")

    def stop(self) -> None:
        self._stopping.set()
