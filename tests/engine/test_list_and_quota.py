"""The list index and the in-flight quota: purge leaves no list rows; a duplicate at the cap is replayed."""

from __future__ import annotations

import uuid

from devhost.azurite import Azurite
from shared.engine.sweep import sweep
from shared.store.job_list import JobIndex, index_row_key, owner_partition, tenant_partition
from tests.engine.helpers import ALICE, submit_job
from tests.support import RequestLog, make_runtime, make_settings, run_until_settled


async def test_purge_removes_the_jobs_list_rows(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_RETENTION_DAYS="0"), request_log)
    try:
        sub = await submit_job(runtime, "probe", {"tag": "purge-index"})
        record = await run_until_settled(runtime, sub.record.job_id)
        assert (await sweep(runtime)).purged == 1
        key = index_row_key(record.created_at, record.job_id)
        table = runtime.store.table
        for pk, rk in ((owner_partition(ALICE.key), key), (owner_partition(ALICE.key), f"live_{record.job_id}"),
                       (tenant_partition(str(record.tenant_id)), key)):
            assert [e async for e in table.query_entities(
                "PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": pk, "rk": rk})] == [], (pk, rk)
        assert await JobIndex(table).live_jobs(ALICE.key, 10) == []
    finally:
        await runtime.close()


async def test_a_duplicate_at_the_quota_is_replayed_not_refused(azurite: Azurite, request_log: RequestLog) -> None:
    runtime = await make_runtime(make_settings(azurite.connection_string, JOBS_MAX_INFLIGHT_PER_PRINCIPAL="1"),
                                 request_log)
    try:
        subject = uuid.uuid4()
        first = await submit_job(runtime, "probe", {"tag": "one"}, subject)
        again = await submit_job(runtime, "probe", {"tag": "one"}, subject)
        assert again.replayed and again.record.job_id == first.record.job_id
        assert await runtime.store.get(first.record.job_id) is not None
    finally:
        await runtime.close()
