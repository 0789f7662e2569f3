"""The lifecycle owner: the one component that commits a job's status and what must follow it.

Every status change of every job goes through ``Lifecycle.commit`` (or ``create`` for a new job):

1. ``decide(record)`` returns the change to make (a typed ``Transition`` or ``Amendment`` from
   the record's own methods), or None when there is nothing to do, which makes re-applied
   decisions no-ops. It may raise to refuse (an API error, a lost lease).
2. The change is written with the ETag of the record it was decided on. A stale ETag (412)
   means someone else moved the job: re-read, decide again (at most ``max_rounds`` times).
3. What follows a committed transition is decided here and only here (``rules.follow_up``):
   the next attempt's message with its delay, the hand-over to the poison queue, or the outcome
   event, published and ``outcomePending`` cleared when the write marked it. Whether a terminal
   write marks the event pending is ``rules.outcome_owed_later``, chosen by the caller's Origin.
4. A transition out of a terminal state (a re-drive) publishes the finished run's outcome first,
   so a new run never swallows the old run's event.

``alongside`` is the caller's own work that goes out in the same round trip as the follow-up
(the list index rows of a submission or re-drive): it changes no job state. A new job's
``admit`` (the submission's quota check) runs in the same round trip as its insert; when it
refuses, the entity is deleted again before anything was sent.

Publishing an outcome also drops the job's live index rows (the in-flight quota's count), just
after the event: until then the live row marks the event as possibly unsent, for maintenance.

Every message the engine sends to the jobs, poison and outcome queues leaves through this class.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from shared.domain.contract import JobContract, JobStatus
from shared.domain.errors import ErrorCode, JobsError
from shared.domain.record import Change, JobRecord, Transition
from shared.domain.rules import FollowUp, Origin, follow_up, look_again_delay, outcome_owed_later
from shared.observability.logs import JobLogger, job_logger
from shared.observability.traces import current_traceparent
from shared.store.job_list import JobIndex
from shared.store.queues import JobQueues
from shared.store.status_table import ConcurrencyConflict, JobAlreadyExists, StatusStore

__all__ = ["Commit", "Contended", "Lifecycle", "Origin"]

logger = logging.getLogger("jobs.lifecycle")
Decide = Callable[[JobRecord], Change | None]
Alongside = Callable[[JobRecord], Awaitable[object]]
MAX_ROUNDS = 8


class Contended(JobsError):
    """The job kept changing under every round of a commit (a 503 to API callers: retry)."""

    def __init__(self, job_id: uuid.UUID, rounds: int):
        super().__init__(ErrorCode.STORAGE_UNAVAILABLE, "the job is changing rapidly; retry")
        self.job_id, self.rounds = job_id, rounds


@dataclass(frozen=True)
class Commit:
    record: JobRecord | None  # the job as it stands after the commit and its follow-up; None: no such job
    change: Change | None  # what was written; None: the decision was a no-op

    @property
    def applied(self) -> bool:
        return self.change is not None


class Lifecycle:
    def __init__(self, store: StatusStore, queues: JobQueues, index: JobIndex, clock: Callable[[], datetime]):
        self.store = store
        self.queues = queues
        self.index = index
        self.clock = clock

    async def read(self, job_id: uuid.UUID) -> JobRecord | None:
        return await self.store.get(job_id)

    async def create(self, record: JobRecord, origin: Origin, *, reason: str = "Submitted",
                     alongside: Alongside | None = None, admit: Awaitable[None] | None = None) -> JobRecord:
        """Insert a new job (raises JobAlreadyExists), then send its first message when the origin owes it.

        ``admit`` runs alongside the insert and raises to refuse the job: the entity is then deleted
        (If-Match) and the refusal raised. If the entity changed in between, someone else was given
        this job (a concurrent duplicate submission joined it), so it goes ahead after all."""
        created = record.created(reason)
        if admit is None:
            written = await self._insert(created)
        else:
            inserted, admitted = await asyncio.gather(self._insert(created), admit, return_exceptions=True)
            if isinstance(inserted, BaseException):
                admit_error = admitted if isinstance(admitted, BaseException) else None
                raise inserted from admit_error
            written = inserted
            if isinstance(admitted, BaseException):
                if await self.store.delete(written):
                    raise admitted
                current = await self.store.get(written.job_id)
                if current is None:
                    raise admitted
                logger.info("job %s was joined while its quota was checked; it goes ahead", written.job_id)
                written = current
        return await self._follow(Transition(None, written, created.entry), origin, alongside)

    async def create_many(self, records: list[JobRecord], origin: Origin, *,
                          admit: Callable[[list[JobRecord]], Awaitable[dict[uuid.UUID, Exception]]],
                          alongside: Callable[[list[JobRecord]], Awaitable[object]]) -> list[JobRecord | Exception]:
        """A batch of new jobs: every insert at once; then ``admit`` is given the jobs that were inserted and
        names those to refuse, with why (the quota), which are deleted again If-Match before anything was sent (one a
        duplicate joined meanwhile goes ahead, as in ``create``); then the others' first messages go out
        alongside ``alongside(kept)`` (their index rows). Each item is its record, or the exception that
        refused it: JobAlreadyExists (a duplicate, for the caller to replay), admit's refusal, storage trouble."""
        created = [record.created() for record in records]
        results: list[JobRecord | Exception] = []
        for outcome in await asyncio.gather(*(self._insert(c) for c in created), return_exceptions=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            results.append(outcome)
        inserted = [r for r in results if isinstance(r, JobRecord)]
        try:
            refused = await admit(inserted)
        except Exception:  # no decision (storage trouble): nothing was sent, so take back what was inserted
            await asyncio.gather(*(self.store.delete(r) for r in inserted), return_exceptions=True)
            raise
        for i, result in enumerate(results):
            if isinstance(result, JobRecord) and result.job_id in refused and await self.store.delete(result):
                results[i] = refused[result.job_id]
        kept = [(c, r) for c, r in zip(created, results, strict=True) if isinstance(r, JobRecord)]
        await asyncio.gather(*(self._follow(Transition(None, r, c.entry), origin, None) for c, r in kept),
                             alongside([r for _, r in kept]))
        return results

    async def _insert(self, created: Transition) -> JobRecord:
        """The insert, resolved when it may have landed before: a retried insert that finds its own
        entity (the same request's correlation id, never moved since) is this insert."""
        try:
            return await self.store.insert(created)
        except JobAlreadyExists as exists:
            existing = await self.store.get(created.after.job_id)
            mine = created.after
            if (existing is None or existing.correlation_id != mine.correlation_id
                    or existing.version != mine.version or existing.status is not mine.status):
                raise JobAlreadyExists(str(mine.job_id), existing) from exists
            return existing

    async def load_or_recreate(self, contract: JobContract, origin: Origin, log: JobLogger) -> JobRecord:
        """The job a message is about; no orphans: a message whose entity is missing recreates it."""
        record = await self.store.get(contract.job_id)
        if record is not None:
            return record
        log.warning("status entity missing; recreating it from the message")
        try:
            return await self.create(JobRecord.from_contract(contract, self.clock()), origin,
                                     reason="RecreatedFromMessage")
        except JobAlreadyExists as exists:
            existing = exists.existing or await self.store.get(contract.job_id)
            if existing is None:  # deleted in between (purge); nothing sensible left to run
                raise
            return existing

    async def commit(self, job_id: uuid.UUID, decide: Decide, origin: Origin, *, current: JobRecord | None = None,
                     alongside: Alongside | None = None, max_rounds: int = MAX_ROUNDS) -> Commit:
        """Decide, write If-Match, follow up; on a stale ETag re-read and re-decide. Raises Contended
        when every round found the job changed."""
        try:
            return await self._commit(job_id, decide, origin, current, alongside=alongside, max_rounds=max_rounds)
        except ConcurrencyConflict as exc:
            raise Contended(job_id, max_rounds) from exc

    async def publish_outcome(self, record: JobRecord) -> JobRecord:
        """Send a terminal job's outcome event (again: its id is deterministic) and drop its live index rows,
        then clear the pending mark."""
        event = record.outcome_event(current_traceparent())
        # The event first, then the live rows: a live row left on a finished job is how maintenance
        # finds an event a crash kept from being sent (within the grace period, not the message's lease).
        await self.queues.send_outcome(event)
        await self.index.finished(record)
        job_logger(record).info(
            "outcome %s emitted", record.status.value,
            extra={"outcome": record.status.value, "outcomeCode": event.code, "eventId": str(event.event_id)},
        )
        if not record.outcome_pending:
            return record
        run, status = record.run, record.status

        def clear(current: JobRecord) -> Change | None:
            return current.outcome_published(run, status)

        try:
            commit = await self._commit(record.job_id, clear, None, record, alongside=None, max_rounds=3)
        except ConcurrencyConflict:
            logger.warning("could not clear outcomePending for job %s; maintenance may re-send it", record.job_id)
            return record
        return commit.record or record

    async def look_again_after_lease(self, record: JobRecord) -> float:
        """Leave a copy of the running attempt's message that becomes visible just after its lease ends."""
        delay = look_again_delay(record, self.clock())
        # The running attempt's contract, not the next one: if the job is Queued for a retry by the time the
        # copy arrives, the copy is stale and the retry's own message keeps its backoff.
        await self.queues.send_job(record.running_contract(), delay)
        return delay

    async def resend_unclaimed(self, record: JobRecord) -> None:
        """Send a Queued job's next message again, visible when the job is due (a replay's repair: the first
        send may never have happened). Harmless when it did: one message claims, the other is stale."""
        delay = max(0.0, (record.visible_at - self.clock()).total_seconds())
        await self.queues.send_job(record.next_contract(), delay)

    async def refuse_message(self, body: str) -> None:
        """A message that is not a job contract goes straight to the poison path (never a crash loop)."""
        await self.queues.send_poison(body)

    async def _commit(self, job_id: uuid.UUID, decide: Decide, origin: Origin | None, current: JobRecord | None, *,
                      alongside: Alongside | None, max_rounds: int) -> Commit:
        """``origin`` None: only amendments may be decided (they owe no follow-up)."""
        record = current
        published: tuple[int, JobStatus] | None = None
        for _ in range(max_rounds):
            if record is None:
                record = await self.store.get(job_id)
                if record is None:
                    return Commit(None, None)
            change = decide(record)
            if change is None:
                return Commit(record, None)
            if isinstance(change, Transition):
                change = self._marked(change, origin)
                published = await self._publish_finished_run(change, published)
            try:
                written = await self.store.write(change)
            except ConcurrencyConflict:
                logger.debug("job %s changed since it was read; reading it again", job_id)
                record = None
                continue
            if isinstance(change, Transition) and origin is not None:  # (_marked refused a transition without one)
                return Commit(await self._follow(Transition(change.before, written, change.entry), origin, alongside),
                              change)
            if alongside is not None:
                await alongside(written)
            return Commit(written, change)
        raise ConcurrencyConflict(f"job {job_id}: still conflicting after {max_rounds} rounds")

    async def _publish_finished_run(self, transition: Transition,
                                    published: tuple[int, JobStatus] | None) -> tuple[int, JobStatus] | None:
        """Leaving a terminal state (a re-drive): the finished run's event goes out first, once per commit."""
        before = transition.before
        if before is None or not before.is_terminal or transition.after.is_terminal:
            return published
        leaving = (before.run, before.status)
        if published != leaving:
            await self.publish_outcome(before)
        return leaving

    @staticmethod
    def _marked(transition: Transition, origin: Origin | None) -> Transition:
        if origin is None:
            raise ValueError("a transition needs the origin that decides its follow-up")
        pending = outcome_owed_later(transition.after, origin)
        return Transition(transition.before, transition.after.marked_outcome_pending(pending), transition.entry)

    async def _follow(self, transition: Transition, origin: Origin, alongside: Alongside | None) -> JobRecord:
        after = transition.after
        step = follow_up(transition, origin)
        sends: list[Awaitable[object]] = []
        if step is FollowUp.SEND_NEXT:
            delay = max(0.0, (after.visible_at - self.clock()).total_seconds())
            sends.append(self.queues.send_job(after.next_contract(), delay))
        elif step is FollowUp.HAND_TO_POISON:
            sends.append(self.queues.send_poison(after.running_contract().to_json()))
        if alongside is not None:
            sends.append(alongside(after))
        await asyncio.gather(*sends)
        if step is FollowUp.PUBLISH:
            return await self.publish_outcome(after)
        return after

