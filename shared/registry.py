"""Job types: what each one declares, and the registry the runtime looks them up in.

A job type names its payload model (``extra="forbid"``), derives its idempotency key
deterministically from the subject and payload (never free-form from the caller), bounds its
attempts and supplies the handler.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from shared.context import JobContext

P = TypeVar("P", bound="Payload")
ResultSummary = Mapping[str, Any]


class Payload(BaseModel):
    """Base for payload models: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True)
class JobType(Generic[P]):
    name: str
    payload_model: type[P]
    idempotency_key: Callable[[uuid.UUID, P], str]
    max_attempts: int
    handler: Callable[[JobContext[P]], Awaitable[ResultSummary]]
    description: str = ""

    def key_for(self, subject_id: uuid.UUID, payload: P) -> str:
        return self.idempotency_key(subject_id, payload)

    def parse_payload(self, raw: Mapping[str, Any]) -> P:
        return self.payload_model.model_validate(raw)


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

    def __iter__(self) -> Iterator[JobType[Any]]:
        return iter(self._types.values())
