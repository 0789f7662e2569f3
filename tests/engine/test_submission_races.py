"""Submission under races: an insert that landed before its response was lost, a duplicate that
joins a job while its creator is still checking the quota, many submissions on one index partition."""

from __future__ import annotations

import asyncio
import json
import uuid

from azure.data.tables import UpdateMode

from devhost.azurite import Azurite
from shared.domain.commands import SubmitJob
from shared.engine.runtime import Runtime
from shared.engine.submit import new_record
from shared.store.status_table import record_to_entity
from tests.engine.helpers import ALICE, submit_job
from tests.support import RequestLog, make_runtime, make_settings, sync_status_table


async def _messages(runtime: Runtime) -> int:
    return (await runtime.queues.jobs.get_queue_properties()).approximate_message_count


async def test_an_insert_that_landed_before_its_response_was_lost_is_this_insert(
        runtime: Runtime, request_log: RequestLog) -> None:
    """The SDK retries an insert whose response never came; the retry conflicts with the entity the first try
    wrote. That entity has this request's correlation id and never moved: the submission carries on as its
    creator (sends the message, indexes it) instead of replaying a job nobody will ever send."""
    correlation, subject = uuid.uuid4(), uuid.uuid4()
    command = SubmitJob(job_type="probe", subject_id=subject, payload={"tag": "landed"})
    landed = new_record(runtime, ALICE, command, correlation).created().after
    before = await _messages(runtime)
    with sync_status_table(runtime) as other:
        request_log.interleave_on("POST", f"/{runtime.settings.jobs_table}",
                                  lambda: other.create_entity(record_to_entity(landed)))
        sub = await submit_job(runtime, "probe", {"tag": "landed"}, subject, correlation)
    assert not sub.replayed and sub.record.job_id == landed.job_id
    assert await _messages(runtime) == before + 1  # its message went out
    assert await runtime.index.live_jobs(ALICE.key, 10) == [landed.job_id]


async def test_an_entity_someone_else_created_is_a_replay(runtime: Runtime, request_log: RequestLog) -> None:
    subject = uuid.uuid4()
    command = SubmitJob(job_type="probe", subject_id=subject, payload={"tag": "theirs"})
    theirs = new_record(runtime, ALICE, command, uuid.uuid4()).created().after  # another request's
    with sync_status_table(runtime) as other:
        request_log.interleave_on("POST", f"/{runtime.settings.jobs_table}",
                                  lambda: other.create_entity(record_to_entity(theirs)))
        sub = await submit_job(runtime, "probe", {"tag": "theirs"}, subject)
    assert sub.replayed and sub.record.correlation_id == theirs.correlation_id


async def test_a_refused_creator_keeps_the_job_a_duplicate_joined_meanwhile(
        azurite: Azurite, request_log: RequestLog) -> None:
    """At the cap, the creator's insert lands; before its refusal deletes it, a duplicate (another instance)
    joins the job and is told 202. The join changed the ETag, so the delete fails and the creator sends
    the job after all: the job the twin was given runs."""
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_MAX_INFLIGHT_PER_PRINCIPAL="1"),
                                 request_log)
    try:
        await submit_job(runtime, "probe", {"tag": "occupant"})
        subject = uuid.uuid4()
        command = SubmitJob(job_type="probe", subject_id=subject, payload={"tag": "twin"})
        job = str(new_record(runtime, ALICE, command, uuid.uuid4()).job_id)
        before = await _messages(runtime)
        with sync_status_table(runtime) as other:
            request_log.interleave_on("DELETE", f"(PartitionKey='{job}'", lambda: other.update_entity(
                {"PartitionKey": job, "RowKey": "job", "submitters": json.dumps([ALICE.key, "twin|joined"])},
                mode=UpdateMode.MERGE))
            sub = await submit_job(runtime, "probe", {"tag": "twin"}, subject)
        assert not sub.replayed and str(sub.record.job_id) == job and "twin|joined" in sub.record.submitters
        assert await _messages(runtime) == before + 1  # sent: it will reach a terminal status
    finally:
        await runtime.close()


async def test_many_submissions_on_one_index_partition_never_503(runtime: Runtime) -> None:
    """Every submission of a tenant writes the same index partition; none conflicts with another."""
    results = await asyncio.gather(*(submit_job(runtime, "probe", {"tag": f"many-{n}"}) for n in range(40)),
                                   return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(await runtime.index.live_jobs(ALICE.key, 100)) == 40
