"""The function app: every trigger of the background-jobs system, each delegating to shared/.

HTTP functions are anonymous at the Functions level on purpose: every route but health and the
OpenAPI document validates the caller's Entra ID bearer token in code (shared/api/tokens.py) and
authorizes through shared/domain/access.py. Each route accepts any method and dispatches in code, so a
wrong method gets the same problem+json 405 everywhere. There is no Durable Functions here.
"""

from __future__ import annotations

import azure.functions as func

from jobs import REGISTRY
from shared.api import routes as http_api
from shared.api.request import serve, serve_anonymous, serve_not_found
from shared.engine import poison, sweep, worker
from shared.engine.runtime import RuntimeProvider
from shared.observability.traces import configure_telemetry

configure_telemetry()  # Azure Monitor when APPLICATIONINSIGHTS_CONNECTION_STRING is set; otherwise nothing
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
runtime = RuntimeProvider(REGISTRY)  # settings checked now; storage clients once per process, never per invocation


@app.function_name("jobs")
@app.route(route="jobs")
async def jobs(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/jobs: submit a job -> 202. GET /api/jobs: the caller's jobs, newest first."""
    return await serve(req, runtime, POST=http_api.submit_job, GET=http_api.list_jobs_op)


@app.function_name("submit_jobs_batch")
@app.route(route="jobs/batch")
async def submit_jobs_batch(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/jobs/batch: up to 100 submissions, 207 with one answer per item."""
    return await serve(req, runtime, POST=http_api.submit_jobs_batch)


@app.function_name("create_upload")
@app.route(route="uploads")
async def create_upload(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/uploads: a new subjectId and a write-only URL for its blob (documents, e-mails)."""
    return await serve(req, runtime, POST=http_api.create_upload)


@app.function_name("enqueue_analysis")
@app.route(route="analysis/enqueue")
async def enqueue_analysis(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/analysis/enqueue {documentId, type} -> an ai-analyze job (the seed's endpoint)."""
    return await serve(req, runtime, POST=http_api.enqueue_analysis)


@app.function_name("job_status")
@app.route(route="jobs/{jobId}/status")
async def job_status(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/jobs/{jobId}/status[?history=true][?redirect=true]: for its submitters and tenant admins."""
    return await serve(req, runtime, GET=http_api.job_status)


@app.function_name("job_result")
@app.route(route="jobs/{jobId}/result")
async def job_result(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/jobs/{jobId}/result: a Completed job's output, for whoever may read its status."""
    return await serve(req, runtime, GET=http_api.job_result)


@app.function_name("cancel_job")
@app.route(route="jobs/{jobId}/cancel")
async def cancel_job(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/jobs/{jobId}/cancel: Queued -> Cancelled now; Running -> cancel requested."""
    return await serve(req, runtime, POST=http_api.cancel_job)


@app.function_name("retry_job")
@app.route(route="jobs/{jobId}/retry")
async def retry_job(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/jobs/{jobId}/retry: re-drive a Failed or Poisoned job as a new run."""
    return await serve(req, runtime, POST=http_api.retry_job)


@app.function_name("not_found")
@app.route(route="{*path}")
def not_found(req: func.HttpRequest) -> func.HttpResponse:
    """Any other path under /api: 404 problem+json like every other error (routes above take precedence)."""
    return serve_not_found(req)


@app.function_name("health")
@app.route(route="health")
def health(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/health: anonymous liveness; touches no storage, reveals nothing."""
    return serve_anonymous(req, GET=http_api.health)


@app.function_name("openapi")
@app.route(route="openapi.json")
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/openapi.json: the OpenAPI 3.1 document, generated from the API's models."""
    return serve_anonymous(req, GET=http_api.openapi)


@app.function_name("run_job")
@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
async def run_job(msg: func.QueueMessage) -> None:
    """The worker: claim, run the handler, record the outcome (at-least-once, idempotent)."""
    await worker.handle_job_message(await runtime(), msg.get_body().decode("utf-8", "replace"), msg.dequeue_count)


@app.function_name("poison_job")
@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%-poison", connection="AzureWebJobsStorage")
async def poison_job(msg: func.QueueMessage) -> None:
    """Messages that exhausted their deliveries or attempts -> Poisoned + outcome. Never throws."""
    body = msg.get_body().decode("utf-8", "replace")
    await poison.handle_poison_message(await runtime(), body, msg.insertion_time)


@app.function_name("maintenance")
@app.timer_trigger(arg_name="timer", schedule="%JOBS_MAINTENANCE_SCHEDULE%", run_on_startup=False)
async def maintenance_sweep(timer: func.TimerRequest) -> None:
    """Re-enqueue stranded jobs, take over expired leases, re-send outcomes, purge old jobs."""
    await sweep.sweep(await runtime())


async def on_host_shutdown() -> None:
    """devhost calls this when it stops: close this loop's storage clients (the Python worker has no
    shutdown hook yet; in Azure the process exits)."""
    await runtime.close()
