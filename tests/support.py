"""Test support: a request log with fault injection on the real SDK clients, test job types,
and a small in-process delivery loop for worker-level tests (devhost is the full host).

Faults never replace a client: azure-core's per-request hook (``raw_request_hook``) sees every
HTTP request the real clients send to Azurite, counts it, and may raise before it goes out.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlparse

from azure.core.pipeline import PipelineRequest
from azure.data.tables import TableClient
from pydantic import Field

from jobs import REGISTRY
from shared.config import Settings, load_settings
from shared.domain.errors import ErrorCode, PermanentJobError
from shared.domain.record import Amendment, HistoryEntry, JobRecord
from shared.engine.poison import handle_poison_message
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from shared.handlers import JobContext, JobRegistry, JobType, Payload, ResultSummary
from shared.store.clients import StorageClients


class SimulatedCrash(BaseException):
    """The process dies here: nothing after this point runs, no cleanup is written."""


class _Proceed(Exception):
    """Not an error: an interleaved action ran, and the request goes out as it was."""


@dataclass
class Fault:
    """Raise ``error`` on the n-th matching request (1-based), ``times`` times."""

    method: str
    path_contains: str
    error: Callable[[], BaseException]
    after: int = 0
    times: int = 1
    seen: int = 0

    def check(self, method: str, path: str) -> None:
        if method != self.method or self.path_contains not in path or self.times <= 0:
            return
        self.seen += 1
        if self.seen > self.after:
            self.times -= 1
            error = self.error()
            if not isinstance(error, _Proceed):
                raise error


@dataclass
class RequestLog:
    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def hook(self, request: PipelineRequest) -> None:
        http = request.http_request
        method, path = http.method, urlparse(http.url).path
        for fault in self.faults:
            fault.check(method, path)
        self.requests.append((method, path))

    def mark(self) -> int:
        return len(self.requests)

    def since(self, mark: int) -> list[tuple[str, str]]:
        return self.requests[mark:]

    def crash_on(self, method: str, path_contains: str, after: int = 0) -> Fault:
        fault = Fault(method, path_contains, SimulatedCrash, after=after)
        self.faults.append(fault)
        return fault

    def interleave_on(self, method: str, path_contains: str, action: Callable[[], None]) -> Fault:
        """Run ``action`` (another writer, through a synchronous client) just before the first matching
        request leaves: a race, made to happen at the exact step that matters."""
        def act() -> BaseException:
            action()
            return _Proceed()
        fault = Fault(method, path_contains, act)
        self.faults.append(fault)
        return fault

    def fail_on(self, method: str, path_contains: str, times: int = 1, after: int = 0) -> Fault:
        """A storage failure on the matching requests (after the first ``after`` of them pass). An OSError,
        not an azure-core error, so the SDK's own retry policy (seconds of backoff per try) does not stretch
        the test."""
        fault = Fault(method, path_contains, lambda: OSError("injected storage outage"), after=after, times=times)
        self.faults.append(fault)
        return fault


# ---- test job types ------------------------------------------------------------------------

EFFECTS: Counter[str] = Counter()  # side effects performed, by job id (the handler's "real work")


class ProbePayload(Payload):
    fail_times: int = Field(default=0, alias="failTimes", ge=0)
    permanent: bool = False
    sleep: float = Field(default=0.0, ge=0, le=30)
    tag: str = Field(default="t", max_length=64)


async def probe_handler(ctx: JobContext[ProbePayload]) -> ResultSummary:
    job = str(ctx.contract.job_id)
    if ctx.payload.permanent:
        raise PermanentJobError(ErrorCode.SUBJECT_INVALID, "probe asked to fail permanently")
    if ctx.attempt <= ctx.payload.fail_times:
        raise RuntimeError(f"probe transient failure on attempt {ctx.attempt}")
    waited = 0.0
    while waited < ctx.payload.sleep:
        await asyncio.sleep(0.1)
        waited += 0.1
        await ctx.raise_if_cancelled()
    EFFECTS[job] += 1
    return {"attempt": ctx.attempt, "effects": EFFECTS[job]}


def probe_key(subject_id: uuid.UUID, payload: ProbePayload) -> str:
    return f"probe-{subject_id}-{payload.tag}"


PROBE = JobType(name="probe", payload_model=ProbePayload, idempotency_key=probe_key, max_attempts=3,
                handler=probe_handler)
TEST_REGISTRY = JobRegistry([*REGISTRY, PROBE])


def make_settings(connection_string: str, **overrides: str) -> Settings:
    tag = uuid.uuid4().hex[:8]
    env = {
        "AzureWebJobsStorage": connection_string,
        "JOBS_QUEUE": f"t{tag}-jobs", "JOBS_OUTCOMES_QUEUE": f"t{tag}-outcomes",
        "JOBS_TABLE": f"t{tag}jobs", "JOBS_INDEX_TABLE": f"t{tag}index",
        "JOBS_DOCUMENTS_CONTAINER": f"t{tag}-documents", "JOBS_ANALYSIS_CONTAINER": f"t{tag}-analysis",
        "JOBS_MAIL_CONTAINER": f"t{tag}-mail",
        "JOBS_AUTH_TENANTS": f"{TENANT},{OTHER_TENANT}", "JOBS_AUTH_AUDIENCES": AUDIENCE,
        "JOBS_RETRY_BASE_SECONDS": "1", "JOBS_RETRY_MAX_SECONDS": "4", "JOBS_LEASE_SECONDS": "30",
        **overrides,
    }
    return load_settings(env, TEST_REGISTRY.storage_names())


TENANT = "5e1f3c2a-7b4d-4c8e-9a6f-0d2b1c3e4f5a"
OTHER_TENANT = "9b2d7c1a-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
AUDIENCE = "api://background-jobs-test"


async def make_runtime(settings: Settings, log: RequestLog, registry: JobRegistry = TEST_REGISTRY) -> Runtime:
    clients = StorageClients.create(settings, client_options={"raw_request_hook": log.hook})
    runtime = Runtime(settings, registry, clients)
    await runtime.ensure_resources()
    return runtime


async def force(runtime: Runtime, record: JobRecord, **changes: Any) -> JobRecord:
    """Set fields of a job's entity directly (If-Match), to fast-forward a test to a state."""
    return await runtime.store.write(Amendment(record, replace(record, **changes)))


async def history_of(runtime: Runtime, job_id: uuid.UUID) -> list[HistoryEntry]:
    """The job's status history as the status read returns it (it lives on the status entity)."""
    record = await runtime.store.get(job_id)
    assert record is not None, f"job {job_id} has no status entity"
    return list(record.history)


async def queued_jobs(runtime: Runtime, limit: int = 10) -> list[JobRecord]:
    """Every Queued job (through the sweep's own named query, with a cutoff far ahead)."""
    ahead = runtime.clock() + timedelta(days=1)
    return [r async for r in runtime.store.stranded_queued(ahead, limit)]


def sync_status_table(runtime: Runtime) -> TableClient:
    """A second, synchronous client on the jobs table: "someone else" in a race."""
    return TableClient.from_connection_string(runtime.settings.storage["AzureWebJobsStorage"],
                                              runtime.settings.jobs_table)


# ---- a minimal delivery loop (the host's part) for worker-level tests ----------------------

@dataclass
class Delivered:
    body: str
    dequeue_count: int
    crashed: bool = False
    error: str | None = None


async def deliver_once(runtime: Runtime, *, poison: bool = False, visibility: int = 30) -> list[Delivered]:
    """Receive what is visible on the jobs (or poison) queue and run each like the host would:
    delete on success; on an exception make it visible again; on a simulated crash leave it."""
    queue = runtime.queues.poison if poison else runtime.queues.jobs
    delivered: list[Delivered] = []
    async for message in queue.receive_messages(messages_per_page=16, visibility_timeout=visibility):
        body = str(message.content)
        item = Delivered(body, int(message.dequeue_count or 0))
        try:
            if poison:
                await handle_poison_message(runtime, body)
            else:
                await handle_job_message(runtime, body, item.dequeue_count)
        except SimulatedCrash:
            item.crashed = True
        except Exception as exc:  # like host.json visibilityTimeout: visible again after a pause
            item.error = repr(exc)
            await queue.update_message(message, pop_receipt=message.pop_receipt, visibility_timeout=1)
        else:
            await queue.delete_message(message, pop_receipt=message.pop_receipt)
        delivered.append(item)
    return delivered


async def run_until_settled(runtime: Runtime, job_id: uuid.UUID, timeout: float = 30.0) -> Any:
    """Deliver jobs and poison messages until the job is terminal (or time runs out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await deliver_once(runtime)
        await deliver_once(runtime, poison=True)
        record = await runtime.store.get(job_id)
        if record is not None and record.is_terminal and not record.outcome_pending:
            return record
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not settle in {timeout}s: {await runtime.store.get(job_id)}")


async def outcome_events(runtime: Runtime) -> list[dict[str, Any]]:
    """Peek every event on the outcomes queue (without removing them): the JobOutcome fields (each
    message is a CloudEvent whose ``data`` they are)."""
    import json

    messages = await runtime.queues.outcomes.peek_messages(max_messages=32)
    return [json.loads(str(m.content))["data"] for m in messages]  # each a CloudEvent; its data is the event


# ---- calling the HTTP functions in-process ---------------------------------------------------

ALICE_OID = "0b5c6d7e-1111-4222-8333-944455556666"
BOB_OID = "1c6d7e8f-2222-4333-8444-a55566667777"


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@cache
def function_routes() -> list[tuple[re.Pattern[str], Any]]:
    """function_app's HTTP functions as (path pattern, builder), read once from the app itself."""
    import function_app

    routes = []
    for fn in function_app.app.get_functions():
        trigger = fn.get_trigger()
        if trigger.type != "httpTrigger":
            continue
        template = re.sub(r"\{\*(\w+)\}", r"(?P<\1>.*)", trigger.route)  # a catch-all: any rest of the path
        template = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        routes.append((re.compile(f"^/api/{template}$"), getattr(function_app, fn.get_user_function().__name__)))
    return sorted(routes, key=lambda route: ".*" in route[0].pattern)  # as the host: literal routes first


class Api:
    """Calls function_app's HTTP functions with real func.HttpRequest objects, as the host would,
    with the app's runtime provider pointed at the test's runtime."""

    def __init__(self, runtime: Runtime, issuer: Any):
        self.runtime = runtime
        self.issuer = issuer

    def token(self, *, tenant: str = TENANT, oid: str = ALICE_OID,
              scopes: tuple[str, ...] = ("Jobs.Submit", "Jobs.Read"), roles: tuple[str, ...] = (),
              **kwargs: Any) -> str:
        return str(self.issuer.mint(tenant=tenant, audience=AUDIENCE, oid=oid, scopes=scopes, roles=roles, **kwargs))

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = "default",
                   headers: dict[str, str] | None = None, raw: bytes | None = None) -> ApiResponse:
        import json
        from urllib.parse import parse_qsl, urlsplit

        import azure.functions as func

        import function_app

        all_headers = {"content-type": "application/json", **(headers or {})}
        if token == "default":
            token = self.token()
        if token is not None:
            all_headers["authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        url = urlsplit(path)
        found = [(pattern.match(url.path), fn) for pattern, fn in function_routes()]
        match, function = next(((m, fn) for m, fn in found if m), (None, None))
        if match is None:
            raise ValueError(f"no route for {path}")
        request = func.HttpRequest(method, f"http://localhost{path}", headers=all_headers,
                                   params=dict(parse_qsl(url.query)), route_params=match.groupdict(), body=data)

        async def provide() -> Runtime:
            return self.runtime

        function_app.runtime = provide  # type: ignore[assignment]
        result = function(request)
        response = await result if hasattr(result, "__await__") else result
        text = response.get_body().decode()
        return ApiResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                           json.loads(text) if text else None)
