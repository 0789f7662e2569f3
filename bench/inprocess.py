"""Part ``floor``: the app's submission and processing code against the floor, in one process.

One event loop, one Azurite, one set of the app's storage clients shared by both sides. Every
repetition uses fresh tables and queues for each side and runs, at each concurrency (16, then 1),
submit then process, the two sides one after the other in alternating order. A warm-up
repetition runs first and is not reported. Processing includes the host's part on both sides:
each job is one ``receive_message``, the side's handling, and one ``delete_message``.
"""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from bench.baseline import RawJobs, RawRequest
from bench.harness import CallCounter, MemoryResult, ProcessCpu, RunResult, measure_memory, progress, run_bounded
from jobs.storage_names import ANALYSIS, DOC_INDEX, DOCUMENTS, MAIL
from shared.domain.commands import SubmitJob
from shared.domain.principal import Principal
from shared.engine.runtime import Runtime
from shared.engine.submit import submit
from shared.engine.worker import handle_job_message
from shared.store.clients import StorageClients
from tests.support import EFFECTS, TENANT, TEST_REGISTRY, make_settings

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Side = Literal["app", "floor"]
Phase = Literal["submit", "process"]
SIDES: tuple[Side, Side] = ("app", "floor")
PHASES: tuple[Phase, Phase] = ("submit", "process")


@dataclass(frozen=True)
class Options:
    jobs: int  # per side per repetition at --concurrency
    latency_jobs: int  # per side per repetition at concurrency 1
    concurrency: int
    repeats: int
    warmup: int
    principals: int
    memory_jobs: int  # 0: no memory passes


@dataclass
class Results:
    # (concurrency, phase, side) -> one result per repetition
    speed: dict[tuple[int, Phase, Side], list[RunResult]] = field(default_factory=dict)
    memory: dict[tuple[Phase, Side], list[MemoryResult]] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)


class Runner(Protocol[R_co]):
    """Runs one side's operation over its inputs and measures it."""

    def __call__(self, items: Sequence[T], operation: Callable[[T], Awaitable[object]], /) -> Awaitable[R_co]: ...


class Receiver:
    """The host's part before an invocation: one visible message, under a lease.

    Azurite can hand one message to two of several concurrent receives (seen under tracemalloc,
    where everything is slower); a host never runs one message twice at once, so a message this
    round already holds is skipped (and counted) and another one received."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.receipts: dict[str, str] = {}  # the latest pop receipt of each held message (a double hand-out renews it)
        self.lost_deletes = 0  # deletes whose receipt was superseded all the same (the message stays; reported)
        self.duplicates = 0
        self.conflicts = 0  # floor claims or completions that found the entity changed

    async def receive(self, queue: QueueClient) -> tuple[str, str, str, int]:
        for _ in range(100):
            message = await queue.receive_message(visibility_timeout=600)
            if message is None:
                await asyncio.sleep(0.01)
                continue
            if message.id in self.held:
                self.duplicates += 1
                self.receipts[message.id] = str(message.pop_receipt)  # the holder's receipt is void now
                continue
            self.held.add(message.id)
            self.receipts[message.id] = str(message.pop_receipt)
            return message.id, str(message.pop_receipt), str(message.content), int(message.dequeue_count or 1)
        raise RuntimeError(f"{queue.queue_name}: no message to process")

    async def delete(self, queue: QueueClient, message_id: str, receipt: str) -> None:
        """The host's delete after the function returned, with the message's latest receipt."""
        try:
            await queue.delete_message(message_id, self.receipts.get(message_id, receipt))
        except ResourceNotFoundError:
            self.lost_deletes += 1


@dataclass
class Round:
    """One repetition's fresh resources and inputs, for both sides."""

    runtime: Runtime
    raw: RawJobs
    raw_names: tuple[str, str, str]
    app_inputs: list[tuple[Principal, SubmitJob, uuid.UUID]]
    raw_inputs: list[RawRequest]
    receiver: Receiver = field(default_factory=Receiver)


def _principals(count: int, jobs: int) -> list[Principal]:
    """One principal per job (0), or a pool: the quota query reads the principal's live jobs."""
    size = jobs if count <= 0 else count
    return [Principal(TENANT, str(uuid.uuid4()), frozenset({"Jobs.Submit", "Jobs.Read"})) for _ in range(size)]


class InProcessBench:
    def __init__(self, connection_string: str, azurite_pid: int | None, options: Options):
        self.connection_string = connection_string
        self.options = options
        self.counter = CallCounter()
        self.storage_cpu = ProcessCpu(azurite_pid)
        self.rounds = 0
        self.anomalies: list[str] = []  # jobs a side left unfinished, by round
        self.clients = StorageClients.create(  # the app's own transport, pool and retry policies
            make_settings(connection_string), client_options={"raw_request_hook": self.counter.hook},
        )

    async def new_round(self, jobs: int) -> Round:
        runtime = Runtime(make_settings(self.connection_string), TEST_REGISTRY, self.clients)
        await runtime.ensure_resources()
        tag = uuid.uuid4().hex[:8]
        names = (f"b{tag}jobs", f"b{tag}-jobs", f"b{tag}-outcomes")
        await self.clients.tables.create_table(names[0])
        await asyncio.gather(*(self.clients.queues.create_queue(name) for name in names[1:]))
        raw = RawJobs(self.clients.table(names[0]), self.clients.queue(names[1]), self.clients.queue(names[2]))
        principals = _principals(self.options.principals, jobs)
        app_inputs, raw_inputs = [], []
        for i in range(jobs):
            principal, subject, correlation = principals[i % len(principals)], uuid.uuid4(), uuid.uuid4()
            payload = {"tag": f"b{i}"}
            app_inputs.append((principal, SubmitJob(job_type="probe", subject_id=subject, payload=payload),
                               correlation))
            raw_inputs.append(RawRequest(uuid.UUID(TENANT), principal.key, subject, correlation, payload))
        return Round(runtime, raw, names, app_inputs, raw_inputs)

    async def close_round(self, rnd: Round) -> None:
        s = rnd.runtime.settings
        await asyncio.gather(
            *(self.clients.tables.delete_table(t) for t in (s.jobs_table, s.name_of(DOC_INDEX), rnd.raw_names[0])),
            *(self.clients.queues.delete_queue(q) for q in (s.jobs_queue, s.poison_queue, s.outcomes_queue,
                                                           *rnd.raw_names[1:])),
            *(self.clients.blobs.delete_container(c) for c in (s.name_of(DOCUMENTS), s.name_of(ANALYSIS),
                                                              s.name_of(MAIL))),
        )
        EFFECTS.clear()

    # ---- the operations under test -----------------------------------------------------------

    async def run_side(self, rnd: Round, phase: Phase, side: Side, runner: Runner[R]) -> R:
        """Hand one side's inputs and per-job operation to ``runner`` (a timed or a traced run)."""
        runtime = rnd.runtime

        async def app_submit(item: tuple[Principal, SubmitJob, uuid.UUID]) -> None:
            submission = await submit(runtime, *item)
            if submission.replayed:
                raise RuntimeError("a benchmark submission was replayed: inputs must be unique")

        async def app_process(_: int) -> None:  # receive, the queue trigger's function, delete
            queue = runtime.queues.jobs
            message_id, receipt, body, dequeue_count = await rnd.receiver.receive(queue)
            await handle_job_message(runtime, body, dequeue_count)
            await rnd.receiver.delete(queue, message_id, receipt)

        async def floor_process(_: int) -> None:
            queue = rnd.raw.jobs
            message_id, receipt, body, _count = await rnd.receiver.receive(queue)
            try:
                await rnd.raw.process(body)
            except ResourceModifiedError:  # someone else claimed it: as the app, leave it (reported below)
                rnd.receiver.conflicts += 1
            await rnd.receiver.delete(queue, message_id, receipt)

        if phase == "submit":
            return await (runner(rnd.app_inputs, app_submit) if side == "app"
                          else runner(rnd.raw_inputs, rnd.raw.submit))
        slots = list(range(len(rnd.app_inputs)))
        return await runner(slots, app_process if side == "app" else floor_process)

    async def check_outcomes(self, rnd: Round, jobs: int, what: str) -> None:
        """Both sides did the whole job: one Completed outcome event per job, no job message left.

        A shortfall is recorded (and printed with the report), not raised: a job the app left
        unfinished (a lost response to a write it then retried, say) is a finding of the run."""
        sides = ((rnd.runtime.queues.outcomes, rnd.runtime.queues.jobs, rnd.runtime.store.table, "app"),
                 (rnd.raw.outcomes, rnd.raw.jobs, rnd.raw.table, "floor"))
        for outcomes, queue, table, side in sides:
            count = (await outcomes.get_queue_properties()).approximate_message_count
            left = (await queue.get_queue_properties()).approximate_message_count
            completed = [m for m in await outcomes.peek_messages(max_messages=32)
                         if '"outcome":"Completed"' in str(m.content)]
            if count != jobs or left or len(completed) != min(32, jobs):
                statuses = Counter([e.get("status") async for e in table.query_entities("RowKey eq 'job'",
                                                                                         select=["status"])])
                self.anomalies.append(f"{what}, {side}: {count} outcome events for {jobs} jobs, {left} job messages "
                                      f"left; status entities: {dict(statuses)}")

    # ---- repetitions ---------------------------------------------------------------------------

    async def speed_round(self, jobs: int, concurrency: int, order: Sequence[Side], results: Results | None) -> None:
        async def timed(items: Sequence[T], operation: Callable[[T], Awaitable[object]]) -> RunResult:
            return await run_bounded(items, operation, concurrency, self.counter, self.storage_cpu)

        sink: dict[tuple[Phase, Side], list[RunResult]] = {}
        await self._round(jobs, order, timed, sink)
        if results is not None:
            for (phase, side), runs in sink.items():
                results.speed.setdefault((concurrency, phase, side), []).extend(runs)

    async def memory_round(self, jobs: int, order: Sequence[Side], results: Results | None) -> None:
        async def traced(items: Sequence[T], operation: Callable[[T], Awaitable[object]]) -> MemoryResult:
            # EFFECTS is the probe handler's per-job record: the test harness's memory, not the app's.
            return await measure_memory(items, operation, self.options.concurrency, counter=self.counter,
                                        storage_cpu=self.storage_cpu, after=EFFECTS.clear)

        await self._round(jobs, order, traced, results.memory if results is not None else None)

    async def _round(
        self, jobs: int, order: Sequence[Side], measure: Runner[R], sink: dict[tuple[Phase, Side], list[R]] | None,
    ) -> None:
        """One repetition: fresh tables and queues, each phase for each side in ``order``."""
        self.rounds += 1
        rnd = await self.new_round(jobs)
        try:
            for phase in PHASES:
                for side in order:
                    result = await self.run_side(rnd, phase, side, measure)
                    if sink is not None:
                        sink.setdefault((phase, side), []).append(result)
            kind = "memory" if tracemalloc.is_tracing() else "speed"
            what = f"round {self.rounds} ({kind}, {jobs} jobs per side)"
            if rnd.receiver.duplicates:
                self.anomalies.append(f"{what}: Azurite handed {rnd.receiver.duplicates} message(s) to a second "
                                      "concurrent receive (skipped, received again)")
            if rnd.receiver.lost_deletes:
                self.anomalies.append(f"{what}: {rnd.receiver.lost_deletes} delete(s) found the message's receipt "
                                      "superseded (Azurite handed it out twice)")
            if rnd.receiver.conflicts:
                self.anomalies.append(f"{what}: {rnd.receiver.conflicts} floor write(s) found the entity changed "
                                      "(a retried write that had landed, or a second delivery)")
            await self.check_outcomes(rnd, jobs, what)
        finally:
            await self.close_round(rnd)

    async def run(self) -> Results:
        o = self.options
        results = Results()
        progress(f"floor: warm-up, {o.warmup} jobs per side (not reported)")
        await self.speed_round(o.warmup, o.concurrency, SIDES, None)
        for rep, order in zip(range(o.repeats), alternating(SIDES), strict=False):
            progress(f"floor {rep + 1}/{o.repeats}: {o.jobs} jobs per side at {o.concurrency} in flight, then "
                     f"{o.latency_jobs} at 1, {' then '.join(order)}")
            await self.speed_round(o.jobs, o.concurrency, order, results)
            await self.speed_round(o.latency_jobs, 1, order, results)
        if o.memory_jobs:
            tracemalloc.start()
            try:
                # Traced warm-up: caches filled before tracing began turn over once here instead of
                # looking like growth later.
                progress(f"floor memory: warm-up, {o.memory_jobs} jobs per side (not reported)")
                await self.memory_round(o.memory_jobs, SIDES, None)
                for rep, order in zip(range(o.repeats), alternating(SIDES), strict=False):
                    progress(f"floor memory {rep + 1}/{o.repeats}: {o.memory_jobs} jobs per side, "
                             f"{' then '.join(order)}")
                    await self.memory_round(o.memory_jobs, order, results)
            finally:
                tracemalloc.stop()
        results.anomalies = self.anomalies
        return results

    async def close(self) -> None:
        await self.clients.close()


def alternating(sides: Sequence[T]) -> Iterator[tuple[T, ...]]:
    """Rotate who goes first each repetition (a, b, c / b, c, a / ...): drift favours no side."""
    turn = 0
    while True:
        yield tuple(sides[(turn + i) % len(sides)] for i in range(len(sides)))
        turn += 1
