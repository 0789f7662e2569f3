"""Leases: a handler stops when its lease is lost; a redelivery during a dead worker's lease takes over when it ends."""

from __future__ import annotations

import asyncio

from devhost.azurite import Azurite
from shared.domain.contract import JobStatus
from shared.engine.sweep import sweep
from shared.engine.worker import handle_job_message
from tests.engine.helpers import submit_job, take_message
from tests.support import EFFECTS, RequestLog, make_runtime, make_settings, run_until_settled


async def test_a_handler_is_stopped_when_its_lease_is_lost(azurite: Azurite, request_log: RequestLog) -> None:
    """Renewals fail (storage trouble) until the 1 s lease runs out and maintenance takes the job
    over: the first run must stop before its side effect, so the two runs never overlap."""
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_LEASE_SECONDS="1"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "overlap", "sleep": 3})
        body = await take_message(runtime)
        status_writes = f"/{runtime.settings.jobs_table}("
        request_log.fail_on("PUT", status_writes, times=1000, after=1)  # the claim lands; every renewal fails
        first = asyncio.create_task(handle_job_message(runtime, body, 1))
        await asyncio.sleep(1.5)
        request_log.faults.clear()
        assert (await sweep(runtime)).taken_over == 1
        await asyncio.wait_for(first, 10)  # returns: the lost lease stopped the handler
        assert EFFECTS[str(sub.record.job_id)] == 0
        final = await run_until_settled(runtime, sub.record.job_id, timeout=30)
        assert final.status is JobStatus.COMPLETED and final.attempt == 2
        assert EFFECTS[str(sub.record.job_id)] == 1
    finally:
        await runtime.close()


async def test_a_message_redelivered_during_a_dead_workers_lease_takes_over_when_it_ends(
        azurite: Azurite, request_log: RequestLog) -> None:
    """The worker dies mid-run; its message comes back while the lease is still live. The
    delivery leaves a copy timed for the lease's end, which takes the job over: no wait for
    maintenance (before the fix the message was dropped and the job waited for the sweep)."""
    from tests.support import deliver_once

    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_LEASE_SECONDS="4"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "dead-owner", "sleep": 0.15})
        request_log.crash_on("GET", f"/{runtime.settings.jobs_table}", after=1)  # dies inside the handler
        assert [d.crashed for d in await deliver_once(runtime, visibility=1)] == [True]
        await asyncio.sleep(1.2)
        again = await deliver_once(runtime)  # the same message, dequeue count 2, lease still live
        assert [d.dequeue_count for d in again] == [2]
        record = await runtime.store.get(sub.record.job_id)
        assert record is not None and record.status is JobStatus.RUNNING  # left alone, copy scheduled
        final = await run_until_settled(runtime, sub.record.job_id, timeout=20)  # no maintenance sweep
        assert final.status is JobStatus.COMPLETED and final.attempt == 2
    finally:
        await runtime.close()
