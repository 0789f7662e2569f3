"""doc-index under concurrency: two versions of one document at once end with the newest index."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableClient, UpdateMode

from jobs.doc_index import LOCK_POLL_SECONDS
from jobs.storage_names import DOC_INDEX, DOCUMENTS
from shared.domain.contract import JobStatus
from shared.engine.runtime import Runtime
from shared.engine.worker import handle_job_message
from tests.engine.helpers import submit_job, take_message, upload
from tests.support import TENANT, RequestLog, SimulatedCrash, force, history_of, run_until_settled


async def test_concurrent_doc_index_versions_end_with_the_newest_index(runtime: Runtime) -> None:
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


async def _index_rows(runtime: Runtime, subject: uuid.UUID) -> dict[str, int]:
    rows = runtime.rows(uuid.UUID(TENANT), DOC_INDEX)
    return {k: (await rows.get(f"doc-{subject}", k) or {}).get("rowVersion", -1)
            for k in await rows.keys(f"doc-{subject}") if k != "~meta"}


async def test_a_version_that_lost_the_lock_while_indexing_writes_nothing_of_its_batch(
        runtime: Runtime, request_log: RequestLog) -> None:
    """v1 outlives its lock (a pause); v2 locks, indexes and releases; v1's late batch must fail whole."""
    subject = uuid.uuid4()
    await upload(runtime, runtime.settings.name_of(DOCUMENTS), str(subject), b"old words only")
    v1 = await submit_job(runtime, "doc-index", {"rowVersion": 1, "action": "index"}, subject)
    body = await take_message(runtime)
    table = TableClient.from_connection_string(runtime.settings.storage["AzureWebJobsStorage"],
                                               runtime.settings.name_of(DOC_INDEX))
    partition = f"{TENANT}|doc-{subject}"

    def v2_takes_the_lock_and_indexes() -> None:  # just before v1's first index batch leaves
        meta = table.get_entity(partition, "~meta")
        table.update_entity({**meta, "lockedBy": str(uuid.uuid4()), "lockedByLease": "v2"}, mode=UpdateMode.REPLACE,
                            etag=meta.metadata["etag"], match_condition=MatchConditions.IfNotModified)
        table.upsert_entity({"PartitionKey": partition, "RowKey": "fresh", "count": 1, "rowVersion": 2})
        table.upsert_entity({"PartitionKey": partition, "RowKey": "~meta", "rowVersion": 2, "terms": 1})

    request_log.interleave_on("POST", "$batch", v2_takes_the_lock_and_indexes)
    await handle_job_message(runtime, body, 1)
    record = await runtime.store.get(v1.record.job_id)
    assert record is not None and record.status is JobStatus.QUEUED and record.last_error_message == "DocumentBusy"
    assert await _index_rows(runtime, subject) == {"fresh": 2}  # none of v1's terms (old, words, only) landed
    settled = await run_until_settled(runtime, v1.record.job_id)
    assert settled.status is JobStatus.COMPLETED and settled.result["skipped"] == "newer version indexed"
    assert await _index_rows(runtime, subject) == {"fresh": 2}


async def test_a_busy_document_waits_without_spending_attempts_and_a_dead_holders_lock_is_taken_over(
        runtime: Runtime, request_log: RequestLog) -> None:
    subject = uuid.uuid4()
    await upload(runtime, runtime.settings.name_of(DOCUMENTS), str(subject), b"alpha beta")
    v1 = await submit_job(runtime, "doc-index", {"rowVersion": 1, "action": "index"}, subject)
    request_log.crash_on("GET", f"/{runtime.settings.name_of(DOCUMENTS)}/")  # v1 dies holding the lock
    with pytest.raises(SimulatedCrash):
        await handle_job_message(runtime, await take_message(runtime), 1)
    v2 = await submit_job(runtime, "doc-index", {"rowVersion": 2, "action": "index"}, subject)
    body = await take_message(runtime)
    for look in range(1, 4):  # v1's lease is live: v2 waits, again and again, and spends nothing
        await handle_job_message(runtime, body, 1)
        waiting = await runtime.store.get(v2.record.job_id)
        assert waiting is not None and (waiting.status, waiting.attempt) == (JobStatus.QUEUED, 0), look
        assert 0 < (waiting.visible_at - runtime.clock()).total_seconds() <= LOCK_POLL_SECONDS + 1
        assert [e.reason for e in await history_of(runtime, v2.record.job_id)][-1] == "Deferred"
        body = waiting.next_contract().to_json()  # its message, as the queue hands it over when visible
    held = await runtime.store.get(v1.record.job_id)
    assert held is not None and held.status is JobStatus.RUNNING
    await force(runtime, held, lease_expires_at=runtime.clock() - timedelta(seconds=1))  # v1's lease ran out
    await handle_job_message(runtime, body, 1)  # v2's next look: the holder is gone, so is its lock
    done = await runtime.store.get(v2.record.job_id)
    assert done is not None and (done.status, done.attempt) == (JobStatus.COMPLETED, 1)
    assert await _index_rows(runtime, subject) == {"alpha": 2, "beta": 2}


async def test_a_cancel_that_arrives_while_the_terms_are_written_leaves_no_rows_the_index_does_not_record(
        runtime: Runtime, request_log: RequestLog) -> None:
    """Once its terms are written, a version completes: a cancellation point between the write and the
    release would end it Cancelled with its rows in the index and ``~meta`` still at the version before."""
    subject = uuid.uuid4()
    await upload(runtime, runtime.settings.name_of(DOCUMENTS), str(subject), b"alpha beta")
    job = await submit_job(runtime, "doc-index", {"rowVersion": 1, "action": "index"}, subject)
    body = await take_message(runtime)
    jobs_table = TableClient.from_connection_string(runtime.settings.storage["AzureWebJobsStorage"],
                                                    runtime.settings.jobs_table)

    def cancel_is_requested() -> None:  # as POST /cancel does to a Running job, just before the terms go out
        entity = jobs_table.get_entity(str(job.record.job_id), "job")
        jobs_table.update_entity({"PartitionKey": entity["PartitionKey"], "RowKey": "job", "cancelRequested": True},
                                 mode=UpdateMode.MERGE, etag=entity.metadata["etag"],
                                 match_condition=MatchConditions.IfNotModified)

    request_log.interleave_on("POST", "$batch", cancel_is_requested)
    await handle_job_message(runtime, body, 1)
    record = await runtime.store.get(job.record.job_id)
    assert record is not None and record.status is JobStatus.COMPLETED, [(e.target, e.reason) for e in record.history]
    meta = await runtime.rows(uuid.UUID(TENANT), DOC_INDEX).get(f"doc-{subject}", "~meta")
    assert meta is not None and meta["rowVersion"] == 1
    assert await _index_rows(runtime, subject) == {"alpha": 1, "beta": 1}
