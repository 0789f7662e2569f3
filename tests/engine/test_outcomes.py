"""Outcome events under failures and races: an event whose sends keep failing, a re-drive during the
hand-over, a poison message that loses its race to the worker, a re-drive that has to re-read."""

from __future__ import annotations

import pytest
from azure.data.tables import UpdateMode

from shared.domain.contract import JobStatus
from shared.engine.actions import redrive
from shared.engine.poison import handle_poison_message
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from tests.engine.helpers import ALICE, events_for, submit_job, take_message
from tests.support import RequestLog, force, run_until_settled, sync_status_table


async def test_an_outcome_whose_sends_kept_failing_is_sent_by_the_poison_function(
        runtime: Runtime, request_log: RequestLog) -> None:
    """The outcome send fails on every delivery, the host moves the message to the poison queue:
    the Completed event must still go out (before the fix it was lost for good)."""
    sub = await submit_job(runtime, "probe", {"tag": "lost-outcome"})
    body = await take_message(runtime)
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


async def test_a_poison_message_that_loses_its_race_still_publishes_the_pending_outcome(
        runtime: Runtime, request_log: RequestLog) -> None:
    """The poison function reads the job Running; before its Poisoned write lands, the worker's own
    Poisoned (outcome pending, hand-over on its way) is written. The poison function re-reads, finds
    the job terminal and pending, and sends the event now, not after the sweep's grace period."""
    sub = await submit_job(runtime, "probe", {"tag": "poison-race"})
    body = await take_message(runtime)
    job = str(sub.record.job_id)
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None
    await force(runtime, record, status=JobStatus.RUNNING, attempt=1)
    with sync_status_table(runtime) as other:
        request_log.interleave_on("PUT", f"(PartitionKey='{job}'", lambda: other.update_entity(
            {"PartitionKey": job, "RowKey": "job", "status": "Poisoned", "outcomePending": True,
             "terminalAt": runtime.clock(), "outcomeCode": "MAX_ATTEMPTS_EXCEEDED"}, mode=UpdateMode.MERGE))
        await handle_poison_message(runtime, body)
    final = await runtime.store.get(sub.record.job_id)
    assert final is not None and final.status is JobStatus.POISONED and not final.outcome_pending
    assert [e["outcome"] for e in await events_for(runtime, sub.record.job_id)] == ["Poisoned"]


async def test_a_redrive_that_rereads_publishes_the_finished_runs_outcome_once(
        runtime: Runtime, request_log: RequestLog) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "redrive-race", "permanent": True})
    failed = await run_until_settled(runtime, sub.record.job_id)
    assert failed.status is JobStatus.FAILED
    assert len(await events_for(runtime, sub.record.job_id)) == 1  # the worker's Failed event
    job = str(sub.record.job_id)
    with sync_status_table(runtime) as other:  # another writer touches the job just before the re-drive's write
        request_log.interleave_on("PUT", f"(PartitionKey='{job}'", lambda: other.update_entity(
            {"PartitionKey": job, "RowKey": "job", "progressMessage": "touched"}, mode=UpdateMode.MERGE))
        queued = await redrive(runtime, failed, ALICE)
    assert queued.run == 2 and queued.status is JobStatus.QUEUED
    events = await events_for(runtime, sub.record.job_id)
    assert [e["outcome"] for e in events] == ["Failed", "Failed"]  # the worker's, and the re-drive's once
    assert len({e["eventId"] for e in events}) == 1
