"""A small function app that exercises every devhost feature; the tests drive it and read ``CALLS``.

Queue and timer names come from ``%Setting%`` expressions so each test can use its own queues.
Queue functions act on their JSON body: ``{"action": "ok" | "fail" | "sleep", "seconds": n,
"emit": [...]}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import defaultdict
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
CALLS: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)


def reset() -> None:
    CALLS.clear()


def _json(value: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value), status_code=status, mimetype="application/json")


@app.route(route="hello/{name:alpha}", methods=["GET"])
async def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"hello {req.route_params['name']}{req.params.get('suffix', '')}")


@app.function_name("job_status")
@app.route(route="jobs/{jobId:guid}/status", methods=["GET"])
async def job_status_function(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"jobId": req.route_params["jobId"], "url": req.url, "query": dict(req.params)})


@app.route(route="jobs/latest/status", methods=["GET"])
async def latest_status(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"latest": True})


@app.route(route="items/{id:int}", methods=["GET", "DELETE"])
async def items(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"id": int(req.route_params["id"]), "method": req.method})


@app.route(route="files/{*path}", methods=["GET"])
async def files(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"path": req.route_params.get("path")})


@app.route(route="opt/{value?}", methods=["GET"])
async def optional(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"value": req.route_params.get("value")})


@app.route(route="boom")
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internal detail")


@app.route(route="bad-return", methods=["GET"])
async def bad_return(req: func.HttpRequest) -> Any:
    return {"not": "a response"}


@app.route(route="sync", methods=["GET"])
def sync_function(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """A plain def: must run in a worker thread, not on the event loop."""
    return _json({"thread": threading.current_thread().name, "function": context.function_name})


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("seconds", "3")))
    return func.HttpResponse("done")


@app.route(route="slow-sync", methods=["GET"])
def slow_sync(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params.get("seconds", "3")))
    return func.HttpResponse("done")


@app.route(route="settings", methods=["GET"])
async def settings(req: func.HttpRequest) -> func.HttpResponse:
    return _json({name: os.environ.get(name) for name in req.params.get("names", "").split(",")})


@app.route(route="echo", methods=["POST"])
@app.queue_output(arg_name="out", queue_name="%SAMPLE_QUEUE%-out", connection="AzureWebJobsStorage")
async def echo(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode("utf-8"))
    return func.HttpResponse(
        req.get_body(), status_code=201, headers={"X-Echo": "yes"}, mimetype="application/json", charset="utf-8"
    )


def _record(name: str, msg: func.QueueMessage) -> dict[str, Any]:
    body = json.loads(msg.get_body().decode("utf-8"))
    call = {"id": msg.id, "dequeue_count": msg.dequeue_count, "body": body, "pop_receipt": msg.pop_receipt,
            "type": type(msg).__name__, "insertion_time": msg.insertion_time, "done": False,
            "started": time.monotonic(), "finished": None}
    CALLS[name].append(call)
    return call


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="%SAMPLE_QUEUE%-out", connection="AzureWebJobsStorage")
async def work(msg: func.QueueMessage, out: func.Out[list[str]]) -> None:
    call = _record("work", msg)
    body = call["body"]
    if body.get("action") == "sleep":
        await asyncio.sleep(float(body.get("seconds", 1)))
    if body.get("action") == "fail":
        raise RuntimeError("work failed on purpose")
    if "emit" in body:
        out.set(body["emit"])
    call["done"], call["finished"] = True, time.monotonic()


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%-poison", connection="AzureWebJobsStorage")
def work_poison(msg: func.QueueMessage) -> None:
    """Sync, so queue functions in threads are covered; fails when the body asks for it."""
    call = _record("work_poison", msg)
    if call["body"].get("poison_action") == "fail":
        raise RuntimeError("poison handler failed on purpose")
    call["done"] = True


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%", run_on_startup=False)
async def tick(timer: func.TimerRequest) -> None:
    CALLS["tick"].append({"past_due": timer.past_due, "type": type(timer).__name__, "at": time.time()})


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
async def startup_tick(timer: func.TimerRequest) -> None:
    CALLS["startup_tick"].append({"past_due": timer.past_due})
