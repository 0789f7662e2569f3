"""The function app: every trigger of the background-jobs system, each delegating to shared/.

HTTP functions are anonymous at the Functions level on purpose: every route validates the
caller's Entra ID bearer token in code (shared/auth.py). There is no Durable Functions here.
"""

from __future__ import annotations

import azure.functions as func

from jobs import REGISTRY
from shared import http_api, maintenance, poison, worker
from shared.runtime import RuntimeProvider

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
runtime = RuntimeProvider(REGISTRY)  # storage clients: once per process, never per invocation


@app.function_name("submit_job")
@app.route(route="jobs", methods=["POST"])
async def submit_job(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/jobs {jobType, subjectId, payload} -> 202 {jobId, status, statusUrl}."""
    return await http_api.handle(req, runtime, http_api.submit_job)


@app.function_name("enqueue_analysis")
@app.route(route="analysis/enqueue", methods=["POST"])
async def enqueue_analysis(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/analysis/enqueue {documentId, type} -> an ai-analyze job."""
    return await http_api.handle(req, runtime, http_api.enqueue_analysis)


@app.function_name("job_status")
@app.route(route="jobs/{jobId}/status", methods=["GET"])
async def job_status(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/jobs/{jobId}/status -> the job's status, for its submitters and tenant admins."""
    return await http_api.handle(req, runtime, http_api.job_status)


@app.function_name("run_job")
@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
async def run_job(msg: func.QueueMessage) -> None:
    """The worker: claim, run the handler, record the outcome (at-least-once, idempotent)."""
    await worker.handle_job_message(await runtime(), msg.get_body().decode("utf-8", "replace"), msg.dequeue_count)


@app.function_name("poison_job")
@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%-poison", connection="AzureWebJobsStorage")
async def poison_job(msg: func.QueueMessage) -> None:
    """Messages that exhausted their deliveries or attempts -> Poisoned + outcome. Never throws."""
    await poison.handle_poison_message(await runtime(), msg.get_body().decode("utf-8", "replace"))


@app.function_name("maintenance")
@app.timer_trigger(arg_name="timer", schedule="%JOBS_MAINTENANCE_SCHEDULE%", run_on_startup=False)
async def maintenance_sweep(timer: func.TimerRequest) -> None:
    """Re-enqueue stranded jobs, take over expired leases, re-send outcomes, purge old jobs."""
    await maintenance.sweep(await runtime())
