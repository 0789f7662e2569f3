"""The storage round-trip budget, counted by azure-core's per-request hook on the real clients.

- A submission: 4 calls in 2 sequential round trips: (status insert | quota query), then
  (message send | one index transaction). Refused at the cap: 3 (the insert is deleted again).
- A processed job: the floor's 4 (read, claim, final transition, outcome/retry/poison send),
  plus, when the job ends, the delete of its live index row, sent alongside the outcome.
Every status write is a single-entity If-Match write: no entity-group transaction on the job's
partition. The host's own receive and delete are not the app's and are not counted; neither is
the handler's own work."""

from __future__ import annotations

from dataclasses import replace

from shared.domain.record import HISTORY_LIMIT
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from tests.engine.helpers import submit_job
from tests.support import Api, RequestLog, force

SUBMIT_CALLS = 4
PROCESS_BUDGET = 4  # a retry or poison hand-over
FINISH_BUDGET = 5  # a terminal transition: its outcome event and the live row's delete, together


async def _process(runtime: Runtime, log: RequestLog) -> list[tuple[str, str]]:
    message = [m async for m in runtime.queues.jobs.receive_messages(max_messages=1)][0]
    mark = log.mark()
    await handle_job_message(runtime, str(message.content), 1)
    used = log.since(mark)
    await runtime.queues.jobs.delete_message(message)
    return used


def _round_trips(used: list[tuple[str, str]], first: int) -> tuple[list[str], list[str]]:
    return sorted(m for m, _ in used[:first]), sorted(m for m, _ in used[first:])


async def test_submission_costs_four_calls_in_two_round_trips(runtime: Runtime, request_log: RequestLog) -> None:
    mark = request_log.mark()
    sub = await submit_job(runtime, "probe", {"tag": "budget"})
    used = request_log.since(mark)
    assert len(used) <= SUBMIT_CALLS, used
    first, second = _round_trips(used, 2)
    assert first == ["GET", "POST"]  # the quota query | the status insert (one entity, no transaction)
    assert any(p.endswith(f"/{runtime.settings.jobs_table}") for m, p in used[:2] if m == "POST")
    assert second == ["POST", "POST"]  # the message send | the index transaction
    assert any(p.endswith(f"/{runtime.settings.jobs_queue}/messages") for _, p in used[2:])
    mark = request_log.mark()
    again = await submit_job(runtime, "probe", {"tag": "budget"}, sub.record.subject_id)
    replay = request_log.since(mark)
    # conflicting insert | quota, read, join, then index repair | message re-send (never claimed: it may be lost)
    assert again.replayed and len(replay) <= 6, replay
    assert [m for m, p in replay if p.endswith(f"/{runtime.settings.jobs_queue}/messages")] == ["POST"]


async def test_processing_a_job_costs_the_floors_calls_and_the_live_row(
        runtime: Runtime, request_log: RequestLog) -> None:
    await submit_job(runtime, "probe", {"tag": "ok"})
    used = await _process(runtime, request_log)
    assert len(used) <= FINISH_BUDGET, used
    assert [m for m, _ in used[:3]] == ["GET", "PUT", "PUT"]  # read, claim, complete: single-entity If-Match
    assert sorted(m for m, _ in used[3:]) == ["DELETE", "POST"]  # outcome send | live row delete


async def test_a_retried_or_poisoned_attempt_stays_within_budget(runtime: Runtime, request_log: RequestLog) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "retry", "failTimes": 9})
    used = await _process(runtime, request_log)  # attempt 1: read, claim, -> Queued, send retry
    assert len(used) <= PROCESS_BUDGET, used
    record = await runtime.store.get(sub.record.job_id)
    assert record is not None
    last = await force(runtime, record, attempt=record.max_attempts - 1)  # fast-forward to the last attempt
    await runtime.queues.jobs.clear_messages()
    await runtime.queues.jobs.send_message(last.next_contract().to_json())
    used = await _process(runtime, request_log)  # last attempt: read, claim, -> Poisoned, poison send
    assert len(used) <= PROCESS_BUDGET, used


async def test_a_status_read_with_its_history_is_one_point_read(api: Api, request_log: RequestLog) -> None:
    sub = await submit_job(api.runtime, "probe", {"tag": "history-read"})
    await _process(api.runtime, request_log)
    mark = request_log.mark()
    res = await api.call("GET", f"/api/jobs/{sub.record.job_id}/status?history=true")
    used = request_log.since(mark)
    assert res.status == 200 and [h["to"] for h in res.body["history"]] == ["Queued", "Running", "Completed"]
    assert res.body["historyOmitted"] == 0
    assert [m for m, _ in used] == ["GET"], used  # the status entity carries its history


async def test_a_long_history_stays_within_the_entity_and_survives_a_round_trip(runtime: Runtime) -> None:
    """The bound holds on a real entity: HISTORY_LIMIT entries with the longest messages fit."""
    sub = await submit_job(runtime, "probe", {"tag": "long-history"})
    current = sub.record
    for n in range(HISTORY_LIMIT):
        now = runtime.clock()
        claimed = await runtime.store.write(current.claimed("me", now, now))
        failing = replace(claimed, max_attempts=10_000, last_error_code="X")
        step = failing.failed("SUBJECT_INVALID", "é" * 2000, now) if n == HISTORY_LIMIT - 1 else \
            failing.queued_for_retry(0.0, "ø" * 2000, now)
        current = await runtime.store.write(replace(step, before=claimed))
    stored = await runtime.store.get(sub.record.job_id)
    assert stored is not None and stored == current
    assert len(stored.history) == HISTORY_LIMIT and stored.history[0].reason == "Submitted"
    assert stored.history_dropped == 1 + 2 * HISTORY_LIMIT - HISTORY_LIMIT
