"""``python -m bench``: the app's submission and processing paths against a raw-SDK baseline.

One process, one event loop, one Azurite (started here, in memory, on free ports), one set of
storage clients shared by both sides. Every repetition uses fresh tables and queues for each
side, runs the two sides one after the other in alternating order, and is deleted afterwards.
A warm-up repetition runs first and is not reported. See bench/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from bench.baseline import RawJobs, RawRequest
from bench.harness import CallCounter, MemoryResult, ProcessCpu, RunResult, measure_memory, run_bounded
from bench.report import PHASES, SIDES, Phase, Side, print_report
from devhost.azurite import start_azurite
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


@dataclass(frozen=True)
class Options:
    jobs: int
    concurrency: int
    repeats: int
    warmup: int
    principals: int
    memory_jobs: int  # 0: no memory passes


@dataclass
class Results:
    speed: dict[tuple[Phase, Side], list[RunResult]] = field(default_factory=dict)
    memory: dict[tuple[Phase, Side], list[MemoryResult]] = field(default_factory=dict)


class Runner(Protocol[R_co]):
    """Runs one side's operation over its inputs and measures it."""

    def __call__(self, items: Sequence[T], operation: Callable[[T], Awaitable[object]], /) -> Awaitable[R_co]: ...


@dataclass
class Round:
    """One repetition's fresh resources and inputs, for both sides."""

    runtime: Runtime
    raw: RawJobs
    raw_names: tuple[str, str, str]
    app_inputs: list[tuple[Principal, SubmitJob, uuid.UUID]]
    raw_inputs: list[RawRequest]
    app_bodies: list[str] = field(default_factory=list)
    raw_bodies: list[str] = field(default_factory=list)


def _principals(count: int, jobs: int) -> list[Principal]:
    """One principal per job (0), or a pool: the quota query reads the principal's live jobs."""
    size = jobs if count <= 0 else count
    return [Principal(TENANT, str(uuid.uuid4()), frozenset({"Jobs.Submit", "Jobs.Read"})) for _ in range(size)]


class Bench:
    def __init__(self, connection_string: str, azurite_pid: int | None, options: Options):
        self.connection_string = connection_string
        self.options = options
        self.counter = CallCounter()
        self.storage_cpu = ProcessCpu(azurite_pid)
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

        async def app_process(body: str) -> None:
            await handle_job_message(runtime, body, 1)

        if phase == "submit":
            return await (runner(rnd.app_inputs, app_submit) if side == "app"
                          else runner(rnd.raw_inputs, rnd.raw.submit))
        return await (runner(rnd.app_bodies, app_process) if side == "app"
                      else runner(rnd.raw_bodies, rnd.raw.process))

    # ---- checks and the host's part (not measured) -------------------------------------------

    async def collect_bodies(self, rnd: Round, jobs: int) -> None:
        """Receive every job message up front, as the host would before invoking the function."""
        rnd.app_bodies = await _drain(rnd.runtime.queues.jobs, jobs)
        rnd.raw_bodies = await _drain(rnd.raw.jobs, jobs)

    async def check_outcomes(self, rnd: Round, jobs: int) -> None:
        """Both sides did the whole job: one Completed outcome event per job."""
        for queue in (rnd.runtime.queues.outcomes, rnd.raw.outcomes):
            count = (await queue.get_queue_properties()).approximate_message_count
            if count != jobs:
                raise RuntimeError(f"{queue.queue_name}: {count} outcome events for {jobs} jobs")
            for message in await queue.peek_messages(max_messages=32):
                if '"outcome":"Completed"' not in str(message.content):
                    raise RuntimeError(f"{queue.queue_name}: a job did not complete: {message.content}")

    # ---- repetitions ---------------------------------------------------------------------------

    async def speed_round(self, jobs: int, order: Sequence[Side], results: Results | None) -> None:
        async def timed(items: Sequence[T], operation: Callable[[T], Awaitable[object]]) -> RunResult:
            return await run_bounded(items, operation, self.options.concurrency, self.counter, self.storage_cpu)

        await self._round(jobs, order, timed, results.speed if results is not None else None)

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
        rnd = await self.new_round(jobs)
        try:
            for phase in PHASES:
                if phase == "process":
                    await self.collect_bodies(rnd, jobs)
                for side in order:
                    result = await self.run_side(rnd, phase, side, measure)
                    if sink is not None:
                        sink.setdefault((phase, side), []).append(result)
            await self.check_outcomes(rnd, jobs)
        finally:
            await self.close_round(rnd)

    async def run(self) -> Results:
        o = self.options
        results = Results()
        started = time.perf_counter()
        _progress(f"speed warm-up: {o.warmup} jobs per side (not reported)")
        await self.speed_round(o.warmup, SIDES, None)
        for rep, order in zip(range(o.repeats), _alternating(), strict=False):
            _progress(f"speed {rep + 1}/{o.repeats}: {o.jobs} jobs per side, {' then '.join(order)}")
            await self.speed_round(o.jobs, order, results)
        if o.memory_jobs:
            tracemalloc.start()
            try:
                # Traced warm-up: caches filled before tracing began (the re module's, which the SDK's
                # batch parsing churns) turn over once here instead of looking like growth later.
                _progress(f"memory warm-up: {o.warmup} jobs per side (not reported)")
                await self.memory_round(o.warmup, SIDES, None)
                for rep, order in zip(range(o.repeats), _alternating(), strict=False):
                    _progress(f"memory {rep + 1}/{o.repeats}: {o.memory_jobs} jobs per side, {' then '.join(order)}")
                    await self.memory_round(o.memory_jobs, order, results)
            finally:
                tracemalloc.stop()
        _progress(f"done ({time.perf_counter() - started:.0f} s of measuring)")
        return results

    async def close(self) -> None:
        await self.clients.close()


async def _drain(queue: object, jobs: int) -> list[str]:
    from azure.storage.queue.aio import QueueClient  # noqa: PLC0415 - for the isinstance check only

    assert isinstance(queue, QueueClient)
    bodies: list[str] = []
    while len(bodies) < jobs:
        batch = [str(m.content) async for m in queue.receive_messages(messages_per_page=32, visibility_timeout=600)]
        if not batch:
            raise RuntimeError(f"{queue.queue_name}: {len(bodies)} messages for {jobs} submitted jobs")
        bodies += batch
    return bodies


def _alternating() -> Iterator[tuple[Side, Side]]:
    """app then baseline, baseline then app, ...: drift during a run does not favour one side."""
    while True:
        yield SIDES
        yield SIDES[1], SIDES[0]


_STARTED = time.perf_counter()


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def _progress(text: str) -> None:
    print(f"bench [{time.perf_counter() - _STARTED:5.0f} s] {text}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=300, help="jobs per side per repetition (default 300)")
    parser.add_argument("--concurrency", type=int, default=16, help="jobs in flight per side (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions; medians are reported (default 3)")
    parser.add_argument("--warmup", type=int, default=80,
                        help="jobs per side in each unreported warm-up, speed and memory (default 80)")
    parser.add_argument("--memory-jobs", type=int, default=64,
                        help="jobs per side per memory repetition, 0 to skip them (default 64; tracemalloc makes "
                             "these runs several times slower)")
    parser.add_argument("--principals", type=int, default=0,
                        help="callers submitting the jobs; 0 (default) = one per job. Each caller's quota query "
                             "reads its live jobs, so fewer callers means more rows read per submission "
                             "(stay at or above jobs/100: the default quota is 100 jobs in flight per caller)")
    args = parser.parse_args(argv)
    if min(args.jobs, args.concurrency, args.repeats, args.warmup) < 1 or args.memory_jobs < 0:
        parser.error("--jobs, --concurrency, --repeats and --warmup must be at least 1, --memory-jobs at least 0")
    return Options(args.jobs, args.concurrency, args.repeats, args.warmup, args.principals, args.memory_jobs)


async def _main(options: Options) -> Results:
    with tempfile.TemporaryDirectory(prefix="bench-azurite-") as folder:
        azurite = start_azurite(log_path=Path(folder) / "azurite.log")
        try:
            bench = Bench(azurite.connection_string, azurite.process.pid if azurite.process else None, options)
            try:
                return await bench.run()
            finally:
                await bench.close()
        finally:
            azurite.stop()


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    load_before = _load()
    results = asyncio.run(_main(options))
    environment = (f"Python {platform.python_version()}, {os.cpu_count()} CPUs shared with Azurite; load average "
                   f"{load_before} before, {_load()} after (other work on the machine moves absolute numbers; "
                   "the ratios pair runs made back to back)")
    print_report(results.speed, results.memory, jobs=options.jobs, memory_jobs=options.memory_jobs,
                 concurrency=options.concurrency, repeats=options.repeats, environment=environment)
    return 0
