"""``doc-index``: build (or remove) the term index of a document.

Subject: the UTF-8 text blob ``documents/{tenantId}/{subjectId}``. Output: one row per term in
the index table, partition ``{tenantId}|doc-{subjectId}``, plus a ``~meta`` row holding the
indexed rowVersion. Idempotent: rows are upserted, terms that left the document are deleted,
and a job for an older rowVersion than the one indexed is skipped, so redeliveries and
out-of-order versions never leave an older index behind.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from jobs.text import term_counts
from shared.context import JobContext
from shared.registry import JobType, Payload, ResultSummary

META_ROW = "~meta"  # '~' is not a word character, so no term can collide with it


class DocIndexPayload(Payload):
    row_version: int = Field(alias="rowVersion", ge=0, le=2**53)
    action: Literal["index", "remove"]


def idempotency_key(subject_id: uuid.UUID, payload: DocIndexPayload) -> str:
    return f"doc-{subject_id}-v{payload.row_version}"


async def handle(ctx: JobContext[DocIndexPayload]) -> ResultSummary:
    subject, version = ctx.contract.subject_id, ctx.payload.row_version
    partition = f"doc-{subject}"
    rows = ctx.index_rows
    meta = await rows.get(partition, META_ROW)
    if meta is not None and int(meta.get("rowVersion", -1)) > version:
        ctx.logger.info("index holds v%s, newer than v%s: skipping", meta["rowVersion"], version)
        return {"action": ctx.payload.action, "rowVersion": version, "skipped": "newer version indexed",
                "indexedVersion": int(meta["rowVersion"])}
    existing = {key for key in await rows.keys(partition) if key != META_ROW}
    if ctx.payload.action == "remove":
        removed = await rows.delete(partition, sorted(existing))
        await rows.upsert(partition, [{"RowKey": META_ROW, "rowVersion": version, "removed": True, "terms": 0}])
        return {"action": "remove", "rowVersion": version, "removedTerms": removed}
    text = await ctx.files.read_text(ctx.settings.documents_container, str(subject))
    counts = term_counts(text)
    await ctx.report_progress(30, "document read")
    await ctx.raise_if_cancelled()
    written = await rows.upsert(
        partition, ({"RowKey": term, "count": n, "rowVersion": version} for term, n in sorted(counts.items()))
    )
    await ctx.report_progress(80, "terms written")
    stale = sorted(existing - counts.keys())
    removed = await rows.delete(partition, stale)
    await rows.upsert(partition, [{
        "RowKey": META_ROW, "rowVersion": version, "removed": False,
        "terms": len(counts), "words": sum(counts.values()),
    }])
    return {"action": "index", "rowVersion": version, "terms": written, "words": sum(counts.values()),
            "removedTerms": removed}


JOB_TYPE: JobType[DocIndexPayload] = JobType(
    name="doc-index", payload_model=DocIndexPayload, idempotency_key=idempotency_key, max_attempts=5,
    handler=handle, description="Index (or remove) a text document's terms.",
)
