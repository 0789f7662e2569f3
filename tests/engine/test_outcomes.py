"""Outcome events under failures: an event whose sends keep failing, a re-drive during the hand-over."""

from __future__ import annotations

import pytest

from shared.domain.contract import JobStatus
from shared.engine.actions import redrive
from shared.engine.poison import handle_poison_message
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from tests.engine.helpers import ALICE, events_for, submit_job, take_message
from tests.support import RequestLog, force


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
