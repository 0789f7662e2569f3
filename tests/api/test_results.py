"""GET /api/jobs/{jobId}/result and ?redirect=true, through function_app's HTTP functions."""

from __future__ import annotations

import uuid

from jobs.storage_names import ANALYSIS, DOCUMENTS
from tests.engine.helpers import upload
from tests.support import BOB_OID, TENANT, Api, run_until_settled


async def _completed_analysis(api: Api) -> tuple[str, str]:
    document = str(uuid.uuid4())
    await upload(api.runtime, api.runtime.settings.name_of(DOCUMENTS), document, b"alpha beta beta gamma gamma gamma")
    res = await api.call("POST", "/api/analysis/enqueue", {"documentId": document, "type": "keywords"})
    assert res.status == 202, res.body
    job = str(res.body["jobId"])
    await run_until_settled(api.runtime, uuid.UUID(job))
    return job, document


async def test_a_completed_jobs_result_is_its_output_and_its_status_links_to_it(api: Api) -> None:
    job, document = await _completed_analysis(api)
    status = await api.call("GET", f"/api/jobs/{job}/status")
    assert status.body["status"] == "Completed" and status.body["resultUrl"] == f"/api/jobs/{job}/result"
    result = await api.call("GET", status.body["resultUrl"])
    assert result.status == 200 and result.headers["cache-control"] == "no-store"
    output = result.body["result"]  # the analysis JSON the handler wrote, not only the summary
    assert (result.body["jobId"], result.body["jobType"]) == (job, "ai-analyze")
    assert output["documentId"] == document and output["keywords"][0]["term"] == "gamma"
    redirect = await api.call("GET", f"/api/jobs/{job}/status?redirect=true")
    assert redirect.status == 303 and redirect.headers["location"] == f"/api/jobs/{job}/result"


async def test_a_job_without_an_output_blob_serves_its_summary(api: Api) -> None:
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                               "payload": {"tag": "summary"}})
    job = str(res.body["jobId"])
    await run_until_settled(api.runtime, uuid.UUID(job))
    result = await api.call("GET", f"/api/jobs/{job}/result")
    assert result.status == 200 and result.body["result"] == {"attempt": 1, "effects": 1}


async def test_no_result_before_completion_and_none_for_others(api: Api) -> None:
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                               "payload": {"tag": "queued"}})
    job = str(res.body["jobId"])
    early = await api.call("GET", f"/api/jobs/{job}/result")
    assert early.status == 409 and early.code == "JOB_NOT_COMPLETED"
    assert early.body["jobStatus"] == "Queued" and early.body["statusUrl"] == f"/api/jobs/{job}/status"
    waiting = await api.call("GET", f"/api/jobs/{job}/status?redirect=true")  # not Completed: the status, as always
    assert waiting.status == 200 and waiting.body["status"] == "Queued" and "resultUrl" not in waiting.body
    completed, _ = await _completed_analysis(api)
    other = await api.call("GET", f"/api/jobs/{completed}/result", token=api.token(oid=BOB_OID))
    assert other.status == 404 and other.code == "JOB_NOT_FOUND"  # exactly like status: invisible


async def test_a_result_whose_blob_is_gone_is_a_clear_404(api: Api) -> None:
    job, document = await _completed_analysis(api)
    container = api.runtime.clients.container(api.runtime.settings.name_of(ANALYSIS))
    await container.delete_blob(f"{TENANT}/{document}/keywords.json")
    gone = await api.call("GET", f"/api/jobs/{job}/result")
    assert gone.status == 404 and gone.code == "RESULT_NOT_FOUND"
