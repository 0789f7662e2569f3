"""At-least-once delivery: duplicates, concurrency, races, retries, poison, missing entities."""

from __future__ import annotations

import asyncio
import re
import uuid

from devhost.azurite import Azurite
from jobs.storage_names import DOC_INDEX, DOCUMENTS
from shared.domain.contract import JobStatus
from shared.domain.record import HistoryEntry
from shared.engine.poison import handle_poison_message
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from tests.engine.helpers import events_for, submit_job, upload
from tests.support import EFFECTS, RequestLog, history_of, make_runtime, make_settings, run_until_settled


async def _first_message(runtime: Runtime) -> str:
    messages = [m async for m in runtime.queues.jobs.receive_messages(messages_per_page=1, max_messages=1)]
    assert len(messages) == 1
    await runtime.queues.jobs.delete_message(messages[0])
    return str(messages[0].content)


async def test_duplicate_delivery_runs_the_side_effect_once(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "dup"})
    body = await _first_message(runtime)
    for _ in range(10):  # the same message delivered ten times, one after another
        await handle_job_message(runtime, body, 1)
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED
    assert EFFECTS[str(sub.record.job_id)] == 1
    events = await events_for(runtime, sub.record.job_id)
    assert {e["eventId"] for e in events} == {events[0]["eventId"]}  # re-sent events are the same event
    assert all(e["outcome"] == "Completed" for e in events)


async def test_concurrent_delivery_of_one_message_runs_the_side_effect_once(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "conc", "sleep": 0.3})
    body = await _first_message(runtime)
    await asyncio.gather(*(handle_job_message(runtime, body, 1) for _ in range(5)))
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED
    assert EFFECTS[str(sub.record.job_id)] == 1
    history = await history_of(runtime, sub.record.job_id)
    assert [h.target for h in history] == ["Queued", "Running", "Completed"]


async def test_two_workers_race_for_one_job_one_claims_one_backs_off(azurite: Azurite) -> None:
    settings = make_settings(azurite.connection_string)
    log_a, log_b = RequestLog(), RequestLog()
    worker_a, worker_b = await make_runtime(settings, log_a), await make_runtime(settings, log_b)
    try:
        for _ in range(5):
            sub = await submit_job(worker_a, "probe", {"tag": uuid.uuid4().hex, "sleep": 0.2})
            body = await _first_message(worker_a)
            await asyncio.gather(handle_job_message(worker_a, body, 1), handle_job_message(worker_b, body, 1))
            record = await worker_a.store.get(sub.record.job_id)
            assert record is not None and record.status is JobStatus.COMPLETED and record.attempt == 1
            assert EFFECTS[str(sub.record.job_id)] == 1
            claims = [h for h in await history_of(worker_a, sub.record.job_id) if h.target == "Running"]
            assert len(claims) == 1
    finally:
        await worker_a.close()
        await worker_b.close()


def _retry_delays(history: list[HistoryEntry]) -> list[float]:
    found = [re.search(r"retry in ([0-9.]+)s", h.message or "") for h in history]
    return [float(m.group(1)) for m in found if m]


async def test_transient_failures_retry_with_growing_delay_then_poison_with_outcome(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "flaky", "failTimes": 99})
    record = await run_until_settled(runtime, sub.record.job_id, timeout=40)
    assert record.status is JobStatus.POISONED
    assert record.outcome_code == "MAX_ATTEMPTS_EXCEEDED" and record.attempt == record.max_attempts == 3
    delays = _retry_delays(await history_of(runtime, sub.record.job_id))
    assert len(delays) == 2  # attempts 1 and 2 were retried; attempt 3 was the last
    base = runtime.settings.retry_base_seconds
    for n, delay in enumerate(delays, start=1):
        assert base * 2 ** (n - 1) / 2 <= delay <= base * 2 ** (n - 1)  # exponential with equal jitter
    assert delays[1] >= delays[0]
    events = await events_for(runtime, sub.record.job_id)
    assert [e["outcome"] for e in events] == ["Poisoned"] and events[0]["code"] == "MAX_ATTEMPTS_EXCEEDED"
    assert EFFECTS[str(sub.record.job_id)] == 0


async def test_transient_failure_then_success_completes_on_a_later_attempt(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "recovers", "failTimes": 1})
    record = await run_until_settled(runtime, sub.record.job_id, timeout=30)
    assert record.status is JobStatus.COMPLETED and record.attempt == 2
    assert record.last_error_code == "TRANSIENT_ERROR"
    assert EFFECTS[str(sub.record.job_id)] == 1


async def test_permanent_error_fails_without_retry(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "perm", "permanent": True})
    record = await run_until_settled(runtime, sub.record.job_id)
    assert record.status is JobStatus.FAILED and record.attempt == 1 and record.outcome_code == "SUBJECT_INVALID"
    assert [e["outcome"] for e in await events_for(runtime, sub.record.job_id)] == ["Failed"]


async def test_missing_subject_fails_with_subject_not_found(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "doc-index", {"rowVersion": 1, "action": "index"})
    record = await run_until_settled(runtime, sub.record.job_id)
    assert record.status is JobStatus.FAILED and record.outcome_code == "SUBJECT_NOT_FOUND" and record.attempt == 1


async def test_message_whose_entity_is_missing_recreates_it_and_runs(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "orphan"})
    body = await _first_message(runtime)
    assert await runtime.store.purge(sub.record)
    assert await runtime.store.get(sub.record.job_id) is None
    await handle_job_message(runtime, body, 1)
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED
    history = await history_of(runtime, sub.record.job_id)
    assert history[0].reason == "RecreatedFromMessage"
    assert [e["outcome"] for e in await events_for(runtime, sub.record.job_id)] == ["Completed"]


async def test_unparseable_message_goes_straight_to_poison_without_crashing(runtime: Runtime) -> None:
    await handle_job_message(runtime, "{not json", 1)  # does not raise: no crash loop
    poisoned = [m async for m in runtime.queues.poison.receive_messages(max_messages=5)]
    assert [str(m.content) for m in poisoned] == ["{not json"]
    await handle_poison_message(runtime, "{not json")  # the poison function drops it, never throws


async def test_poison_of_a_known_job_with_invalid_contract_poisons_it(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "badcontract"})
    await _first_message(runtime)
    bad = f'{{"jobId": "{sub.record.job_id}", "jobType": 42}}'
    await handle_job_message(runtime, bad, 1)
    record = await run_until_settled(runtime, sub.record.job_id)
    assert record.status is JobStatus.POISONED and record.outcome_code == "CONTRACT_INVALID"


async def test_host_crash_loop_poison_message_poisons_the_job_once(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "crashloop"})
    body = await _first_message(runtime)
    await handle_poison_message(runtime, body)  # what the host does after maxDequeueCount failures
    await handle_poison_message(runtime, body)  # and again: idempotent (the same event, re-sent)
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.POISONED and not record.outcome_pending
    events = await events_for(runtime, sub.record.job_id)
    assert {e["outcome"] for e in events} == {"Poisoned"} and len({e["eventId"] for e in events}) == 1


async def test_poison_never_overwrites_a_completed_job(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "done"})
    body = await _first_message(runtime)
    await handle_job_message(runtime, body, 1)
    await handle_poison_message(runtime, body)
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED


async def test_doc_index_out_of_order_versions_keep_the_newest(runtime: Runtime) -> None:
    subject = uuid.uuid4()
    docs = runtime.settings.name_of(DOCUMENTS)
    await upload(runtime, docs, str(subject), b"alpha beta gamma")
    new = await submit_job(runtime, "doc-index", {"rowVersion": 2, "action": "index"}, subject)
    assert (await run_until_settled(runtime, new.record.job_id)).status is JobStatus.COMPLETED
    await upload(runtime, docs, str(subject), b"old words only")
    old = await submit_job(runtime, "doc-index", {"rowVersion": 1, "action": "index"}, subject)
    record = await run_until_settled(runtime, old.record.job_id)
    assert record.result["skipped"] == "newer version indexed"
    rows = runtime.rows(uuid.UUID(str(record.tenant_id)), DOC_INDEX)
    assert set(await rows.keys(f"doc-{subject}")) == {"alpha", "beta", "gamma", "~meta"}
