"""jobpoll: Lambda handlers for the poll loop (and, later, the REST API). Wiring only."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from chalice import Chalice
from chalice.app import SQSEvent

from chalicelib import service, worker
from chalicelib.bootstrap import Runtime, get_runtime
from chalicelib.errors import LeaseHeld
from chalicelib.logs import log_event
from chalicelib.settings import Settings

app = Chalice(app_name="jobpoll")
# Read once at import: `chalice package` takes the queues' names from the decorators below.
_settings = Settings.from_env()


def _runtime() -> Runtime:
    runtime = get_runtime()
    app.log.setLevel(runtime.settings.log_level)
    return runtime


def _execution(event: dict[str, Any]) -> tuple[str, str | None]:
    return str(event.get("execution_name", "")), event.get("execution_id")


@app.lambda_function(name="StartJob")
def start_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    execution_name, execution_id = _execution(event)
    state = service.start_job(
        event.get("request"),
        execution_name,
        store=runtime.store,
        providers=runtime.providers,
        clock=runtime.clock,
        settings=runtime.settings,
        execution_arn=execution_id,
    )
    log_event(app.log, "job_started", job_id=state["job_id"], status=state["status"])
    return state


@app.lambda_function(name="GetJobStatus")
def get_job_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    state = service.poll_job(event, store=runtime.store, providers=runtime.providers, clock=runtime.clock)
    log_event(
        app.log,
        "job_polled",
        job_id=state["job_id"],
        status=state["status"],
        try_count=state["try_count"],
        progress=state["progress"],
    )
    return state


@app.lambda_function(name="RecordJobFailure")
def record_job_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    execution_name, _ = _execution(event)
    outcome = service.record_failure(
        event.get("state") or {},
        execution_name,
        store=runtime.store,
        providers=runtime.providers,
        clock=runtime.clock,
    )
    log_event(app.log, "job_failed", logging.WARNING, **outcome)
    return outcome


@app.lambda_function(name="AwaitNotification")
def await_notification(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    outcome = service.await_notification(event, store=runtime.store, clock=runtime.clock)
    log_event(app.log, "job_awaits_notification", job_id=outcome["job_id"])
    return outcome


@app.lambda_function(name="NotifyJob")
def notify_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A provider's notification (e.g. from an EventBridge rule on the service's completion event)."""
    runtime = _runtime()
    job_id, result = service.parse_notification(event)
    outcome = service.notify_job(job_id, result, store=runtime.store, sfn=runtime.sfn, clock=runtime.clock)
    log_event(app.log, "job_notified", **outcome)
    return outcome


@app.on_sqs_message(queue=_settings.work_queue_name, batch_size=1, name="RunQueuedJob")
def run_queued_job(event: SQSEvent) -> dict[str, Any]:
    """Queue mode: run each delivered job; a job under another worker's live lease is retried later."""
    runtime = _runtime()
    retry_later = []
    for record in event:
        message = record.to_dict()
        job_id = worker.job_id_of(record.body)
        try:
            outcome = worker.run_job(
                job_id,
                worker_id=f"{message.get('messageId', '?')}:{uuid.uuid4().hex[:12]}",
                store=runtime.store,
                providers=runtime.providers,
                clock=runtime.clock,
                settings=runtime.settings,
            )
        except LeaseHeld as exc:
            retry_later.append({"itemIdentifier": message["messageId"]})
            outcome = f"lease-held: {exc}"
        log_event(app.log, "job_worked", job_id=job_id, outcome=outcome)
    return {"batchItemFailures": retry_later}


@app.on_sqs_message(queue=_settings.dead_letter_queue_name, batch_size=1, name="FailDeadLetteredJob")
def fail_dead_lettered_job(event: SQSEvent) -> None:
    """A job whose message was received too often: mark it FAILED with the reason."""
    runtime = _runtime()
    for record in event:
        message = record.to_dict()
        job_id = worker.job_id_of(record.body)
        receive_count = int(message.get("attributes", {}).get("ApproximateReceiveCount", 0))
        outcome = worker.dead_lettered(job_id, receive_count, store=runtime.store, clock=runtime.clock)
        log_event(app.log, "job_dead_lettered", logging.WARNING, job_id=job_id, outcome=outcome)
