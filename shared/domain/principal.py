"""Who is calling: a tenant's principal and the permissions its token grants."""

from __future__ import annotations

from dataclasses import dataclass

# The permissions a token can carry (scp or roles); what each allows is shared/domain/access.py's business.
SUBMIT, READ, ADMIN = "Jobs.Submit", "Jobs.Read", "Jobs.Admin"
PERMISSIONS = (SUBMIT, READ, ADMIN)


@dataclass(frozen=True)
class Principal:
    """Tenant + object id, and the permissions the token grants."""

    tenant_id: str
    object_id: str
    permissions: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.tenant_id}|{self.object_id}"

    def has(self, permission: str) -> bool:
        return permission in self.permissions
