"""``doc-index``: build (or remove) the term index of a document.

Subject: the UTF-8 text blob ``documents/{tenantId}/{subjectId}``. Output: one row per term in
the index table, partition ``{tenantId}|doc-{subjectId}``, plus a ``~meta`` row holding the
indexed rowVersion.

Idempotent and order-proof: rows are upserted, terms that left the document are deleted, and a
job for an older rowVersion than the one indexed is skipped. Jobs for different versions of one
document may run at the same time, so the ``~meta`` row doubles as a per-document lock, taken
and released with If-Match: a job that finds another version's live lock fails transiently and
is retried later with backoff, so two versions never interleave their writes.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from jobs.storage_names import DOC_INDEX, DOCUMENTS
from jobs.text import term_counts
from shared.handlers import JobContext, JobType, Payload, ResultSummary, RowChanged, TenantRows, utc_now

META_ROW = "~meta"  # '~' is not a word character, so no term can collide with it


class DocIndexPayload(Payload):
    row_version: int = Field(alias="rowVersion", ge=0, le=2**53)
    action: Literal["index", "remove"]


class DocumentBusy(Exception):
    """Another version of this document is being indexed right now."""


def idempotency_key(subject_id: uuid.UUID, payload: DocIndexPayload) -> str:
    return f"doc-{subject_id}-v{payload.row_version}"


async def _lock(ctx: JobContext[DocIndexPayload], rows: TenantRows, partition: str) -> tuple[dict[str, Any], str]:
    """Take the document's lock on ``~meta``; return the meta as it was and the lock's ETag."""
    meta, etag = await rows.get_versioned(partition, META_ROW)
    meta = meta or {"RowKey": META_ROW, "rowVersion": -1}
    me, now = str(ctx.contract.job_id), utc_now()
    holder, until = meta.get("lockedBy"), meta.get("lockedUntil")
    if holder not in (None, me) and until is not None and until > now:
        raise DocumentBusy(f"version lock held by job {holder}")
    if int(meta.get("rowVersion", -1)) > ctx.payload.row_version:
        return meta, ""  # a newer version is indexed: nothing to lock, nothing to do
    locked = {**meta, "lockedBy": me, "lockedUntil": now + timedelta(seconds=ctx.settings.lease_seconds)}
    try:
        return meta, await rows.put_if(partition, locked, etag)
    except RowChanged as exc:
        raise DocumentBusy("the document's index changed while locking it") from exc


async def handle(ctx: JobContext[DocIndexPayload]) -> ResultSummary:
    subject, version = ctx.contract.subject_id, ctx.payload.row_version
    partition, rows = f"doc-{subject}", ctx.rows(DOC_INDEX)
    meta, lock = await _lock(ctx, rows, partition)
    if not lock:
        ctx.logger.info("index holds v%s, newer than v%s: skipping", meta["rowVersion"], version)
        return {"action": ctx.payload.action, "rowVersion": version, "skipped": "newer version indexed",
                "indexedVersion": int(meta["rowVersion"])}
    try:
        return await _index(ctx, rows, partition, lock)
    except Exception:
        # Failed, cancelled or retrying: give the lock back at once (best effort; it also expires).
        with contextlib.suppress(Exception):
            await rows.put_if(partition, {k: v for k, v in meta.items() if k not in ("lockedBy", "lockedUntil")},
                              lock)
        raise


async def _index(ctx: JobContext[DocIndexPayload], rows: TenantRows, partition: str, lock: str) -> ResultSummary:
    subject, version = ctx.contract.subject_id, ctx.payload.row_version
    existing = {key for key in await rows.keys(partition) if key != META_ROW}
    if ctx.payload.action == "remove":
        removed = await rows.delete(partition, sorted(existing))
        await _release(rows, partition, lock, {"rowVersion": version, "removed": True, "terms": 0})
        return {"action": "remove", "rowVersion": version, "removedTerms": removed}
    text = await ctx.files.read_text(ctx.container(DOCUMENTS), str(subject))
    counts = term_counts(text)
    await ctx.report_progress(30, "document read")
    written = await rows.upsert(
        partition, ({"RowKey": term, "count": n, "rowVersion": version} for term, n in sorted(counts.items()))
    )
    await ctx.report_progress(80, "terms written")
    removed = await rows.delete(partition, sorted(existing - counts.keys()))
    await _release(rows, partition, lock, {"rowVersion": version, "removed": False, "terms": len(counts),
                                           "words": sum(counts.values())})
    return {"action": "index", "rowVersion": version, "terms": written, "words": sum(counts.values()),
            "removedTerms": removed}


async def _release(rows: TenantRows, partition: str, lock: str, meta: dict[str, Any]) -> None:
    """Record the indexed version and drop the lock, only if the lock is still ours."""
    try:
        await rows.put_if(partition, {"RowKey": META_ROW, **meta}, lock)
    except RowChanged as exc:  # our lock expired and another version took over: let it finish first
        raise DocumentBusy("lost the document's lock while indexing") from exc


JOB_TYPE: JobType[DocIndexPayload] = JobType(
    name="doc-index", payload_model=DocIndexPayload, idempotency_key=idempotency_key, max_attempts=5,
    handler=handle, containers=(DOCUMENTS,), tables=(DOC_INDEX,),
    # Measured on Azurite: 0.6-0.8 s for a 2,000-word document, 1.3-1.4 s for 20,000 words (row batches).
    typical_seconds=1.5,
)
