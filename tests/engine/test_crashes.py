"""A crash between each pair of steps of submit and of processing: repaired, nothing lost.

A crash is a SimulatedCrash (a BaseException, so nothing in the app can catch it) raised by the
request hook of the real storage clients just before the named request leaves the process.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from devhost.azurite import Azurite
from shared.domain.contract import JobStatus
from shared.engine.runtime import Runtime
from shared.engine.sweep import sweep
from shared.engine.worker import handle_job_message
from tests.engine.helpers import events_for, submit_job
from tests.support import (
    EFFECTS,
    RequestLog,
    SimulatedCrash,
    deliver_once,
    history_of,
    make_runtime,
    make_settings,
    queued_jobs,
    run_until_settled,
)


@pytest.fixture
async def fast(azurite: Azurite, request_log: RequestLog) -> Runtime:
    """A runtime with second-scale lease and thresholds, so repairs happen within a test."""
    settings = make_settings(azurite.connection_string, JOBS_LEASE_SECONDS="1", JOBS_STRANDED_QUEUED_SECONDS="0",
                             JOBS_OUTCOME_GRACE_SECONDS="0")
    runtime = await make_runtime(settings, request_log)
    yield runtime  # type: ignore[misc]
    await runtime.close()


async def _wait_for_events(runtime: Runtime, job_id: uuid.UUID, timeout: float = 15) -> list[dict[str, object]]:
    """Keep delivering (a crashed message comes back after its visibility) until an event exists."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (events := await events_for(runtime, job_id)) and loop.time() < deadline:
        await deliver_once(runtime)
        await asyncio.sleep(0.3)
    return events


def _queue_send(runtime: Runtime) -> str:
    return f"/{runtime.settings.jobs_queue}/messages"


async def test_crash_between_entity_insert_and_message_send_is_repaired_by_maintenance(
        fast: Runtime, request_log: RequestLog) -> None:
    request_log.crash_on("POST", _queue_send(fast))
    job_id = None
    with pytest.raises(SimulatedCrash):
        await submit_job(fast, "probe", {"tag": "submit-crash"})
    queued = await queued_jobs(fast)
    assert len(queued) == 1 and not await fast.queues.jobs.peek_messages()
    job_id = queued[0].job_id
    report = await sweep(fast)
    assert report.requeued == 1
    record = await run_until_settled(fast, job_id)
    assert record.status is JobStatus.COMPLETED and EFFECTS[str(job_id)] == 1


async def test_crash_after_send_before_the_response_is_replayed_to_the_retrying_client(
        fast: Runtime, request_log: RequestLog) -> None:
    subject = uuid.uuid4()
    first = await submit_job(fast, "probe", {"tag": "retry-client"}, subject)
    again = await submit_job(fast, "probe", {"tag": "retry-client"}, subject)
    assert again.replayed and again.record.job_id == first.record.job_id
    assert len(await fast.queues.jobs.peek_messages(max_messages=32)) == 2  # never claimed: the replay re-sent it
    record = await run_until_settled(fast, first.record.job_id)
    assert record.status is JobStatus.COMPLETED and EFFECTS[str(first.record.job_id)] == 1  # the copy was harmless
    assert not await fast.queues.jobs.peek_messages()


async def test_a_replay_after_a_crash_before_the_send_sends_the_message_without_waiting_for_maintenance(
        fast: Runtime, request_log: RequestLog) -> None:
    subject = uuid.uuid4()
    request_log.crash_on("POST", _queue_send(fast))
    with pytest.raises(SimulatedCrash):
        await submit_job(fast, "probe", {"tag": "lost-send"}, subject)
    assert not await fast.queues.jobs.peek_messages()
    again = await submit_job(fast, "probe", {"tag": "lost-send"}, subject)  # the client retries
    assert again.replayed
    record = await run_until_settled(fast, again.record.job_id)  # no sweep: the replay's message runs it
    assert record.status is JobStatus.COMPLETED and EFFECTS[str(record.job_id)] == 1


async def test_a_replay_of_a_claimed_job_sends_nothing(fast: Runtime, request_log: RequestLog) -> None:
    subject = uuid.uuid4()
    first = await submit_job(fast, "probe", {"tag": "claimed", "sleep": 0.5}, subject)
    await run_until_settled(fast, first.record.job_id)
    again = await submit_job(fast, "probe", {"tag": "claimed", "sleep": 0.5}, subject)
    assert again.replayed and not await fast.queues.jobs.peek_messages()



@pytest.mark.parametrize("step", ["claim", "handler", "complete", "outcome"])
async def test_crash_between_processing_steps_is_repaired(fast: Runtime, request_log: RequestLog, step: str) -> None:
    table = f"/{fast.settings.jobs_table}"
    outcome = f"/{fast.settings.outcomes_queue}/messages"
    sub = await submit_job(fast, "probe", {"tag": f"step-{step}", "sleep": 0.15 if step == "handler" else 0})
    job = str(sub.record.job_id)
    status_write = f"(PartitionKey='{job}',RowKey='job')"  # a transition: one If-Match replace (PUT)
    if step == "claim":  # crash as the claim write goes out: nothing was written
        request_log.crash_on("PUT", status_write)
    elif step == "handler":  # claimed, then the process dies before the handler's effect
        request_log.crash_on("GET", table, after=1)  # the first GET is the read; the 2nd is the cancel check
    elif step == "complete":  # the handler's effect happened; the Completed write never did
        request_log.crash_on("PUT", status_write, after=1)
    else:  # Completed was written; the outcome send never happened
        request_log.crash_on("POST", outcome)
    delivered = await deliver_once(fast, visibility=2)
    assert [d.crashed for d in delivered] == [True]
    record = await run_until_settled(fast, sub.record.job_id, timeout=30)
    assert record.status is JobStatus.COMPLETED
    events = await _wait_for_events(fast, sub.record.job_id)
    assert len({e["eventId"] for e in events}) == 1 and events[0]["outcome"] == "Completed"
    assert EFFECTS[job] == (2 if step == "complete" else 1)  # a crash after the effect repeats it: idempotent


async def test_crash_between_completion_and_event_send_is_repaired_by_maintenance_not_the_message_lease(
        fast: Runtime, request_log: RequestLog) -> None:
    """The host's lease keeps a crashed host's message invisible for 10 minutes; the event must not wait for it."""
    sub = await submit_job(fast, "probe", {"tag": "event-lost"})
    request_log.crash_on("POST", f"/{fast.settings.outcomes_queue}/messages")
    delivered = await deliver_once(fast, visibility=600)  # the message stays invisible, as after a host crash
    assert [d.crashed for d in delivered] == [True]
    record = await fast.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED and not record.outcome_pending
    assert not await events_for(fast, sub.record.job_id)
    report = await sweep(fast)  # grace 0 here; in Azure JOBS_OUTCOME_GRACE_SECONDS plus one timer period
    assert report.outcomes_resent == 1
    events = await events_for(fast, sub.record.job_id)
    assert [e["outcome"] for e in events] == ["Completed"]
    assert not await fast.index.live_jobs(record.submitters[0], limit=10)  # and it no longer counts for the quota
    assert (await sweep(fast)).outcomes_resent == 0  # once: the live row went with the event


async def test_crash_after_outcome_send_before_delete_resends_the_same_event(fast: Runtime) -> None:
    sub = await submit_job(fast, "probe", {"tag": "after-send"})
    messages = [m async for m in fast.queues.jobs.receive_messages(max_messages=1, visibility_timeout=1)]
    await handle_job_message(fast, str(messages[0].content), 1)  # ... and the host dies before deleting
    await asyncio.sleep(1.5)
    await deliver_once(fast)
    events = await events_for(fast, sub.record.job_id)
    assert len(events) == 2 and len({e["eventId"] for e in events}) == 1


async def test_crash_between_retry_transition_and_retry_send_is_repaired(
        fast: Runtime, request_log: RequestLog) -> None:
    sub = await submit_job(fast, "probe", {"tag": "retry-crash", "failTimes": 1})
    request_log.crash_on("POST", f"/{fast.settings.jobs_queue}/messages")  # the retry message
    delivered = await deliver_once(fast, visibility=60)
    assert [d.crashed for d in delivered] == [True]
    record = await fast.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.QUEUED and record.attempt == 1
    await asyncio.sleep(max(0.0, (record.visible_at - fast.clock()).total_seconds()) + 0.2)
    assert (await sweep(fast)).requeued == 1
    final = await run_until_settled(fast, sub.record.job_id)
    assert final.status is JobStatus.COMPLETED and final.attempt == 2


async def test_expired_lease_is_taken_over_by_maintenance(fast: Runtime, request_log: RequestLog) -> None:
    sub = await submit_job(fast, "probe", {"tag": "takeover", "sleep": 0.15})
    request_log.crash_on("GET", f"/{fast.settings.jobs_table}", after=1)
    delivered = await deliver_once(fast, visibility=120)  # the message will not come back in this test
    assert [d.crashed for d in delivered] == [True]
    await asyncio.sleep(1.2)  # the 1 s lease runs out
    report = await sweep(fast)
    assert report.taken_over == 1
    record = await run_until_settled(fast, sub.record.job_id)
    assert record.status is JobStatus.COMPLETED and record.attempt == 2
    assert "LEASE_EXPIRED" in [h.reason for h in await history_of(fast, sub.record.job_id)]


async def test_expired_lease_on_the_last_attempt_is_poisoned_with_its_event(
        fast: Runtime, request_log: RequestLog) -> None:
    sub = await submit_job(fast, "probe", {"tag": "last-takeover", "failTimes": 2, "sleep": 0.15})
    for _ in range(20):  # run attempts 1 and 2 (both fail transiently)
        await deliver_once(fast)
        record = await fast.store.get(sub.record.job_id)
        assert record is not None
        if record.attempt == 2 and record.status is JobStatus.QUEUED:
            break
        await asyncio.sleep(0.3)
    request_log.crash_on("GET", f"/{fast.settings.jobs_table}", after=1)  # attempt 3 dies mid-run
    while not any(d.crashed for d in await deliver_once(fast, visibility=120)):
        await asyncio.sleep(0.3)
    await asyncio.sleep(1.2)
    assert (await sweep(fast)).taken_over == 1
    record = await fast.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.POISONED and not record.outcome_pending
    assert [e["outcome"] for e in await events_for(fast, sub.record.job_id)] == ["Poisoned"]


async def test_pending_outcome_is_resent_by_maintenance(fast: Runtime, request_log: RequestLog) -> None:
    sub = await submit_job(fast, "probe", {"tag": "pending"})
    body = str([m async for m in fast.queues.jobs.receive_messages(max_messages=1)][0].content)
    request_log.crash_on("POST", f"/{fast.settings.outcomes_queue}/messages")
    from shared.engine.poison import handle_poison_message

    with pytest.raises(SimulatedCrash):
        await handle_poison_message(fast, body)  # Poisoned is written, the event send dies
    record = await fast.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.POISONED and record.outcome_pending
    assert (await sweep(fast)).outcomes_resent == 1
    assert [e["outcome"] for e in await events_for(fast, sub.record.job_id)] == ["Poisoned"]


async def test_retention_purges_terminal_jobs(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_RETENTION_DAYS="0"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "purge"})
        await run_until_settled(runtime, sub.record.job_id)
        live = await submit_job(runtime, "probe", {"tag": "live"})
        assert (await sweep(runtime)).purged == 1
        assert await runtime.store.get(sub.record.job_id) is None
        assert await runtime.store.get(live.record.job_id) is not None
    finally:
        await runtime.close()


async def test_an_attempt_interrupted_by_its_host_stopping_hands_the_job_on_at_once(
        azurite: Azurite, request_log: RequestLog) -> None:
    """A cancelled invocation (devhost stopping, a function timeout) does what maintenance would do after
    the lease ran out, at once: the next host need not wait JOBS_LEASE_SECONDS (300 s here)."""
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_LEASE_SECONDS="300"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "interrupted", "sleep": 20})
        body = str([m async for m in runtime.queues.jobs.receive_messages(max_messages=1)][0].content)
        run = asyncio.create_task(handle_job_message(runtime, body, 1))
        for _ in range(100):
            record = await runtime.store.get(sub.record.job_id)
            if record is not None and record.status is JobStatus.RUNNING:
                break
            await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        record = await runtime.store.get(sub.record.job_id)
        assert record is not None and (record.status, record.attempt, record.lease_owner) == (JobStatus.QUEUED, 1, None)
        assert (await history_of(runtime, record.job_id))[-1].message == "attempt 1 interrupted: its host stopped"
        assert EFFECTS[str(record.job_id)] == 0  # the handler stopped with its invocation
        waiting = await runtime.queues.jobs.peek_messages(max_messages=5)
        assert [json.loads(str(m.content))["attempt"] for m in waiting] == [2]  # the next attempt, visible now
    finally:
        await runtime.close()
