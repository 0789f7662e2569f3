"""The jobs a chaos run submits, what each must end as, and the client that submits them.

The plan is drawn from the seed: doc-index, ai-analyze and email-process jobs on subjects that
exist, some on subjects that do not (they must fail with SUBJECT_NOT_FOUND; some of those are
re-driven after the subject is uploaded and must then complete in run 2), e-mails whose
Message-ID differs from the payload's (EMAIL_MESSAGE_ID_MISMATCH), groups of concurrent versions
of one document (doc-index rowVersion 1..k submitted at once), duplicate submissions (the same
request twice at once) and cancels.

The client sends each request to a random host, and retries on 5xx and connection errors with
the same request (the same body and ``x-correlation-id``): a replayed submission is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient

from chaos.hosts import TENANT

log = logging.getLogger("chaos.workload")
ANALYSIS_TYPES = ("statistics", "keywords", "summary", "full")
WORDS = ("queue", "lease", "table", "etag", "retry", "outcome", "event", "index", "version", "host", "storage",
         "poison", "worker", "message", "delivery", "repair", "timer", "sweep", "batch", "fence", "lock",
         "document", "analysis", "summary", "keyword", "token", "tenant", "status", "history", "replay")
TERMINAL = frozenset({"Completed", "Failed", "Poisoned", "Cancelled"})
REQUEST_PATIENCE = 90.0  # how long the client keeps retrying one request


def document_text(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(3, 8)):
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        sentences.append(sentence.capitalize() + ".")
    return " ".join(sentences)


def email_bytes(message_id: str, rng: random.Random) -> bytes:
    return (f"From: Chaos <chaos@example.test>\r\nTo: ops@example.test\r\nSubject: run {rng.randint(1, 999)}\r\n"
            f"Message-ID: <{message_id}>\r\nDate: Tue, 02 Dec 2025 10:00:00 +0000\r\n\r\n"
            f"{document_text(rng)}\r\n").encode()


@dataclass
class JobSpec:
    """One job of the plan, and what happened to it on the client's side."""

    label: str
    job_type: str
    subject: uuid.UUID
    payload: dict[str, Any]
    expected: tuple[str, str | None]  # (status, outcome code) given the input
    at: float  # seconds into the fault window when it is submitted
    blob: tuple[str, str, bytes] | None = None  # (container setting, blob name, content) to upload first
    group: uuid.UUID | None = None  # doc-index: the document whose versions are submitted together
    duplicate: bool = False  # the same submission twice at once
    cancel_after: float | None = None
    redrive: tuple[str, str, bytes] | None = None  # a missing subject uploaded after it Failed, then re-driven
    # What the client saw:
    job_id: str | None = None
    job_ids: set[str] = field(default_factory=set)  # every jobId its submissions got (one, or a defect)
    accepted: bool = False
    submit_tries: int = 0
    cancel_answer: int | None = None  # the last answer to the cancel (0: none came back)
    redriven: bool | None = None  # True: the re-drive is known to have happened; False: known not; None: unknown
    notes: list[str] = field(default_factory=list)

    @property
    def request(self) -> dict[str, Any]:
        return {"jobType": self.job_type, "subjectId": str(self.subject), "payload": self.payload}


class Plan:
    """The seeded jobs of one run."""

    def __init__(self, seed: int, jobs: int, window: float):
        self.rng = random.Random(seed)
        self.specs: list[JobSpec] = []
        self.texts: dict[uuid.UUID, str] = {}  # documents (doc-index, ai-analyze) and their text
        submit_until = window * 0.7
        groups = max(1, jobs // 40)
        for _ in range(groups):
            self._version_group(self.rng.uniform(0, submit_until), self.rng.randint(3, 5))
        while len(self.specs) < jobs:
            self._one(self.rng.uniform(0, submit_until))

    def _new_document(self) -> tuple[uuid.UUID, tuple[str, str, bytes]]:
        subject, text = uuid.uuid4(), document_text(self.rng)
        self.texts[subject] = text
        return subject, ("JOBS_DOCUMENTS_CONTAINER", f"{TENANT}/{subject}", text.encode())

    def _version_group(self, at: float, versions: int) -> None:
        subject, blob = self._new_document()
        for version in range(1, versions + 1):
            spec = JobSpec(f"doc-group-{subject.hex[:6]}-v{version}", "doc-index", subject,
                           {"rowVersion": version, "action": "index"}, ("Completed", None), at,
                           blob=blob if version == 1 else None, group=subject)
            if self.rng.random() < 0.2:  # a cancel racing the document's lock: the newest completed version wins
                spec.cancel_after = self.rng.uniform(0.0, 3.0)
            self.specs.append(spec)

    def _one(self, at: float) -> None:
        rng = self.rng
        kind = rng.choice(("doc-index", "ai-analyze", "email-process"))
        roll = rng.random()
        missing, mismatch = roll < 0.12, kind == "email-process" and 0.12 <= roll < 0.2
        spec = self._spec(kind, at, missing=missing, mismatch=mismatch)
        spec.duplicate = rng.random() < 0.12
        if missing and rng.random() < 0.5:
            spec.redrive, spec.blob = spec.blob, None
        elif rng.random() < 0.12:
            spec.cancel_after = rng.uniform(0.0, 3.0)
        if missing and spec.redrive is None:
            spec.blob = None
        self.specs.append(spec)

    def _spec(self, kind: str, at: float, *, missing: bool, mismatch: bool) -> JobSpec:
        n = len(self.specs)
        if kind == "email-process":
            subject, message_id = uuid.uuid4(), f"{uuid.uuid4().hex}@chaos.test"
            stated = f"other-{message_id}" if mismatch else message_id
            blob = ("JOBS_MAIL_CONTAINER", f"{TENANT}/{subject}.eml", email_bytes(stated, self.rng))
            expected = ("Failed", "EMAIL_MESSAGE_ID_MISMATCH") if mismatch else ("Completed", None)
            payload: dict[str, Any] = {"messageId": message_id}
        else:
            subject, blob = self._new_document()
            expected = ("Completed", None)
            payload = ({"rowVersion": 1, "action": "index"} if kind == "doc-index"
                       else {"analysisType": self.rng.choice(ANALYSIS_TYPES)})
        if missing:
            expected = ("Failed", "SUBJECT_NOT_FOUND")
        return JobSpec(f"{kind}-{n}", kind, subject, payload, expected, at, blob=blob)


class GaveUp(Exception):
    """No host answered this request with anything but 5xx or a connection error, for REQUEST_PATIENCE."""


class Client:
    """The API over HTTP to any of the hosts, retrying 5xx and connection errors with the same request."""

    def __init__(self, base_urls: Sequence[str], token: str, rng: random.Random):
        self.base_urls, self.token, self.rng = list(base_urls), token, rng
        self._session: aiohttp.ClientSession | None = None
        self.retried = 0

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, body: Any = None,
                   patience: float = REQUEST_PATIENCE) -> tuple[int, Any]:
        """The first answer that is not a 5xx; raises GaveUp. One correlation id for every try."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {self.token}", "x-correlation-id": str(uuid.uuid4())}
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers["Content-Type"] = "application/json"
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + patience, 0.2
        while True:
            base = self.rng.choice(self.base_urls)
            try:
                async with self._session.request(method, f"{base}{path}", data=data, headers=headers) as response:
                    text = await response.text()
                    if response.status < 500:
                        return response.status, json.loads(text) if text else None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
            if loop.time() + pause > deadline:
                raise GaveUp(f"{method} {path}")
            self.retried += 1
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 2)

    async def status(self, job_id: str) -> dict[str, Any] | None:
        code, body = await self.call("GET", f"/api/jobs/{job_id}/status")
        return body if code == 200 and isinstance(body, dict) else None


async def upload(storage: str, names: dict[str, str], blob: tuple[str, str, bytes], patience: float = 60.0) -> None:
    """Upload a subject straight to Azurite (not through the proxy), riding out an Azurite restart."""
    setting, name, content = blob
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        try:
            async with BlobServiceClient.from_connection_string(storage) as service:
                container = service.get_container_client(names[setting])
                with contextlib.suppress(ResourceExistsError):
                    await container.create_container()
                await container.upload_blob(name, content, overwrite=True)
                return
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


class Workload:
    """Runs the plan's jobs against the hosts: submit, duplicate, cancel, re-drive."""

    def __init__(self, plan: Plan, client: Client, upload_blob: Callable[[tuple[str, str, bytes]], Any]):
        self.plan, self.client, self.upload_blob = plan, client, upload_blob

    async def run(self, started: float) -> None:
        await asyncio.gather(*(self._job(spec, started) for spec in self.plan.specs))

    async def _job(self, spec: JobSpec, started: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, started + spec.at - loop.time()))
        try:
            await self._submit(spec)
            if spec.accepted and spec.cancel_after is not None:
                await asyncio.sleep(spec.cancel_after)
                await self._cancel(spec)
            if spec.accepted and spec.redrive is not None:
                await self._redrive(spec)
        except GaveUp as error:
            spec.notes.append(f"gave up: {error}")

    async def _submit(self, spec: JobSpec) -> None:
        tries = 2 if spec.duplicate else 1
        answers = await asyncio.gather(*(self.client.call("POST", "/api/jobs", spec.request) for _ in range(tries)),
                                       return_exceptions=True)
        spec.submit_tries = tries
        ids = set()
        for answer in answers:
            if isinstance(answer, BaseException):
                spec.notes.append(f"submission: {answer!r}")
                continue
            code, body = answer
            if code == 202 and isinstance(body, dict):
                ids.add(body["jobId"])
            else:
                spec.notes.append(f"submission answered {code}: {body}")
        spec.job_ids = ids
        if ids:
            spec.job_id, spec.accepted = sorted(ids)[0], True

    async def _cancel(self, spec: JobSpec) -> None:
        try:
            code, _ = await self.client.call("POST", f"/api/jobs/{spec.job_id}/cancel")
        except GaveUp:
            spec.cancel_answer = 0
            raise
        spec.cancel_answer = code

    async def _redrive(self, spec: JobSpec) -> None:
        """Wait for the job to fail (its subject is missing), upload the subject, re-drive it."""
        assert spec.redrive is not None and spec.job_id is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while loop.time() < deadline:
            state = await self.client.status(spec.job_id)
            if state is not None and state["status"] in TERMINAL:
                break
            await asyncio.sleep(1.0)
        else:
            spec.notes.append("never saw the job fail before re-driving it")
            return
        if state["status"] != "Failed":
            spec.notes.append(f"not re-driven: it ended {state['status']}")
            spec.redriven = False
            return
        await self.upload_blob(spec.redrive)
        while loop.time() < deadline:
            try:
                code, _ = await self.client.call("POST", f"/api/jobs/{spec.job_id}/retry")
            except GaveUp:
                return  # unknown: it may have been applied by a try whose answer was lost
            if code == 202:
                spec.redriven = True
                return
            state = await self.client.status(spec.job_id)
            if state is not None and int(state.get("run", 1)) > 1:
                spec.redriven = True  # an earlier try was applied; its answer was lost
                return
            await asyncio.sleep(1.0)  # 409 while its outcome is still pending
