"""Regressions for races found in review: each one failed before its fix."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devhost.azurite import Azurite
from jobs.storage_names import DOC_INDEX, DOCUMENTS
from shared.domain.contract import JobStatus
from shared.engine.actions import redrive
from shared.engine.poison import handle_poison_message
from shared.engine.runtime import Runtime
from shared.engine.sweep import sweep
from shared.engine.worker import handle_job_message
from shared.store.job_list import JobIndex, index_row_key, owner_partition, tenant_partition
from tests.engine.helpers import ALICE, events_for, submit_job
from tests.support import EFFECTS, RequestLog, force, make_runtime, make_settings, run_until_settled


async def _take(runtime: Runtime) -> str:
    message = [m async for m in runtime.queues.jobs.receive_messages(max_messages=1)][0]
    await runtime.queues.jobs.delete_message(message)
    return str(message.content)


async def test_an_outcome_whose_sends_kept_failing_is_sent_by_the_poison_function(
        runtime: Runtime, request_log: RequestLog) -> None:
    """The outcome send fails on every delivery, the host moves the message to the poison queue:
    the Completed event must still go out (before the fix it was lost for good)."""
    sub = await submit_job(runtime, "probe", {"tag": "lost-outcome"})
    body = await _take(runtime)
    request_log.fail_on("POST", f"/{runtime.settings.outcomes_queue}/messages", times=5 * 4)
    for _ in range(5):  # every delivery the host allows fails at the outcome send
        with pytest.raises(Exception):  # noqa: B017 - storage error surfaces as the SDK's error
            await handle_job_message(runtime, body, 1)
    request_log.faults.clear()
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED
    assert await events_for(runtime, sub.record.job_id) == []
    await handle_poison_message(runtime, body)  # what the host does next
    events = await events_for(runtime, sub.record.job_id)
    assert [e["outcome"] for e in events] == ["Completed"]


async def test_redrive_is_refused_while_the_poisoned_outcome_is_being_handed_over(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "handover", "failTimes": 9})
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None
    last = await force(runtime, record, attempt=record.max_attempts - 1)
    await runtime.queues.jobs.clear_messages()
    await handle_job_message(runtime, last.next_contract().to_json(), 1)  # last attempt fails
    poisoned = await runtime.store.get(sub.record.job_id)
    assert poisoned is not None and poisoned.status is JobStatus.POISONED and poisoned.outcome_pending
    from shared.domain.errors import JobsError

    with pytest.raises(JobsError) as refused:
        await redrive(runtime, poisoned, ALICE)
    assert refused.value.code.code == "JOB_NOT_RETRYABLE"
    handoff = [m async for m in runtime.queues.poison.receive_messages(max_messages=1)][0]
    await handle_poison_message(runtime, str(handoff.content), handoff.inserted_on)
    settled = await runtime.store.get(sub.record.job_id)
    assert settled is not None and not settled.outcome_pending
    queued = await redrive(runtime, settled, ALICE)
    assert queued.run == 2 and queued.status is JobStatus.QUEUED
    # A late duplicate of the old poison copy must not poison the new run.
    await handle_poison_message(runtime, str(handoff.content), handoff.inserted_on)
    again = await runtime.store.get(sub.record.job_id)
    assert again is not None and again.status is JobStatus.QUEUED and again.run == 2
    assert [e["outcome"] for e in await events_for(runtime, sub.record.job_id)][:1] == ["Poisoned"]


async def test_a_handler_is_stopped_when_its_lease_is_lost(azurite: Azurite, request_log: RequestLog) -> None:
    """Renewals fail (storage trouble) until the 1 s lease runs out and maintenance takes the job
    over: the first run must stop before its side effect, so the two runs never overlap."""
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_LEASE_SECONDS="1"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "overlap", "sleep": 3})
        body = await _take(runtime)
        request_log.fail_on("PUT", f"/{runtime.settings.jobs_table}(", times=1000)  # every renewal fails
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


async def test_purge_removes_the_jobs_list_rows(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_RETENTION_DAYS="0"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "purge-index"})
        record = await run_until_settled(runtime, sub.record.job_id)
        assert (await sweep(runtime)).purged == 1
        key = index_row_key(record.created_at, record.job_id)
        table = runtime.store.table
        for pk, rk in ((owner_partition(ALICE.key), key), (owner_partition(ALICE.key), f"live_{record.job_id}"),
                       (tenant_partition(str(record.tenant_id)), key)):
            assert [e async for e in table.query_entities(
                "PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": pk, "rk": rk})] == [], (pk, rk)
        assert await JobIndex(table).live_jobs(ALICE.key, 10) == []
    finally:
        await runtime.close()


async def test_a_duplicate_at_the_quota_is_replayed_not_refused(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_MAX_INFLIGHT_PER_PRINCIPAL="1"),
                                 request_log)
    try:
        subject = uuid.uuid4()
        first = await submit_job(runtime, "probe", {"tag": "one"}, subject)
        again = await submit_job(runtime, "probe", {"tag": "one"}, subject)
        assert again.replayed and again.record.job_id == first.record.job_id
        assert await runtime.store.get(first.record.job_id) is not None
    finally:
        await runtime.close()


async def test_concurrent_doc_index_versions_end_with_the_newest_index(runtime: Runtime) -> None:
    from tests.engine.helpers import upload

    for round_ in range(3):
        subject = uuid.uuid4()
        await upload(runtime, runtime.settings.name_of(DOCUMENTS), str(subject), b"alpha beta gamma delta")
        jobs = [await submit_job(runtime, "doc-index", {"rowVersion": v, "action": "index"}, subject)
                for v in (1, 2)]
        bodies = [await _take(runtime) for _ in jobs]
        await asyncio.gather(*(handle_job_message(runtime, b, 1) for b in bodies))  # both versions at once
        for job in jobs:
            assert (await run_until_settled(runtime, job.record.job_id, timeout=30)).status is JobStatus.COMPLETED
        rows = runtime.rows(uuid.UUID(str(jobs[0].record.tenant_id)), DOC_INDEX)
        meta = await rows.get(f"doc-{subject}", "~meta")
        assert meta is not None and meta["rowVersion"] == 2 and meta.get("lockedBy") is None, (round_, meta)
        terms = {k: (await rows.get(f"doc-{subject}", k) or {}).get("rowVersion")
                 for k in await rows.keys(f"doc-{subject}") if k != "~meta"}
        assert set(terms) == {"alpha", "beta", "gamma", "delta"}
        assert set(terms.values()) == {2}, terms  # no row of v1 written after v2's


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
