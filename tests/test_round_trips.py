"""The storage round-trip budget, counted by azure-core's per-request hook on the real clients:
at most 2 per submission (entity+history transaction, message send) and at most 4 per processed
job (read, claim, final transition, outcome/retry/poison send). The host's own receive and delete
are not the app's and are not counted; neither is the handler's own work."""

from __future__ import annotations

from shared.runtime import Runtime
from shared.worker import handle_job_message
from tests.engine.helpers import submit_job
from tests.support import RequestLog

SUBMIT_BUDGET = 2
PROCESS_BUDGET = 4


async def _process(runtime: Runtime, log: RequestLog) -> list[tuple[str, str]]:
    message = [m async for m in runtime.queues.jobs.receive_messages(max_messages=1)][0]
    mark = log.mark()
    await handle_job_message(runtime, str(message.content), 1)
    used = log.since(mark)
    await runtime.queues.jobs.delete_message(message)
    return used


async def test_submission_costs_at_most_two_round_trips(runtime: Runtime, request_log: RequestLog) -> None:
    mark = request_log.mark()
    sub = await submit_job(runtime, "probe", {"tag": "budget"})
    used = request_log.since(mark)
    assert len(used) <= SUBMIT_BUDGET, used
    assert [m for m, _ in used] == ["POST", "POST"]  # one transaction, one send
    mark = request_log.mark()
    again = await submit_job(runtime, "probe", {"tag": "budget"}, sub.record.subject_id)
    assert again.replayed and len(request_log.since(mark)) <= SUBMIT_BUDGET  # conflicting insert + read


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
    await runtime.store.update(record, attempt=record.max_attempts - 1)  # fast-forward to the last attempt
    await runtime.queues.jobs.clear_messages()
    await runtime.queues.jobs.send_message(record.contract(record.max_attempts).to_json())
    used = await _process(runtime, request_log)  # last attempt: read, claim, -> Poisoned, poison send
    assert len(used) <= PROCESS_BUDGET, used
