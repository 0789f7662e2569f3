"""The list index and the in-flight quota.

The quota counts a principal's live index rows: written with the job's list rows, deleted with
its outcome event, written again by a re-drive. Refusal costs 3 storage calls and leaves nothing
behind. Sequential submissions are held exactly at the cap; n concurrent ones may overshoot it by
at most n - 1 (each counts the others only once their index write landed; docs/api.md)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devhost.azurite import Azurite
from shared.domain.errors import ErrorCode, JobsError
from shared.domain.rules import Origin
from shared.engine.actions import redrive
from shared.engine.runtime import Runtime
from shared.engine.sweep import sweep
from shared.store.job_list import JobIndex, index_row_key, live_scope, owner_scope, tenant_scope
from tests.engine.helpers import ALICE, submit_job
from tests.support import RequestLog, force, make_runtime, make_settings, run_until_settled

CAP = 3


async def _capped(azurite: Azurite, request_log: RequestLog, cap: int = CAP, **settings: str) -> Runtime:
    return await make_runtime(make_settings(azurite.connection_string, JOBS_MAX_INFLIGHT_PER_PRINCIPAL=str(cap),
                                            **settings), request_log)


async def _rows(runtime: Runtime, partition: str, row_key: str) -> list[object]:
    return [e async for e in runtime.store.table.query_entities(
        "PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": partition, "rk": row_key})]


async def test_purge_removes_the_jobs_list_rows(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_RETENTION_DAYS="0"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "purge-index"})
        record = await run_until_settled(runtime, sub.record.job_id)
        assert (await sweep(runtime)).purged == 1
        key = index_row_key(record.created_at, record.job_id)
        owner, tenant, live = owner_scope(ALICE.key), tenant_scope(str(record.tenant_id)), live_scope(ALICE.key)
        for pk, rk in ((owner.partition, owner.prefix + key), (tenant.partition, tenant.prefix + key),
                       (live.partition, f"{live.prefix}{record.job_id}")):
            assert await _rows(runtime, pk, rk) == [], (pk, rk)
        assert await runtime.store.get(record.job_id) is None
        assert await JobIndex(runtime.store.table).live_jobs(ALICE.key, 10) == []
    finally:
        await runtime.close()


async def test_a_job_stops_counting_when_its_outcome_is_published(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "live"})
    assert await runtime.index.live_jobs(ALICE.key, 10) == [sub.record.job_id]
    await run_until_settled(runtime, sub.record.job_id)
    assert await runtime.index.live_jobs(ALICE.key, 10) == []


async def test_refused_at_the_cap_in_three_calls_leaving_nothing(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await _capped(azurite, request_log)
    try:
        for n in range(CAP):
            await submit_job(runtime, "probe", {"tag": f"fill-{n}"})
        messages = (await runtime.queues.jobs.get_queue_properties()).approximate_message_count
        mark = request_log.mark()
        subject = uuid.uuid4()
        with pytest.raises(JobsError) as refused:
            await submit_job(runtime, "probe", {"tag": "over"}, subject)
        used = request_log.since(mark)
        assert refused.value.code is ErrorCode.QUOTA_EXCEEDED and refused.value.retry_after
        assert len(used) <= 3, used  # insert | quota query, then the insert is deleted again
        assert sorted(m for m, _ in used) == ["DELETE", "GET", "POST"]
        assert len(await runtime.index.live_jobs(ALICE.key, 10)) == CAP
        assert (await runtime.queues.jobs.get_queue_properties()).approximate_message_count == messages
        stray = [r async for r in runtime.store.table.query_entities(
            "subjectId eq @s", parameters={"s": str(subject)})]
        assert stray == []  # no status entity, no index rows
    finally:
        await runtime.close()


async def test_sequential_submissions_are_held_exactly_at_the_cap(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await _capped(azurite, request_log)
    try:
        for n in range(CAP):
            await submit_job(runtime, "probe", {"tag": f"seq-{n}"})
        with pytest.raises(JobsError):
            await submit_job(runtime, "probe", {"tag": "seq-over"})
        first = (await runtime.index.live_jobs(ALICE.key, 10))[0]  # one is cancelled: a slot is free again
        await runtime.lifecycle.commit(first, lambda r: r.cancelled(runtime.clock()), Origin.REQUEST)
        assert len(await runtime.index.live_jobs(ALICE.key, 10)) == CAP - 1
        await submit_job(runtime, "probe", {"tag": "seq-after"})
        with pytest.raises(JobsError):
            await submit_job(runtime, "probe", {"tag": "seq-over-again"})
    finally:
        await runtime.close()


async def test_twenty_parallel_submits_at_the_cap(azurite: Azurite, request_log: RequestLog) -> None:
    """At the cap: every one refused. One below it: the overshoot stays within the stated bound (n - 1)."""
    runtime = await _capped(azurite, request_log)
    try:
        for n in range(CAP):
            await submit_job(runtime, "probe", {"tag": f"cap-{n}"})
        results = await asyncio.gather(*(submit_job(runtime, "probe", {"tag": f"at-{n}"}) for n in range(20)),
                                       return_exceptions=True)
        assert all(isinstance(r, JobsError) and r.code is ErrorCode.QUOTA_EXCEEDED for r in results), results
        assert len(await runtime.index.live_jobs(ALICE.key, 100)) == CAP
        one = (await runtime.index.live_jobs(ALICE.key, 1))[0]
        await runtime.lifecycle.commit(one, lambda r: r.cancelled(runtime.clock()), Origin.REQUEST)
        results = await asyncio.gather(*(submit_job(runtime, "probe", {"tag": f"below-{n}"}) for n in range(20)),
                                       return_exceptions=True)
        accepted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, JobsError) and r.code is ErrorCode.QUOTA_EXCEEDED]
        assert len(accepted) + len(refused) == 20, results  # no 503s, nothing else
        assert 1 <= len(accepted) <= 20  # overshoot = len(accepted) - 1 <= 19 = n - 1
        live = await runtime.index.live_jobs(ALICE.key, 100)
        assert len(live) == CAP - 1 + len(accepted)  # every accepted job counts; no refused one does
        for job in refused:
            assert job.retry_after
    finally:
        await runtime.close()


async def test_a_duplicate_at_the_quota_is_replayed_not_refused(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await _capped(azurite, request_log, cap=1)
    try:
        subject = uuid.uuid4()
        first = await submit_job(runtime, "probe", {"tag": "one"}, subject)
        again = await submit_job(runtime, "probe", {"tag": "one"}, subject)
        assert again.replayed and again.record.job_id == first.record.job_id
        assert await runtime.store.get(first.record.job_id) is not None
    finally:
        await runtime.close()


async def test_concurrent_duplicates_at_the_cap_both_get_the_job(azurite: Azurite, request_log: RequestLog) -> None:
    """A refused creator must not delete the job its twin was just given (the twin's join changes the ETag)."""
    runtime = await _capped(azurite, request_log, cap=1)
    try:
        await submit_job(runtime, "probe", {"tag": "occupant"})
        subject = uuid.uuid4()
        results = await asyncio.gather(*(submit_job(runtime, "probe", {"tag": "twin"}, subject) for _ in range(2)),
                                       return_exceptions=True)
        given = [r for r in results if not isinstance(r, BaseException)]
        for submission in given:  # whoever got a 202 has a job that exists and will run
            record = await runtime.store.get(submission.record.job_id)
            assert record is not None
        if not given:
            assert all(isinstance(r, JobsError) and r.code is ErrorCode.QUOTA_EXCEEDED for r in results)
    finally:
        await runtime.close()


async def test_a_redrive_counts_against_the_quota(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await _capped(azurite, request_log, cap=1)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "redrive", "permanent": True})
        failed = await run_until_settled(runtime, sub.record.job_id)
        assert failed.is_terminal and await runtime.index.live_jobs(ALICE.key, 10) == []
        other = await submit_job(runtime, "probe", {"tag": "occupant"})
        with pytest.raises(JobsError) as refused:
            await redrive(runtime, failed, ALICE)
        assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
        await force(runtime, other.record, status=failed.status)  # the occupant leaves (its row is dropped below)
        await runtime.index.finished(other.record)
        again = await redrive(runtime, failed, ALICE)
        assert again.run == 2 and await runtime.index.live_jobs(ALICE.key, 10) == [again.job_id]
    finally:
        await runtime.close()


async def test_purge_takes_the_partition_and_keeps_a_job_that_changed(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "purge-rows"})
    job = str(sub.record.job_id)
    await runtime.store.put_marker(sub.record.job_id, "step-1", "1")
    await runtime.store.table.create_entity({"PartitionKey": job, "RowKey": "h00000001", "target": "Queued"})
    changed = await force(runtime, sub.record, progress_message="moved")
    assert not await runtime.store.purge(sub.record)  # read before it changed: kept
    assert await runtime.store.get(sub.record.job_id) is not None
    assert await runtime.store.purge(changed)
    left = [e async for e in runtime.store.table.query_entities("PartitionKey eq @pk", parameters={"pk": job})]
    assert left == []
