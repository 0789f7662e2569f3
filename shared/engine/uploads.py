"""A new subject to upload: its id and a URL that can write it, under the caller's tenant only.

``POST /api/uploads {"kind": "document" | "mail"}``: the job types declare their subject blobs
(``JobType.subject``); the caller names a kind and gets a fresh subjectId with a write-only URL
for ``<container>/<callerTenantId>/<subjectId><suffix>``. The tenant comes from the token and the
name from a new GUID, so no request can obtain a URL for another tenant's (or any existing) blob.
The size limit is the job's (a subject over 16 MiB fails as SUBJECT_INVALID): a SAS cannot cap
a blob's size, so the client checks it before uploading and the job checks it when it reads.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.errors import ErrorCode, JobsError
from shared.domain.principal import Principal
from shared.engine.runtime import Runtime

UPLOAD_URL_LIFETIME = timedelta(minutes=15)


@dataclass(frozen=True)
class Upload:
    kind: str
    subject_id: uuid.UUID
    url: str
    expires_at: datetime
    content_type: str
    max_bytes: int


async def new_upload(runtime: Runtime, principal: Principal, kind: str) -> Upload:
    kinds = runtime.registry.upload_kinds()
    blob = kinds.get(kind)
    if blob is None:
        raise JobsError(ErrorCode.REQUEST_INVALID, errors=[
            {"field": "kind", "message": f"one of {', '.join(sorted(kinds))}"}])
    subject = uuid.uuid4()
    now = runtime.clock()
    expires = now + UPLOAD_URL_LIFETIME
    name = f"{uuid.UUID(principal.tenant_id)}/{blob.name(subject)}"
    url = await runtime.upload_urls.write_url(runtime.settings.name_of(blob.container), name, now, expires)
    return Upload(kind, subject, url, expires, blob.content_type, blob.max_bytes)
