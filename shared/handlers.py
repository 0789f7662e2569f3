"""The job-author API: everything a module in jobs/ needs, and nothing of the engine's insides.

A job type names its payload model (``extra="forbid"``), derives its idempotency key
deterministically from the subject and payload (never free-form from the caller), bounds its
attempts, declares the containers and tables it works on and how long a run usually takes
(``typical_seconds``, which paces status polling), and supplies the handler.

Handlers run under at-least-once delivery: any of them may run more than once for one job (a
crash after the side effect, a lease that expired, a duplicate message). Write effects so that
repeating them is harmless (upserts, overwrites, deterministic names), and wrap the ones that are
not in ``ctx.once(step_key, fn)``, which records each step's small result in the job's partition
and returns it instead of running the step again. A handler ends its job by returning a small
result summary (Completed), raising ``PermanentJobError`` (Failed, no retry) or ``JobCancelled``
(Cancelled), or ``RetryLater(at, reason)`` to wait for a known time without spending an
attempt (bounded by ``JOBS_DEFER_LIMIT_SECONDS`` per run); any other exception is transient and
retried with backoff.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from shared.config import Settings, StorageName
from shared.domain.contract import JobContract, JobStatus, format_utc, utc_now
from shared.domain.errors import ErrorCode, JobCancelled, PermanentJobError, RetryLater
from shared.domain.record import JobRecord
from shared.observability.logs import JobLogger
from shared.store.tenant_data import MAX_SUBJECT_BYTES, RowChanged, TenantFiles, TenantRows

__all__ = [
    "ErrorCode",
    "JobCancelled",
    "JobContext",
    "JobRegistry",
    "JobType",
    "Payload",
    "PermanentJobError",
    "ResultSummary",
    "RetryLater",
    "RowChanged",
    "StorageName",
    "SubjectBlob",
    "TenantFiles",
    "TenantRows",
    "format_utc",
    "utc_now",
]

P = TypeVar("P", bound="Payload")
T = TypeVar("T")
ResultSummary = Mapping[str, Any]
ONCE_RESULT_LIMIT = 32 * 1024


class Payload(BaseModel):
    """Base for payload models: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)  # only the camelCase names


@dataclass(frozen=True)
class SubjectBlob:
    """Where a job type reads its subject: ``<container>/<tenantId>/<subjectId><suffix>``. Its ``kind``
    names it for ``POST /api/uploads``, which hands out a write-only URL for a new subject of that kind."""

    kind: str
    container: StorageName
    suffix: str = ""
    content_type: str = "application/octet-stream"
    max_bytes: int = MAX_SUBJECT_BYTES

    def name(self, subject_id: uuid.UUID) -> str:
        return f"{subject_id}{self.suffix}"


@dataclass(frozen=True)
class JobType(Generic[P]):
    name: str
    payload_model: type[P]
    idempotency_key: Callable[[uuid.UUID, P], str]
    max_attempts: int
    handler: Callable[[JobContext[P]], Awaitable[ResultSummary]]
    containers: tuple[StorageName, ...] = ()  # blob containers it reads or writes (created at startup)
    tables: tuple[StorageName, ...] = ()  # tables it reads or writes (created at startup)
    # How long one attempt usually takes, in seconds of wall time (storage calls included). It paces
    # the clients: the Retry-After of this type's Queued and Running jobs (shared/domain/pacing.py).
    typical_seconds: float = 1.0
    # Where a Completed job's full output is: a JSON blob (container, name under the tenant), served by
    # GET /api/jobs/{jobId}/result. None: the result summary on the status is the whole output.
    output: Callable[[uuid.UUID, P], tuple[StorageName, str]] | None = None
    subject: SubjectBlob | None = None  # the blob it reads, when its subject is one (uploads)

    def __post_init__(self) -> None:
        if not 0 < self.typical_seconds <= 24 * 3600:
            raise ValueError(f"job type {self.name!r}: typical_seconds must be in (0, 86400]")

    def key_for(self, subject_id: uuid.UUID, payload: P) -> str:
        return self.idempotency_key(subject_id, payload)

    def parse_payload(self, raw: Mapping[str, Any]) -> P:
        return self.payload_model.model_validate(raw)

    def output_of(self, subject_id: uuid.UUID, raw_payload: Mapping[str, Any]) -> tuple[StorageName, str] | None:
        """The output blob of a job of this type (see ``output``), or None."""
        return None if self.output is None else self.output(subject_id, self.parse_payload(raw_payload))


class JobRegistry:
    """Job types by name."""

    def __init__(self, job_types: Iterable[JobType[Any]]):
        self._types: dict[str, JobType[Any]] = {}
        for job_type in job_types:
            if job_type.name in self._types:
                raise ValueError(f"job type {job_type.name!r} is registered twice")
            self._types[job_type.name] = job_type

    def get(self, name: str) -> JobType[Any] | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)

    def storage_names(self) -> list[StorageName]:
        """Every container and table the job types declare, each once."""
        found = {n.setting: n for t in self._types.values() for n in (*t.containers, *t.tables)}
        return list(found.values())

    def containers(self) -> list[StorageName]:
        return list({n.setting: n for t in self._types.values() for n in t.containers}.values())

    def upload_kinds(self) -> dict[str, SubjectBlob]:
        """The subject kinds callers may upload, by kind (job types that share a kind share its blob)."""
        kinds: dict[str, SubjectBlob] = {}
        for job_type in self._types.values():
            blob = job_type.subject
            if blob is None:
                continue
            if kinds.setdefault(blob.kind, blob) != blob:
                raise ValueError(f"subject kind {blob.kind!r} is declared two ways")
        return kinds

    def tables(self) -> list[StorageName]:
        return list({n.setting: n for t in self._types.values() for n in t.tables}.values())

    def __iter__(self) -> Iterator[JobType[Any]]:
        return iter(self._types.values())


class AttemptLease(Protocol):
    """What a handler's context needs of the running attempt's lease (shared/engine/lease.py)."""

    @property
    def record(self) -> JobRecord: ...

    @property
    def cancel_requested(self) -> bool: ...

    async def renew(self, percent: int | None = None, message: str | None = None) -> None: ...

    async def refresh(self) -> JobRecord: ...


class StepMarkers(Protocol):
    """Where ``once()`` records its steps (the job's partition of the status table)."""

    async def get_marker(self, job_id: uuid.UUID, step_key: str) -> str | None: ...

    async def put_marker(self, job_id: uuid.UUID, step_key: str, result_json: str) -> None: ...


class JobReader(Protocol):
    """Reading other jobs' status (the status store), for handlers that coordinate with them."""

    async def get(self, job_id: uuid.UUID) -> JobRecord | None: ...


@dataclass
class JobContext(Generic[P]):
    """What a handler gets: its job, tenant-scoped data, progress, cancellation and ``once``."""

    contract: JobContract
    payload: P
    logger: JobLogger
    files: TenantFiles
    settings: Settings
    _rows: Callable[[StorageName], TenantRows]
    _lease: AttemptLease
    _markers: StepMarkers
    _jobs: JobReader

    @property
    def attempt(self) -> int:
        return self._lease.record.attempt

    @property
    def lease_owner(self) -> str:
        """Who runs this attempt: another attempt of the same job (a takeover) has another owner."""
        return self._lease.record.lease_owner or ""

    async def live_lease_of(self, job_id: uuid.UUID, owner: str) -> datetime | None:
        """When the lease of job ``job_id`` (of this tenant) under ``owner`` ends, if it is still live:
        None once that attempt is over (finished, taken over, crashed and expired, or no such job)."""
        record = await self._jobs.get(job_id)
        if (record is None or record.tenant_id != self.contract.tenant_id or record.status is not JobStatus.RUNNING
                or record.lease_owner != owner or record.lease_expires_at is None):
            return None
        return record.lease_expires_at if record.lease_expires_at > utc_now() else None

    def container(self, name: StorageName) -> str:
        """The configured name of one of the job type's declared containers."""
        return self.settings.name_of(name)

    def rows(self, table: StorageName) -> TenantRows:
        """The tenant's rows in one of the job type's declared tables."""
        return self._rows(table)

    async def report_progress(self, percent: int, message: str | None = None) -> None:
        """Record progress (0-100) on the status entity; this also renews the lease.

        It is also a cancellation point: once a cancel was requested (seen when the write finds
        the entity changed), it raises JobCancelled and the job ends Cancelled.
        """
        await self._lease.renew(percent, message)
        if self._lease.cancel_requested:
            raise JobCancelled(str(self.contract.job_id))

    async def cancellation_requested(self) -> bool:
        """True once someone asked to cancel this job (re-reads the status entity)."""
        record = await self._lease.refresh()
        return record.cancel_requested

    async def raise_if_cancelled(self) -> None:
        """End the job Cancelled here if a cancel was requested; call it between steps."""
        if await self.cancellation_requested():
            raise JobCancelled(str(self.contract.job_id))

    async def once(self, step_key: str, step: Callable[[], Awaitable[T]]) -> T | Any:
        """Run ``step`` at most once per job and step key; later calls return its recorded result.

        The result must be JSON-serialisable and small (it is stored in the status partition).
        A crash between the step and its record makes the next delivery run the step again,
        so the step should still be safe to repeat; ``once`` makes repeats rare, not impossible.
        """
        recorded = await self._markers.get_marker(self.contract.job_id, step_key)
        if recorded is not None:
            self.logger.info("step %s already done; reusing its result", step_key)
            return json.loads(recorded)
        result = await step()
        encoded = json.dumps(result, separators=(",", ":"))
        if len(encoded) > ONCE_RESULT_LIMIT:
            raise ValueError(f"once({step_key!r}) result is larger than 32 KiB; store a reference instead")
        await self._markers.put_marker(self.contract.job_id, step_key, encoded)
        return result
