"""doc-index under concurrency: two versions of one document at once end with the newest index."""

from __future__ import annotations

import asyncio
import uuid

from jobs.storage_names import DOC_INDEX, DOCUMENTS
from shared.domain.contract import JobStatus
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from tests.engine.helpers import submit_job, take_message
from tests.support import run_until_settled


async def test_concurrent_doc_index_versions_end_with_the_newest_index(runtime: Runtime) -> None:
    from tests.engine.helpers import upload

    for round_ in range(3):
        subject = uuid.uuid4()
        await upload(runtime, runtime.settings.name_of(DOCUMENTS), str(subject), b"alpha beta gamma delta")
        jobs = [await submit_job(runtime, "doc-index", {"rowVersion": v, "action": "index"}, subject)
                for v in (1, 2)]
        bodies = [await take_message(runtime) for _ in jobs]
        await asyncio.gather(*(handle_job_message(runtime, b, 1) for b in bodies))  # both versions at once
        for job in jobs:
            assert (await run_until_settled(runtime, job.record.job_id, timeout=30)).status is JobStatus.COMPLETED
        rows = runtime.rows(uuid.UUID(str(jobs[0].record.tenant_id)), DOC_INDEX)
        meta = await rows.get(f"doc-{subject}", "~meta")
        assert meta is not None and meta["rowVersion"] == 2 and meta.get("lockedBy") is None, (round_, meta)
        terms = {k: (await rows.get(f"doc-{subject}", k) or {}).get("rowVersion")
                 for k in await rows.keys(f"doc-{subject}") if k != "~meta"}
        assert set(terms) == {"alpha", "beta", "gamma", "delta"}
        assert set(terms.values()) == {2}, terms  # no row of v1 written after v2's
