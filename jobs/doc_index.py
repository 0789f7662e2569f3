"""``doc-index``: build (or remove) the term index of a document.

Subject: the UTF-8 text blob ``documents/{tenantId}/{subjectId}``. Output: one row per term in
the index table, partition ``{tenantId}|doc-{subjectId}``, plus a ``~meta`` row holding the
indexed rowVersion.

Idempotent and order-proof: rows are upserted, terms that left the document are deleted, and a
job for an older rowVersion than the one indexed is skipped. Jobs for different versions of one
document may run at the same time, so the ``~meta`` row doubles as a per-document lock:

- taken If-Match, naming the job and the attempt's lease owner, until ``now + JOBS_LEASE_SECONDS``;
- renewed every third of that while the job runs (as the job's own lease is);
- fencing every write: each batch of index rows goes in one transaction with an If-Match
  rewrite of the lock row, so a holder that lost the lock (it outlived it, and a newer version
  took it) fails as a whole at its next batch and never lands stale rows;
- released If-Match with the indexed version when the job ends.

A job that finds the lock held waits without spending an attempt (``RetryLater``), looking again
after at most ``LOCK_POLL_SECONDS``. A lock whose holder is no longer running under that lease
(it finished, crashed and its lease expired, or its job was taken over) is dead and is taken at
once; fencing makes that safe even if the holder is still alive somewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from jobs.storage_names import DOC_INDEX, DOCUMENT, DOCUMENTS
from jobs.text import term_counts
from shared.handlers import JobContext, JobType, Payload, ResultSummary, RetryLater, RowChanged, TenantRows, utc_now

META_ROW = "~meta"  # '~' is not a word character, so no term can collide with it
LOCK_FIELDS = ("lockedBy", "lockedByLease", "lockedUntil")
LOCK_POLL_SECONDS = 2.0  # a waiting version looks again at least this often (one look: ~7 storage calls)


class DocIndexPayload(Payload):
    row_version: int = Field(alias="rowVersion", ge=0, le=2**53)
    action: Literal["index", "remove"]


class DocumentBusy(Exception):
    """This attempt lost the document's lock while indexing (a newer version took it)."""


def idempotency_key(subject_id: uuid.UUID, payload: DocIndexPayload) -> str:
    return f"doc-{subject_id}-v{payload.row_version}"


class DocumentLock:
    """The document's lock on ``~meta``, held by one attempt: renewed, fencing every write."""

    def __init__(self, rows: TenantRows, partition: str, meta: dict[str, Any], etag: str, seconds: float):
        self._rows, self._partition, self._seconds = rows, partition, seconds
        self._meta, self._etag = meta, etag
        self._turn = asyncio.Lock()  # one conditional write of the lock row at a time: each needs the last ETag

    def _held(self) -> dict[str, Any]:
        return {**self._meta, "lockedUntil": utc_now() + timedelta(seconds=self._seconds)}

    async def renew(self) -> None:
        async with self._turn:
            self._etag = await self._fenced(self._held())

    async def keep_alive(self) -> None:
        """Renew every third of the lock's duration until cancelled; stop once the lock is lost."""
        while True:
            await asyncio.sleep(max(0.2, self._seconds / 3))
            try:
                await self.renew()
            except DocumentBusy:
                return

    async def write(self, *, upserts: Sequence[dict[str, Any]] = (), deletes: Sequence[str] = ()) -> None:
        async with self._turn:
            try:
                self._etag = await self._rows.write_fenced(self._partition, self._held(), self._etag,
                                                           upserts=upserts, deletes=deletes)
            except RowChanged as exc:
                raise DocumentBusy("lost the document's lock while indexing") from exc

    async def release(self, meta: dict[str, Any]) -> None:
        """Record the indexed version (``meta``) and drop the lock, only if it is still ours."""
        async with self._turn:
            self._etag = await self._fenced({"RowKey": META_ROW, **meta})

    async def abandon(self) -> None:
        """Give the lock back unchanged otherwise (a failed or retrying attempt): best effort, it expires."""
        with contextlib.suppress(Exception):
            async with self._turn:
                await self._fenced({k: v for k, v in self._meta.items() if k not in LOCK_FIELDS})

    async def _fenced(self, row: dict[str, Any]) -> str:
        try:
            return await self._rows.put_if(self._partition, row, self._etag)
        except RowChanged as exc:
            raise DocumentBusy("lost the document's lock while indexing") from exc


async def _lock(ctx: JobContext[DocIndexPayload], rows: TenantRows, partition: str) -> DocumentLock | None:
    """Take the document's lock; None when a newer version is indexed (nothing to do).
    Raises RetryLater while another live attempt holds it."""
    meta, etag = await rows.get_versioned(partition, META_ROW)
    meta = meta or {"RowKey": META_ROW, "rowVersion": -1}
    if int(meta.get("rowVersion", -1)) > ctx.payload.row_version:
        return None
    now, me = utc_now(), str(ctx.contract.job_id)
    holder, until = meta.get("lockedBy"), meta.get("lockedUntil")
    if holder not in (None, me) and until is not None and until > now:
        holder_until = await ctx.live_lease_of(uuid.UUID(holder), str(meta.get("lockedByLease")))
        if holder_until is not None:
            raise RetryLater(_look_again(now, min(until, holder_until)), f"document locked by job {holder}")
        ctx.logger.info("job %s holds the document's lock but no longer runs; taking it over", holder)
    seconds = ctx.settings.lease_seconds
    locked = {**meta, "lockedBy": me, "lockedByLease": ctx.lease_owner,
              "lockedUntil": now + timedelta(seconds=seconds)}
    try:
        etag = await rows.put_if(partition, locked, etag)
    except RowChanged as exc:  # someone locked (or indexed) it between our read and write: look again soon
        raise RetryLater(_look_again(now, now + timedelta(seconds=1)), "the document's lock changed") from exc
    return DocumentLock(rows, partition, locked, etag, seconds)


def _look_again(now: datetime, free_at: datetime) -> datetime:
    return min(free_at, now + timedelta(seconds=LOCK_POLL_SECONDS)) + timedelta(milliseconds=200)


async def handle(ctx: JobContext[DocIndexPayload]) -> ResultSummary:
    partition, rows = f"doc-{ctx.contract.subject_id}", ctx.rows(DOC_INDEX)
    lock = await _lock(ctx, rows, partition)
    if lock is None:
        indexed = int((await rows.get(partition, META_ROW) or {}).get("rowVersion", -1))
        ctx.logger.info("index holds v%s, newer than v%s: skipping", indexed, ctx.payload.row_version)
        return {"action": ctx.payload.action, "rowVersion": ctx.payload.row_version,
                "skipped": "newer version indexed", "indexedVersion": indexed}
    keep_alive = asyncio.create_task(lock.keep_alive())
    try:
        return await _index(ctx, rows, partition, lock)
    except Exception:  # failed or waiting: give the lock back now (a lost lease or crash leaves a dead lock)
        await lock.abandon()
        raise
    finally:
        keep_alive.cancel()


async def _index(ctx: JobContext[DocIndexPayload], rows: TenantRows, partition: str,
                 lock: DocumentLock) -> ResultSummary:
    subject, version = ctx.contract.subject_id, ctx.payload.row_version
    existing = {key for key in await rows.keys(partition) if key != META_ROW}
    if ctx.payload.action == "remove":
        await lock.write(deletes=sorted(existing))
        await lock.release({"rowVersion": version, "removed": True, "terms": 0})
        return {"action": "remove", "rowVersion": version, "removedTerms": len(existing)}
    text = await ctx.files.read_text(ctx.container(DOCUMENT.container), DOCUMENT.name(subject))
    counts = term_counts(text)
    await ctx.report_progress(30, "document read")
    gone = sorted(existing - counts.keys())
    terms = [{"RowKey": term, "count": n, "rowVersion": version} for term, n in sorted(counts.items())]
    # No cancellation point (report_progress) from here on: once the terms are written, the version
    # completes; a cancel now would end it Cancelled with its rows in and ~meta at the version before.
    await lock.write(upserts=terms, deletes=gone)
    words = sum(counts.values())
    await lock.release({"rowVersion": version, "removed": False, "terms": len(counts), "words": words})
    return {"action": "index", "rowVersion": version, "terms": len(counts), "words": words, "removedTerms": len(gone)}


JOB_TYPE: JobType[DocIndexPayload] = JobType(
    name="doc-index", payload_model=DocIndexPayload, idempotency_key=idempotency_key, max_attempts=5,
    handler=handle, containers=(DOCUMENTS,), tables=(DOC_INDEX,), subject=DOCUMENT,
    # Measured on Azurite: 0.6-0.8 s for a 2,000-word document, 1.3-1.4 s for 20,000 words (row batches).
    typical_seconds=1.5,
)
