"""Shortcuts for engine tests: submit as a principal, upload subjects, count events."""

from __future__ import annotations

import uuid
from typing import Any

from shared.domain.commands import SubmitJob
from shared.domain.principal import Principal
from shared.engine.runtime import Runtime
from shared.engine.submit import Submission, submit
from tests.support import ALICE_OID, TENANT, outcome_events

ALICE = Principal(TENANT, ALICE_OID, frozenset({"Jobs.Submit", "Jobs.Read"}))


async def submit_job(runtime: Runtime, job_type: str, payload: dict[str, Any], subject: uuid.UUID | None = None,
                     correlation: uuid.UUID | None = None) -> Submission:
    request = SubmitJob(job_type=job_type, subject_id=subject or uuid.uuid4(), payload=payload)
    return await submit(runtime, ALICE, request, correlation or uuid.uuid4())


async def upload(runtime: Runtime, container: str, name: str, data: bytes, tenant: str = TENANT) -> None:
    await runtime.clients.container(container).upload_blob(f"{tenant}/{name}", data, overwrite=True)


async def events_for(runtime: Runtime, job_id: uuid.UUID) -> list[dict[str, Any]]:
    return [e for e in await outcome_events(runtime) if e["jobId"] == str(job_id)]


async def take_message(runtime: Runtime) -> str:
    """Receive and delete the next job message, as a host would after handing it to the worker."""
    message = [m async for m in runtime.queues.jobs.receive_messages(max_messages=1)][0]
    await runtime.queues.jobs.delete_message(message)
    return str(message.content)
