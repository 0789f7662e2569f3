"""Part ``crash``: kill -9 a worker with jobs in flight, start a new one, count the jobs lost.

App: devhost with a 5 s message lease (a received message comes back 5 s after its host died),
JOBS_LEASE_SECONDS=5 (a dead worker's claim expires 5 s after its last renewal) and bench/host.json
with newBatchThreshold 16 (so all N run at once); N
``bench-sleep`` jobs submitted over HTTP; once all N are Running, devhost is killed (SIGKILL)
and a new one started on the same queues. Celery: the same worker as the e2e part; N sleep tasks
sent with ``.delay``; once the broker queue is empty (every message received) the worker is
killed and a new one started. A job is lost when it has no terminal outcome (app: a JobOutcome
event; Celery: a result in the backend) ``bound`` seconds after the kill.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.e2e import AppSide, CelerySide, Ports
from bench.harness import progress

APP_MESSAGE_LEASE = 5.0
APP_LEASE_SECONDS = 5.0
# bench/host.json's newBatchThreshold is 8: a receive that finds 9 to 11 of the probe's jobs would wait
# for one to finish before taking the rest. At 16 the listener takes all of them at once.
APP_BATCH_THRESHOLD = 16


@dataclass(frozen=True)
class CrashOptions:
    jobs: int
    seconds: float  # each job's sleep
    bound: float  # seconds after the kill
    poll: float
    sides: tuple[str, ...]


@dataclass(frozen=True)
class CrashResult:
    side: str
    jobs: int
    in_flight_at_kill: int
    lost: int
    recovered_after: float | None  # seconds from the kill until the last job was terminal


async def _app(ports: Ports, workdir: Path, o: CrashOptions) -> CrashResult:
    side = AppSide(ports.connection_string(), workdir, o.poll, message_lease=APP_MESSAGE_LEASE,
                   lease_seconds=APP_LEASE_SECONDS, job_type="bench-sleep", seconds=o.seconds,
                   queue_options={"newBatchThreshold": APP_BATCH_THRESHOLD})
    try:
        await side.start()
        assert side.storage is not None and side.outcomes is not None
        ids = [await side.submit(f"crash-{i}") for i in range(o.jobs)]
        table = side.storage.clients.table(side.names["JOBS_TABLE"])
        running = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            running = len([e async for e in table.query_entities("status eq 'Running'", select=["PartitionKey"])])
            if running == o.jobs:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        side.kill()
        killed = time.monotonic()
        progress(f"crash app: killed devhost with {running} of {o.jobs} jobs Running; starting a new one")
        await side.launch()  # same queues and tables; its first job is not one of the probe's
        done = await _wait_all(lambda: sum(1 for j in ids if j in side.outcomes.outcomes), o.jobs, killed, o.bound)
        return CrashResult("app", o.jobs, running, o.jobs - done[0], done[1])
    finally:
        await side.stop()


async def _celery(ports: Ports, workdir: Path, o: CrashOptions) -> CrashResult:
    side = CelerySide(ports.connection_string(), ports, workdir, o.poll, 16)
    try:
        await side.start()
        results: list[Any] = [side.app.signature("bench.sleep").delay(o.seconds) for _ in range(o.jobs)]
        assert side.storage is not None
        queue = side.storage.clients.queues.get_queue_client(side.config.queue)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not (await queue.get_queue_properties()).approximate_message_count:
                break  # every task message received (kombu deletes each as it receives it)
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        started = sum(1 for r in results if not r.ready())
        side.kill()
        killed = time.monotonic()
        progress(f"crash celery: killed the worker with {started} of {o.jobs} tasks received and unfinished; "
                 "starting a new one")
        await side.launch()

        def finished() -> int:
            return sum(1 for r in results if r.ready())

        done = await _wait_all(finished, o.jobs, killed, o.bound, blocking=True)
        return CrashResult("celery", o.jobs, started, o.jobs - done[0], done[1])
    finally:
        await side.stop()


async def _wait_all(count: Any, jobs: int, since: float, bound: float, *, blocking: bool = False
                    ) -> tuple[int, float | None]:
    done = 0
    while time.monotonic() - since < bound:
        done = await asyncio.to_thread(count) if blocking else count()
        if done == jobs:
            return done, time.monotonic() - since
        await asyncio.sleep(0.25)
    return done, None


async def run_crash(ports: Ports, workdir: Path, o: CrashOptions) -> list[CrashResult]:
    results = []
    for name in o.sides:
        progress(f"crash {name}: {o.jobs} jobs of {o.seconds:.0f} s each, kill -9 once they run, "
                 f"lost = not terminal {o.bound:.0f} s after the kill")
        folder = workdir / f"crash-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True)
        results.append(await (_app if name == "app" else _celery)(ports, folder, o))
    return results
