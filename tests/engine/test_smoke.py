from __future__ import annotations

import uuid

from jobs.storage_names import DOCUMENTS
from shared.domain.commands import SubmitJob
from shared.domain.contract import JobStatus
from shared.domain.principal import Principal
from shared.engine.runtime import Runtime
from shared.engine.submit import submit
from tests.support import TENANT, outcome_events, run_until_settled

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
