"""Write-only, single-blob, short-lived upload URLs (shared access signatures).

In Azure the app signs them as itself: a *user delegation* SAS, signed with a key the app's
identity gets from the Blob service (``Get User Delegation Key``; the key is cached until shortly
before it expires, so most URLs cost no storage call). With a connection string that carries an
account key (Azurite locally; Azurite does not issue user delegation keys) the SAS is signed with
that key. Either way the URL grants create + write on one blob name until it expires, nothing else:
no read, no list, no other name.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from urllib.parse import quote

from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient

DELEGATION_KEY_LIFETIME = timedelta(hours=1)
CLOCK_SKEW = timedelta(minutes=5)  # a SAS starts this much in the past: clocks differ


class UploadUrls:
    def __init__(self, blobs: BlobServiceClient):
        self._blobs = blobs
        self._key: UserDelegationKey | None = None
        self._key_expires: datetime | None = None
        self._lock = asyncio.Lock()

    async def write_url(self, container: str, blob_name: str, now: datetime, expires: datetime) -> str:
        """A URL that lets its holder create or overwrite this one blob until ``expires``."""
        permission = BlobSasPermissions(create=True, write=True)
        account = self._blobs.account_name
        if account is None:
            raise ValueError("the blob endpoint names no account")
        account_key = getattr(self._blobs.credential, "account_key", None)
        if account_key:
            sas = generate_blob_sas(account, container, blob_name, account_key=account_key, permission=permission,
                                    start=now - CLOCK_SKEW, expiry=expires, protocol=self._protocol())
        else:
            key = await self._delegation_key(now, expires)
            sas = generate_blob_sas(account, container, blob_name, user_delegation_key=key, permission=permission,
                                    start=now - CLOCK_SKEW, expiry=expires, protocol=self._protocol())
        return f"{self._blobs.url.rstrip('/')}/{container}/{quote(blob_name)}?{sas}"

    def _protocol(self) -> str | None:
        return "https" if self._blobs.url.startswith("https://") else None

    async def _delegation_key(self, now: datetime, needed_until: datetime) -> UserDelegationKey:
        async with self._lock:
            if self._key is None or self._key_expires is None or self._key_expires < needed_until:
                expires = now + DELEGATION_KEY_LIFETIME
                self._key = await self._blobs.get_user_delegation_key(now - CLOCK_SKEW, expires)
                self._key_expires = expires
            return self._key
