"""POST /api/uploads: a new subject's write-only, single-blob URL under the caller's tenant."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from jobs.storage_names import DOCUMENTS, MAIL
from tests.support import OTHER_TENANT, TENANT, Api, run_until_settled


async def _put(url: str, data: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.put(url, data=data, headers=headers) as response:
        return response.status


async def _get(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


async def test_an_uploaded_document_is_where_the_jobs_read_it(api: Api) -> None:
    ticket = await api.call("POST", "/api/uploads", {"kind": "document"})
    assert ticket.status == 201 and ticket.headers["cache-control"] == "no-store", ticket.body
    body = ticket.body
    assert body["method"] == "PUT" and body["maxBytes"] == 16 * 1024 * 1024
    assert await _put(body["uploadUrl"], b"alpha beta beta", body["headers"]) == 201
    blob = api.runtime.clients.container(api.runtime.settings.name_of(DOCUMENTS)).get_blob_client(
        f"{TENANT}/{body['subjectId']}")
    assert await (await blob.download_blob()).readall() == b"alpha beta beta"
    job = await api.call("POST", "/api/jobs", {"jobType": "doc-index", "subjectId": body["subjectId"],
                                               "payload": {"rowVersion": 1, "action": "index"}})
    done = await run_until_settled(api.runtime, uuid.UUID(job.body["jobId"]))
    assert done.status.value == "Completed" and done.result["terms"] == 2


async def test_the_url_writes_one_blob_and_reads_nothing(api: Api) -> None:
    body = (await api.call("POST", "/api/uploads", {"kind": "mail"})).body
    url = body["uploadUrl"]
    parts = urlsplit(url)
    assert parts.path.endswith(f"/{api.runtime.settings.name_of(MAIL)}/{TENANT}/{body['subjectId']}.eml")
    assert await _put(url, b"Message-ID: <a@b>\r\n\r\nhi", body["headers"]) == 201
    assert await _get(url) == 403  # write-only: the holder cannot read it back
    elsewhere = urlunsplit(parts._replace(path=parts.path.replace(TENANT, OTHER_TENANT)))
    assert await _put(elsewhere, b"x", body["headers"]) == 403  # the signature covers this one name
    other_name = urlunsplit(parts._replace(path=parts.path.replace(body["subjectId"], str(uuid.uuid4()))))
    assert await _put(other_name, b"x", body["headers"]) == 403


async def test_each_ticket_is_a_new_subject_of_the_callers_tenant(api: Api) -> None:
    first = (await api.call("POST", "/api/uploads", {"kind": "document"})).body
    other = (await api.call("POST", "/api/uploads", {"kind": "document"}, token=api.token(tenant=OTHER_TENANT))).body
    assert first["subjectId"] != other["subjectId"]
    assert f"/{OTHER_TENANT}/" in other["uploadUrl"] and f"/{TENANT}/" not in other["uploadUrl"]


async def test_uploads_need_submit_and_a_known_kind(api: Api) -> None:
    unknown = await api.call("POST", "/api/uploads", {"kind": "video"})
    assert (unknown.status, unknown.code) == (400, "REQUEST_INVALID")
    assert "document, mail" in unknown.body["errors"][0]["message"]
    reader = await api.call("POST", "/api/uploads", {"kind": "document"}, token=api.token(scopes=("Jobs.Read",)))
    assert (reader.status, reader.code) == (403, "AUTH_PERMISSION_MISSING")
    anonymous = await api.call("POST", "/api/uploads", {"kind": "document"}, token=None)
    assert anonymous.status == 401
