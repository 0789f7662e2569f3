"""Submitting many jobs at once: one answer per item, at about half the storage calls per job.

A batch is up to ``MAX_BATCH`` submissions by one principal. Each item is validated on its own
(a bad item is refused with its code; the others go ahead), and items that derive the same job
are one job (the later ones are answered as replays of the first). Then:

1. Round trip 1: the principal's in-flight count (one indexed query) alongside every insert.
2. Items whose job existed are replays (``submit.replay``: joined, never refused for quota).
   The new jobs are admitted in the batch's order while the count stays within the cap; the
   rest are deleted again (If-Match) and refused ``QUOTA_EXCEEDED``, before anything was sent.
3. Round trip 2: each kept job's message alongside the index rows of all of them, 33 jobs per
   entity-group transaction (the rows share the tenant's partition).

Storage calls for n new jobs: 1 query + n inserts + n sends + ceil(n / 33) transactions, about
2.04 per job for a full batch against 4 for single submissions. The quota keeps the single path's
semantics: exact for batches that do not overlap other submissions by the same caller.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from shared.domain.commands import SubmitJob
from shared.domain.errors import ErrorCode, JobsError
from shared.domain.principal import Principal
from shared.domain.record import JobRecord
from shared.domain.rules import Origin
from shared.engine.runtime import Runtime
from shared.engine.submit import QUOTA_RETRY_AFTER_SECONDS, Submission, new_record, replay
from shared.store.status_table import JobAlreadyExists

MAX_BATCH = 100

BatchItem = Submission | JobsError  # per submission, in the request's order


@dataclass
class _Plan:
    records: list[JobRecord]  # one per distinct new job, in order of first appearance
    slot: dict[int, int]  # item index -> position in records (valid items only)
    refused: dict[int, JobsError]  # item index -> why it was refused before any storage call


def _plan(runtime: Runtime, principal: Principal, commands: list[SubmitJob], correlation_id: uuid.UUID) -> _Plan:
    plan = _Plan([], {}, {})
    first: dict[uuid.UUID, int] = {}
    for i, command in enumerate(commands):
        try:
            record = new_record(runtime, principal, command, correlation_id)
        except JobsError as exc:
            plan.refused[i] = exc
            continue
        if record.job_id not in first:
            first[record.job_id] = len(plan.records)
            plan.records.append(record)
        plan.slot[i] = first[record.job_id]
    return plan


async def submit_batch(runtime: Runtime, principal: Principal, commands: list[SubmitJob],
                       correlation_id: uuid.UUID) -> list[BatchItem]:
    if not 1 <= len(commands) <= MAX_BATCH:
        raise JobsError(ErrorCode.REQUEST_INVALID, f"a batch holds 1 to {MAX_BATCH} submissions")
    plan = _plan(runtime, principal, commands, correlation_id)
    cap = runtime.settings.max_inflight_per_principal
    live = asyncio.ensure_future(runtime.index.live_jobs(principal.key, limit=cap + 1))

    async def admit(inserted: list[JobRecord]) -> dict[uuid.UUID, Exception]:
        mine = {record.job_id for record in plan.records}
        room = cap - sum(1 for job_id in await live if job_id not in mine)
        refusal = JobsError(ErrorCode.QUOTA_EXCEEDED, f"at most {cap} jobs in flight per caller",
                            retry_after=QUOTA_RETRY_AFTER_SECONDS)
        return {record.job_id: refusal for record in inserted[max(0, room):]}

    try:
        created = await runtime.lifecycle.create_many(
            plan.records, Origin.REQUEST, admit=admit,
            alongside=lambda kept: runtime.index.add_many(kept, principal.key))
    finally:
        live.cancel()
    outcomes = await asyncio.gather(*(_settled(runtime, principal, r, c) for r, c in zip(plan.records, created,
                                                                                          strict=True)))
    answers: list[BatchItem] = []
    seen: set[int] = set()
    for i in range(len(commands)):
        if i in plan.refused:
            answers.append(plan.refused[i])
            continue
        slot = plan.slot[i]
        outcome = outcomes[slot]
        if slot in seen and isinstance(outcome, Submission):  # the same job again in this batch: a replay
            outcome = Submission(outcome.record, replayed=True)
        seen.add(slot)
        answers.append(outcome)
    return answers


async def _settled(runtime: Runtime, principal: Principal, record: JobRecord,
                   created: JobRecord | Exception) -> BatchItem:
    """One distinct job's answer: accepted, replayed (it existed), or refused with its code."""
    if isinstance(created, JobRecord):
        return Submission(created, replayed=False)
    try:
        if isinstance(created, JobAlreadyExists):
            replayed = await replay(runtime, principal, record, created.existing)
            if replayed is not None:
                return replayed
            return JobsError(ErrorCode.STORAGE_UNAVAILABLE, "the job changed while submitting; retry")
        raise created
    except JobsError as exc:
        return exc
    except Exception:  # storage trouble for this item only
        return JobsError(ErrorCode.STORAGE_UNAVAILABLE)
