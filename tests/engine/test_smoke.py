from __future__ import annotations

import gc
import uuid
from typing import Any

import aiohttp
import pytest

from jobs import REGISTRY
from jobs.storage_names import DOCUMENTS
from shared.domain.commands import SubmitJob
from shared.domain.contract import JobStatus
from shared.domain.principal import Principal
from shared.engine.runtime import Runtime, RuntimeProvider
from shared.engine.submit import submit
from tests.support import TENANT, RequestLog, make_settings, outcome_events, run_until_settled

ALICE = Principal(TENANT, "0b5c6d7e-1111-4222-8333-944455556666", frozenset({"Jobs.Submit", "Jobs.Read"}))


async def test_doc_index_completes(runtime: Runtime) -> None:
    subject = uuid.uuid4()
    await runtime.files(uuid.UUID(TENANT))._clients.container(runtime.settings.name_of(DOCUMENTS)).upload_blob(
        f"{TENANT}/{subject}", b"The quick brown fox jumps over the lazy dog. The dog sleeps."
    )
    sub = await submit(runtime, ALICE, SubmitJob(job_type="doc-index", subject_id=subject,
                                                     payload={"rowVersion": 1, "action": "index"}), uuid.uuid4())
    record = await run_until_settled(runtime, sub.record.job_id)
    assert record.status is JobStatus.COMPLETED, record
    assert record.result["terms"] > 5
    events = await outcome_events(runtime)
    assert [e["outcome"] for e in events] == ["Completed"]


def _open_sessions() -> set[int]:
    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed}


async def test_a_runtime_whose_storage_setup_fails_closes_its_clients_and_the_next_call_builds_one(
        azurite: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first invocation builds the runtime and creates the app's tables and queues; when storage
    fails then (a host starting during an outage), the connection pool it opened is closed, not leaked
    (devhost logged "Unclosed client session" for each such failure)."""
    settings = make_settings(azurite.connection_string)
    for name, value in {"AzureWebJobsStorage": azurite.connection_string, "JOBS_QUEUE": settings.jobs_queue,
                        "JOBS_TABLE": settings.jobs_table, "JOBS_OUTCOMES_QUEUE": settings.outcomes_queue}.items():
        monkeypatch.setenv(name, value)
    log = RequestLog()
    outage = log.fail_on("POST", "/Tables", times=1000)  # the table creations
    provider = RuntimeProvider(REGISTRY, client_options={"raw_request_hook": log.hook})
    before = _open_sessions()
    with pytest.raises(OSError, match="injected"):
        await provider()
    assert _open_sessions() - before == set()
    outage.times = 0
    runtime = await provider()
    assert runtime is await provider()
    await provider.close()
    assert _open_sessions() - before == set()
