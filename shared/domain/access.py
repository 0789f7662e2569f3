"""Authorization, in one place (ADR-008).

- Permissions come from the token as delegated scopes (``scp``) or app roles (``roles``):
  ``Jobs.Submit`` to submit, cancel and re-drive; ``Jobs.Read`` to read and list;
  ``Jobs.Admin`` for all of it, on every job of its own tenant. A token with none of the
  permissions an operation needs gets 403.
- A job is visible to its tenant's principals (``tid`` + ``oid``) that submitted it, and to
  ``Jobs.Admin`` of that tenant. Everyone else gets JOB_NOT_FOUND, exactly as for a job that
  does not exist, on every route, so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from enum import Enum

from shared.domain.errors import ErrorCode, JobsError
from shared.domain.principal import ADMIN, READ, SUBMIT, Principal
from shared.domain.record import JobRecord


class Action(Enum):
    SUBMIT = "submit"
    READ = "read"
    LIST = "list"
    CANCEL = "cancel"
    RETRY = "retry"

    @property
    def permission(self) -> str:
        return _PERMISSIONS[self]


_PERMISSIONS = {Action.SUBMIT: SUBMIT, Action.READ: READ, Action.LIST: READ, Action.CANCEL: SUBMIT,
                Action.RETRY: SUBMIT}


def require(principal: Principal, action: Action) -> None:
    """403 unless the token grants the action's permission (or Jobs.Admin)."""
    if not (principal.has(action.permission) or principal.has(ADMIN)):
        raise JobsError(ErrorCode.AUTH_PERMISSION_MISSING, f"this operation needs {action.permission}")


def can_see(principal: Principal, record: JobRecord) -> bool:
    if str(record.tenant_id) != principal.tenant_id:
        return False
    return principal.key in record.submitters or principal.has(ADMIN)


def visible_job(principal: Principal, record: JobRecord | None) -> JobRecord:
    """The job, if this principal may see it; JOB_NOT_FOUND otherwise (same as absent)."""
    if record is None or not can_see(principal, record):
        raise JobsError(ErrorCode.JOB_NOT_FOUND)
    return record


def job_id_from_route(value: str | None) -> uuid.UUID:
    """A malformed id is a job that does not exist, not a validation error: same 404."""
    try:
        return uuid.UUID(value or "")
    except ValueError as exc:
        raise JobsError(ErrorCode.JOB_NOT_FOUND) from exc


def lists_tenant(principal: Principal) -> bool:
    """Admins list their whole tenant; everyone else lists the jobs they submitted."""
    return principal.has(ADMIN)
