"""The storage round-trip budget, counted by azure-core's per-request hook on the real clients.

- A submission: the 2 calls issue #2 budgeted (the entity+history transaction, the message send)
  plus what listing and the in-flight quota added in issue #3 (one quota query before the insert,
  two list-index writes sent alongside the message): 5 calls in 3 sequential round trips.
- A processed job: at most 4 (read, claim, final transition, outcome/retry/poison send).
The host's own receive and delete are not the app's and are not counted; neither is the
handler's own work."""

from __future__ import annotations

from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from tests.engine.helpers import submit_job
from tests.support import RequestLog, force

SUBMIT_CALLS = 5
PROCESS_BUDGET = 4


async def _process(runtime: Runtime, log: RequestLog) -> list[tuple[str, str]]:
    message = [m async for m in runtime.queues.jobs.receive_messages(max_messages=1)][0]
    mark = log.mark()
    await handle_job_message(runtime, str(message.content), 1)
    used = log.since(mark)
    await runtime.queues.jobs.delete_message(message)
    return used


async def test_submission_costs_five_calls_in_three_round_trips(runtime: Runtime, request_log: RequestLog) -> None:
    mark = request_log.mark()
    sub = await submit_job(runtime, "probe", {"tag": "budget"})
    used = request_log.since(mark)
    assert len(used) <= SUBMIT_CALLS, used
    quota, insert, last = used[0], used[1], sorted(used[2:])
    assert quota[0] == "GET" and insert[0] == "POST" and insert[1].endswith("/$batch")  # quota, then the insert
    assert sorted(m for m, _ in last) == ["PATCH", "POST", "POST"]  # tenant index | owner index | send
    assert any(p.endswith(f"/{runtime.settings.jobs_queue}/messages") for _, p in last)
    mark = request_log.mark()
    again = await submit_job(runtime, "probe", {"tag": "budget"}, sub.record.subject_id)
    replay = request_log.since(mark)
    assert again.replayed and len(replay) <= 5, replay  # quota, conflicting insert, read, index repair


async def test_processing_a_job_costs_at_most_four_round_trips(runtime: Runtime, request_log: RequestLog) -> None:
    await submit_job(runtime, "probe", {"tag": "ok"})
    used = await _process(runtime, request_log)
    assert len(used) <= PROCESS_BUDGET, used
    assert [m for m, _ in used] == ["GET", "POST", "POST", "POST"]  # read, claim, complete, outcome


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
