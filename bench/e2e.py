"""Parts ``e2e`` and ``celery``: whole jobs through real worker processes, on the bench's Azurite.

Three sides, each a worker process (or two) plus a client loop in this process:

- ``app``: devhost (``python -m bench.host``: function_app's functions with the bench job types)
  with bench/host.json; the client HTTP-submits with a development-issuer token and waits for the
  job's JobOutcome event on the outcomes queue.
- ``floor``: ``python -m bench.floor_worker`` (devhost's polling loop, the same host.json, and the
  floor's receive -> read -> claim -> work -> complete -> event send -> delete); the client does the
  floor's submission (insert, send) and waits for the outcome event the same way.
- ``celery``: a Celery 5.7 worker (``-P threads -c 16``) on kombu's Azure Storage Queues broker
  with the Azure Block Blob result backend; the client calls ``.delay`` and ``.get``.

Every side runs the same job (bench/work.py). The sides' processes all start first; a side not
being measured is paused (SIGSTOP), so it takes no CPU and makes no polls while another runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

from bench.baseline import RawJobs, RawRequest
from bench.harness import process_cpu_seconds, progress
from bench.inprocess import alternating
from bench.proxy import CountingProxy
from bench.work import document_text
from devhost.azurite import ACCOUNT, ACCOUNT_KEY, HOST, PROJECT_ROOT, connection_string, free_port
from devhost.issuer import DevIssuer, default_key_dir
from shared.store.clients import StorageClients
from tests.support import AUDIENCE, TENANT, make_settings

BENCH_DIR = Path(__file__).resolve().parent
HOST_JSON = BENCH_DIR / "host.json"
NEVER = "0 0 0 1 1 *"  # devhost's maintenance timer stays quiet during the benchmark
USER_OID = "0b5c6d7e-1111-4222-8333-944455556666"


@dataclass(frozen=True)
class Ports:
    blob: int
    queue: int
    table: int

    def connection_string(self) -> str:
        return connection_string(self.blob, self.queue, self.table)


@dataclass(frozen=True)
class E2EOptions:
    jobs: int  # per side per repetition at --concurrency
    latency_jobs: int  # per side per repetition at concurrency 1
    concurrency: int
    repeats: int
    warmup: int
    calls_jobs: int  # jobs per side in the calls pass (through the counting relay)
    poll: float  # the queue polling interval of every side (host.json's maxPollingInterval)
    sides: tuple[str, ...]


@dataclass(frozen=True)
class E2EResult:
    jobs: int
    seconds: float
    latencies: list[float]
    worker_cpu: float  # the side's worker process(es)
    client_cpu: float  # this process: the client loop (submission and waiting)
    azurite_cpu: float | None

    @property
    def throughput(self) -> float:
        return self.jobs / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] * 1000

    @property
    def cpu_ms_per_job(self) -> float:
        return (self.worker_cpu + self.client_cpu) * 1000 / self.jobs

    @property
    def worker_cpu_ms_per_job(self) -> float:
        return self.worker_cpu * 1000 / self.jobs

    @property
    def client_cpu_ms_per_job(self) -> float:
        return self.client_cpu * 1000 / self.jobs

    @property
    def azurite_cpu_ms_per_job(self) -> float | None:
        return None if self.azurite_cpu is None else self.azurite_cpu * 1000 / self.jobs


@dataclass
class E2EResults:
    speed: dict[tuple[int, str], list[E2EResult]] = field(default_factory=dict)  # (concurrency, side)
    calls: dict[str, dict[str, float]] = field(default_factory=dict)  # side -> service -> calls per job
    unavailable: int = 0  # app submissions answered 503 during the timed passes


class Side(Protocol):
    name: str

    async def start(self) -> None: ...
    def pids(self) -> list[int]: ...
    async def run_job(self, tag: str) -> None: ...
    async def stop(self) -> None: ...


def _spawn(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            list(args), cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _terminate(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGCONT)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class Outcomes:
    """The client's wait for JobOutcome events: one reader for all of a side's jobs.

    It polls the outcomes queue like a host would (up to 32 a receive; an empty receive waits
    ``poll`` seconds), deletes each event and wakes the job's waiter. Events that arrive before
    anyone waits for them are kept.
    """

    def __init__(self, queue: QueueClient, poll: float):
        self.queue = queue
        self.poll = poll
        self.outcomes: dict[str, str] = {}
        self._waiters: dict[str, asyncio.Future[str]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                batch = [m async for m in self.queue.receive_messages(messages_per_page=32, max_messages=32,
                                                                      visibility_timeout=60)]
            except ResourceNotFoundError:  # the app creates its queues on its first invocation
                batch = []
            if not batch:
                await asyncio.sleep(self.poll)
                continue
            for message in batch:
                event = json.loads(str(message.content))
                event = event.get("data", event)  # the app's events are CloudEvents; their data is the event
                job_id, outcome = str(event["jobId"]), str(event["outcome"])
                self.outcomes.setdefault(job_id, outcome)
                waiter = self._waiters.pop(job_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(outcome)
            await asyncio.gather(*(self.queue.delete_message(m) for m in batch))

    async def wait(self, job_id: str, limit: float = 120) -> str:
        if job_id in self.outcomes:
            return self.outcomes[job_id]
        waiter = self._waiters.setdefault(job_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(waiter, limit)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class Storage:
    """This process's storage clients (the app's StorageClients) for one side's setup and waiting."""

    clients: StorageClients
    documents: str
    analysis: str
    subject: str

    @classmethod
    async def prepare(cls, conn: str, documents: str, analysis: str) -> Storage:
        clients = StorageClients.create(make_settings(conn))
        subject = str(uuid.uuid4())
        for name in (documents, analysis):
            with contextlib.suppress(ResourceExistsError):
                await clients.blobs.create_container(name)
        blob = clients.container(documents).get_blob_client(f"{TENANT}/{subject}")
        await blob.upload_blob(document_text().encode(), overwrite=True)
        return cls(clients, documents, analysis, subject)


class AppSide:
    """devhost with function_app; HTTP submission with a token; outcome events."""

    name = "app"

    def __init__(self, conn: str, workdir: Path, poll: float, *, message_lease: float = 600,
                 lease_seconds: float = 300, job_type: str = "bench-analyze", seconds: float = 0.0,
                 queue_options: dict[str, Any] | None = None):
        self.conn = conn
        self.poll = poll
        self.message_lease = message_lease
        self.job_type = job_type
        self.seconds = seconds
        tag = f"a{uuid.uuid4().hex[:8]}"
        self.project_dir = workdir / f"host-{tag}"
        self.project_dir.mkdir(parents=True)
        host_json = json.loads(HOST_JSON.read_text())
        host_json["extensions"]["queues"].update(queue_options or {})
        (self.project_dir / "host.json").write_text(json.dumps(host_json, indent=2))
        self.log = workdir / f"devhost-{tag}.log"
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.names = {"JOBS_QUEUE": f"{tag}-jobs", "JOBS_OUTCOMES_QUEUE": f"{tag}-outcomes",
                      "JOBS_TABLE": f"{tag}jobs", "JOBS_INDEX_TABLE": f"{tag}index",
                      "JOBS_DOCUMENTS_CONTAINER": f"{tag}-documents", "JOBS_ANALYSIS_CONTAINER": f"{tag}-analysis",
                      "JOBS_MAIL_CONTAINER": f"{tag}-mail"}
        self.env = {
            **os.environ, **self.names, "AzureWebJobsStorage": conn,
            "JOBS_AUTH_TENANTS": TENANT, "JOBS_AUTH_AUDIENCES": AUDIENCE,
            "JOBS_AUTH_JWKS_URI": f"{self.base}/.devhost/keys", "JOBS_MAINTENANCE_SCHEDULE": NEVER,
            "JOBS_LEASE_SECONDS": str(lease_seconds), "FUNCTIONS_WORKER_RUNTIME": "python",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.storage: Storage | None = None
        self.outcomes: Outcomes | None = None
        self.session: aiohttp.ClientSession | None = None
        self.token = ""
        self.unavailable = 0  # submissions answered 503 (and sent again)

    async def start(self) -> None:
        self.storage = await Storage.prepare(self.conn, self.names["JOBS_DOCUMENTS_CONTAINER"],
                                             self.names["JOBS_ANALYSIS_CONTAINER"])
        issuer = DevIssuer(default_key_dir(self.project_dir))  # devhost serves this key's JWKS
        self.token = issuer.mint(tenant=TENANT, audience=AUDIENCE, oid=USER_OID, scopes=["Jobs.Submit", "Jobs.Read"],
                                 lifetime=6 * 3600)
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        self.outcomes = Outcomes(self.storage.clients.queue(self.names["JOBS_OUTCOMES_QUEUE"]), self.poll)
        self.outcomes.start()
        await self.launch()

    async def launch(self) -> None:
        self.process = _spawn([sys.executable, "-m", "bench.host", "--port", str(self.port), "--project-dir",
                               str(self.project_dir), "--message-lease", str(self.message_lease)], self.env, self.log)
        await _wait_for_health(f"{self.base}/.devhost/health", self.process, self.log)
        # One job alone first: the app's JWKS cache is cold, and concurrent first requests would each
        # block an executor thread fetching it.
        await self.run_job(f"first-{uuid.uuid4().hex[:6]}")

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    async def submit(self, tag: str) -> str:
        assert self.session is not None and self.storage is not None
        body = {"jobType": self.job_type, "subjectId": self.storage.subject,
                "payload": {"tag": tag, **({"seconds": self.seconds} if self.seconds else {})}}
        for attempt in range(4):
            async with self.session.post(f"{self.base}/api/jobs", json=body,
                                         headers={"Authorization": f"Bearer {self.token}"}) as response:
                answer = await response.json()
            if response.status in (200, 202):  # 200: a repeated submission answered with the same job
                return str(answer["jobId"])
            if response.status != 503 or attempt == 3:
                raise RuntimeError(f"submit answered {response.status}: {answer}")
            self.unavailable += 1  # as a caller does after 503 STORAGE_UNAVAILABLE: the same request again
            await asyncio.sleep(0.2)
        raise AssertionError("unreachable")

    async def run_job(self, tag: str) -> None:
        assert self.outcomes is not None
        outcome = await self.outcomes.wait(await self.submit(tag))
        if outcome != "Completed":
            raise RuntimeError(f"an app job ended {outcome}; see {self.log}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    async def stop(self) -> None:
        _terminate(self.process)
        if self.outcomes is not None:
            await self.outcomes.stop()
        if self.session is not None:
            await self.session.close()
        if self.storage is not None:
            await self.storage.clients.close()


class FloorSide:
    """bench/floor_worker.py; the floor's submission in this process; outcome events."""

    name = "floor"

    def __init__(self, conn: str, workdir: Path, poll: float):
        self.conn = conn
        self.poll = poll
        tag = f"f{uuid.uuid4().hex[:8]}"
        self.names = {"FLOOR_QUEUE": f"{tag}-jobs", "FLOOR_OUTCOMES": f"{tag}-outcomes", "FLOOR_TABLE": f"{tag}jobs",
                      "FLOOR_DOCUMENTS": f"{tag}-documents", "FLOOR_ANALYSIS": f"{tag}-analysis"}
        self.project_dir = workdir / f"host-{tag}"
        self.project_dir.mkdir(parents=True)
        shutil.copy(HOST_JSON, self.project_dir / "host.json")
        self.env = {**os.environ, **self.names, "AzureWebJobsStorage": conn,
                    "FLOOR_PROJECT_DIR": str(self.project_dir)}
        self.log = workdir / f"floor-{tag}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.storage: Storage | None = None
        self.outcomes: Outcomes | None = None
        self.raw: RawJobs | None = None
        self.principal = str(uuid.uuid4())

    async def start(self) -> None:
        self.storage = storage = await Storage.prepare(self.conn, self.names["FLOOR_DOCUMENTS"],
                                                       self.names["FLOOR_ANALYSIS"])
        clients = storage.clients
        await clients.tables.create_table(self.names["FLOOR_TABLE"])
        for queue in (self.names["FLOOR_QUEUE"], self.names["FLOOR_OUTCOMES"]):
            await clients.queues.create_queue(queue)
        self.raw = RawJobs(clients.table(self.names["FLOOR_TABLE"]), clients.queue(self.names["FLOOR_QUEUE"]),
                           clients.queue(self.names["FLOOR_OUTCOMES"]), job_type="bench-analyze")
        self.outcomes = Outcomes(clients.queue(self.names["FLOOR_OUTCOMES"]), self.poll)
        self.outcomes.start()
        self.process = _spawn([sys.executable, "-m", "bench.floor_worker"], self.env, self.log)
        await self.run_job(f"first-{uuid.uuid4().hex[:6]}")

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    async def run_job(self, tag: str) -> None:
        assert self.raw is not None and self.outcomes is not None and self.storage is not None
        request = RawRequest(uuid.UUID(TENANT), self.principal, uuid.UUID(self.storage.subject), uuid.uuid4(),
                             {"tag": tag})
        outcome = await self.outcomes.wait(await self.raw.submit(request))
        if outcome != "Completed":
            raise RuntimeError(f"a floor job ended {outcome}")

    async def stop(self) -> None:
        _terminate(self.process)
        if self.outcomes is not None:
            await self.outcomes.stop()
        if self.storage is not None:
            await self.storage.clients.close()


class CelerySide:
    """A Celery worker (threads pool); ``.delay`` and ``.get`` from client threads."""

    name = "celery"

    def __init__(self, conn: str, ports: Ports, workdir: Path, poll: float, concurrency: int):
        from bench.celery_app import CeleryConfig  # noqa: PLC0415 - celery is installed for the bench only

        self.conn = conn
        self.poll = poll
        self.concurrency = concurrency
        tag = f"c{uuid.uuid4().hex[:8]}"
        self.documents, self.analysis = f"{tag}-documents", f"{tag}-analysis"
        self.config = CeleryConfig(conn, f"http://{HOST}:{ports.queue}/{ACCOUNT}", ACCOUNT_KEY, f"{tag}-celery",
                                   f"{tag}-results", poll)
        self.log = workdir / f"celery-{tag}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.storage: Storage | None = None
        self.pool = ThreadPoolExecutor(max_workers=max(concurrency, 16), thread_name_prefix="celery-client")
        self.app: Any = None

    async def start(self) -> None:
        from bench.celery_app import make_app  # noqa: PLC0415

        self.storage = await Storage.prepare(self.conn, self.documents, self.analysis)
        self.app = make_app(self.config)
        await self.launch()

    async def launch(self) -> None:
        self.process = _spawn(
            [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker", "-P", "threads",
             "-c", str(self.concurrency), "-l", "warning", "--without-heartbeat", "--without-gossip",
             "--without-mingle", "-Q", self.config.queue, "-n", f"bench-{uuid.uuid4().hex[:6]}@localhost"],
            {**os.environ, **self.config.env()}, self.log)
        await self.run_job(f"first-{uuid.uuid4().hex[:6]}", limit=60)

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    def delay(self, tag: str) -> Any:
        assert self.storage is not None
        return self.app.signature("bench.analyze").delay(TENANT, self.storage.subject, tag, self.documents,
                                                         self.analysis)

    def _one(self, tag: str, timeout: float) -> None:
        result = self.delay(tag)
        value = result.get(interval=self.poll, timeout=timeout)
        if not isinstance(value, dict) or "words" not in value:
            raise RuntimeError(f"a Celery task returned {value!r}")

    async def run_job(self, tag: str, limit: float = 120) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._one, tag, limit)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    async def stop(self) -> None:
        _terminate(self.process)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.storage is not None:
            await self.storage.clients.close()


async def _wait_for_health(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"devhost exited: {_tail(log)}")
        try:
            await asyncio.to_thread(_get, url)
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"devhost did not come up: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=2):
        return


def make_side(name: str, conn: str, ports: Ports, workdir: Path, options: E2EOptions) -> Side:
    if name == "app":
        return AppSide(conn, workdir, options.poll)
    if name == "floor":
        return FloorSide(conn, workdir, options.poll)
    return CelerySide(conn, ports, workdir, options.poll, options.concurrency)


def pause(side: Side) -> None:
    for pid in side.pids():
        os.kill(pid, signal.SIGSTOP)


def resume(side: Side) -> None:
    for pid in side.pids():
        os.kill(pid, signal.SIGCONT)


async def drive(jobs: int, concurrency: int, run_job: Callable[[str], Awaitable[None]], prefix: str) -> list[float]:
    """Run ``jobs`` jobs with ``concurrency`` in flight; each latency is submit start -> outcome known."""
    pending = iter(range(jobs))
    latencies: list[float] = []

    async def worker() -> None:
        for i in pending:
            started = time.perf_counter()
            await run_job(f"{prefix}-{i}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def timed_pass(side: Side, jobs: int, concurrency: int, azurite_pid: int | None, prefix: str) -> E2EResult:
    pids = side.pids()
    before = [process_cpu_seconds(pid) or 0.0 for pid in pids]
    azurite = process_cpu_seconds(azurite_pid) if azurite_pid else None
    own = time.process_time()
    started = time.perf_counter()
    latencies = await drive(jobs, concurrency, side.run_job, prefix)
    seconds = time.perf_counter() - started
    client = time.process_time() - own
    worker = sum((process_cpu_seconds(pid) or 0.0) - b for pid, b in zip(pids, before, strict=True))
    azurite_after = process_cpu_seconds(azurite_pid) if azurite_pid else None
    return E2EResult(jobs, seconds, latencies, worker, client,
                     None if azurite is None or azurite_after is None else azurite_after - azurite)


async def run_e2e(ports: Ports, azurite_pid: int | None, workdir: Path, options: E2EOptions) -> E2EResults:
    results = E2EResults()
    conn = ports.connection_string()
    sides: list[Side] = []
    try:
        for name in options.sides:
            progress(f"e2e: starting the {name} side")
            side = make_side(name, conn, ports, workdir, options)
            sides.append(side)
            await side.start()
            pause(side)
        for rep, order in zip(range(options.repeats), alternating(sides), strict=False):
            progress(f"e2e {rep + 1}/{options.repeats}: {options.jobs} jobs per side at {options.concurrency} in "
                     f"flight, then {options.latency_jobs} at 1, {' then '.join(s.name for s in order)}")
            for side in order:
                resume(side)
                try:
                    await drive(options.warmup, options.concurrency, side.run_job, f"w{rep}")  # not measured
                    for concurrency, jobs in ((options.concurrency, options.jobs), (1, options.latency_jobs)):
                        result = await timed_pass(side, jobs, concurrency, azurite_pid, f"r{rep}c{concurrency}")
                        results.speed.setdefault((concurrency, side.name), []).append(result)
                finally:
                    pause(side)
    finally:
        for side in sides:
            results.unavailable += getattr(side, "unavailable", 0)
            await side.stop()
    if options.calls_jobs:
        results.calls = await count_calls(ports, workdir, options)
    return results


async def count_calls(ports: Ports, workdir: Path, options: E2EOptions) -> dict[str, dict[str, float]]:
    """Each side again, alone, through the counting relay: storage calls per job, by service."""
    calls: dict[str, dict[str, float]] = {}
    for name in options.sides:
        proxy = CountingProxy({"blob": ports.blob, "queue": ports.queue, "table": ports.table})
        await proxy.start()
        relayed = Ports(proxy.ports["blob"], proxy.ports["queue"], proxy.ports["table"])
        side = make_side(name, relayed.connection_string(), relayed, workdir, options)
        try:
            progress(f"e2e calls: {options.calls_jobs} {name} jobs at {options.concurrency} in flight, "
                     "through the counting relay")
            await side.start()
            await drive(options.warmup, options.concurrency, side.run_job, "cw")
            before = dict(proxy.calls)
            await drive(options.calls_jobs, options.concurrency, side.run_job, "cc")
            counted = {service: (proxy.calls[service] - before.get(service, 0)) / options.calls_jobs
                       for service in ("queue", "table", "blob")}
            calls[name] = {**counted, "total": sum(counted.values())}
        finally:
            await side.stop()
            await proxy.stop()
    return calls
