"""jobpoll: the REST API and the Lambda handlers of the poll loop. Wiring only."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from chalice import AuthResponse, Chalice, IAMAuthorizer, Response
from chalice.app import AuthRequest, SQSEvent

from chalicelib import auth, jobs_api, openapi, problems, reconciler, service, worker
from chalicelib.bootstrap import Runtime, get_runtime
from chalicelib.clock import to_iso
from chalicelib.errors import JobAlreadyFinished, JobPollError, LeaseHeld, NotAuthenticated
from chalicelib.gateway import base_url, caller_identity
from chalicelib.job import Job, JobStatus
from chalicelib.logs import json_lines, log_event
from chalicelib.providers import registry
from chalicelib.settings import Settings
from chalicelib.views import job_url, job_view, result_url, share_url

app = Chalice(app_name="jobpoll", configure_logs=False)
json_lines(app.log)
try:
    registry.load()  # a provider that is broken fails here, when `chalice package` imports the app
except registry.ProviderRegistryError as exc:
    raise SystemExit(f"jobpoll: {exc}") from None
# Read once at import: `chalice package` takes the queues' names from the decorators below.
_settings = Settings.from_env()
JSON = "application/json"


def bearer_token_authorizer(auth_request: AuthRequest) -> AuthResponse:
    """Auth modes jwt and cognito: the bearer token names the caller (API Gateway runs this before each
    request, and so does `chalice local`). A refused token raises `Unauthorized`: a 401."""
    runtime = _runtime()
    try:
        caller = runtime.verifier.verify(auth.bearer_token(auth_request.token))
    except NotAuthenticated as exc:
        log_event(app.log, "token_refused", logging.INFO, reason=str(exc))
        raise auth.Unauthorized() from None
    return AuthResponse(routes=["*"], principal_id=caller.owner, context=caller.context())


# Chosen when the app is packaged (JOBPOLL_AUTH): API Gateway verifies SigV4 signatures (iam) or runs the
# authorizer above (jwt, cognito), registered only then, so an iam stack has no authorizer function. The
# Lambda's handler names the module attribute: it is the registered authorizer.
authorizer: Any = IAMAuthorizer()
if _settings.auth != auth.AUTH_IAM:
    authorizer = bearer_token_authorizer = app.authorizer(ttl_seconds=0)(bearer_token_authorizer)  # type: ignore[assignment]


def _runtime() -> Runtime:
    runtime = get_runtime()
    app.log.setLevel(runtime.settings.log_level)
    return runtime


def _seconds_left(context: Any) -> float:
    return float(context.get_remaining_time_in_millis()) / 1000


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
        metrics=runtime.metrics,
    )
    return state


@app.lambda_function(name="GetJobStatus")
def get_job_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    state = service.poll_job(
        event,
        store=runtime.store,
        providers=runtime.providers,
        clock=runtime.clock,
        on_finished=runtime.job_finished,
        metrics=runtime.metrics,
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
        on_finished=runtime.job_finished,
    )
    log_event(app.log, "failure_recorded", logging.WARNING, **outcome)
    return outcome


@app.lambda_function(name="AwaitNotification")
def await_notification(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    outcome = service.await_notification(event, store=runtime.store, clock=runtime.clock)
    log_event(app.log, "job_awaits_notification", job_id=outcome["job_id"])
    return outcome


@app.lambda_function(name="NotifyJob")
def notify_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A provider's notification, or its service's state-change event (EventBridge rules in the template)."""
    runtime = _runtime()
    outcome = service.take_notification(
        event,
        store=runtime.store,
        providers=runtime.providers,
        sfn=runtime.sfn,
        clock=runtime.clock,
        on_finished=runtime.job_finished,
    )
    log_event(app.log, "job_notified", **outcome)
    return outcome


@app.lambda_function(name="Reconcile")
def reconcile(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled (infra/template.json): resume unfinished jobs whose execution or worker was lost."""
    runtime = _runtime()
    outcome = reconciler.reconcile(
        store=runtime.store,
        providers=runtime.providers,
        sfn=runtime.sfn,
        sqs=runtime.sqs,
        clock=runtime.clock,
        settings=runtime.settings,
        on_finished=runtime.job_finished,
        metrics=runtime.metrics,
    )
    level = logging.WARNING if outcome["errors"] else logging.INFO
    log_event(app.log, "reconciled", level, **{k: v for k, v in outcome.items() if k != "resumed"})
    return outcome


@app.on_sqs_message(
    queue=_settings.work_queue_name,
    batch_size=_settings.worker_batch_size,
    name="RunQueuedJob",
)
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
                on_finished=runtime.job_finished,
                time_left=functools.partial(_seconds_left, event.context),
                metrics=runtime.metrics,
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
        outcome = worker.dead_lettered(
            job_id, receive_count, store=runtime.store, clock=runtime.clock, on_finished=runtime.job_finished
        )
        log_event(app.log, "job_dead_lettered", logging.WARNING, job_id=job_id, outcome=outcome)


# ---- The REST API -------------------------------------------------------------------------------------


def _request() -> Any:
    request = app.current_request
    assert request is not None
    return request


def _caller(runtime: Runtime, scope: str | None = None) -> auth.Caller:
    """The caller, if it holds `scope` (MissingScope otherwise; None: any caller) and is within its
    request rate."""
    caller = caller_identity(_request().context, runtime.settings)
    if scope is not None:
        caller.require(scope)
    runtime.limits.count_request(caller.owner)
    return caller


def _base() -> str:
    request = _request()
    return base_url(request.context, request.headers, request.to_original_event().get("path"))


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body), status_code=status, headers={**(headers or {}), "Content-Type": JSON}
    )


def _job_response(runtime: Runtime, job: Job, status: int, headers: dict[str, str] | None = None) -> Response:
    now = runtime.clock.now()
    base = _base()
    view = job_view(job, now, base)
    if not job.status.is_terminal:
        headers = {
            **(headers or {}),
            "Retry-After": str(jobs_api.retry_after(job, runtime.clock, runtime.providers, runtime.settings)),
        }
    return _json(view, status, headers)


def _problems(view: Callable[..., Response]) -> Callable[..., Response]:
    """Domain errors raised by a route become problem responses (mapped in chalicelib/problems.py)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except JobAlreadyFinished as exc:
            runtime = get_runtime()
            extra = {"job": job_view(exc.job, runtime.clock.now(), _base())} if exc.job is not None else {}
            return problems.from_exception(exc, extra)
        except JobPollError as exc:
            return problems.from_exception(exc)

    return wrapper


@app.middleware("http")
def problem_details(request: Any, get_response: Callable[[Any], Response]) -> Response:
    """Every error response is problem+json, whoever made it (a route, Chalice, an unexpected exception)."""
    try:
        response = get_response(request)
    except Exception:
        app.log.exception("unhandled error")
        response = problems.problem_response(500, detail="An internal error occurred.")
    if response.status_code == 405:
        # Chalice's own 405 (a method no route is registered for: TRACE, CONNECT, ...) names every
        # registered method in Allow, the catch-alls' too: answer as for any method the API does not serve.
        response = _unserved(request.method, request.path, request.context.get("path", ""))
    response = problems.as_problem(response)
    log_event(
        app.log,
        "api_request",
        method=getattr(request, "method", None),
        route=getattr(request, "path", None),
        job_id=(getattr(request, "uri_params", None) or {}).get("job_id"),
        status=response.status_code,
    )
    return response


@app.route("/jobs", methods=["POST"], authorizer=authorizer, content_types=[JSON])
@_problems
def create_job() -> Response:
    runtime = _runtime()
    request = _request()
    owner = _caller(runtime, auth.SCOPE_SUBMIT).owner
    runtime.limits.check_jobs_in_flight(owner)
    submitted = jobs_api.submit_job(
        jobs_api.parse_body(request.raw_body, runtime.settings),
        owner=owner,
        idempotency_key=request.headers.get("idempotency-key"),
        store=runtime.store,
        providers=runtime.providers,
        sfn=runtime.sfn,
        clock=runtime.clock,
        settings=runtime.settings,
        resolve=runtime.resolve,
        sqs=runtime.sqs,
        on_finished=runtime.job_finished,
    )
    job = submitted.job
    log_event(app.log, "job_submitted", job_id=job.job_id, owner=owner, created=submitted.created)
    headers = {"Location": job_url(_base(), job.job_id)}
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    return _job_response(runtime, job, 202, headers)


@app.route("/jobs", methods=["GET"], authorizer=authorizer)
@_problems
def list_jobs() -> Response:
    runtime = _runtime()
    query = _request().query_params or {}
    listing = jobs_api.list_jobs(
        owner=_caller(runtime, auth.SCOPE_READ).owner,
        status=jobs_api.parse_status(query.get("status")),
        limit=jobs_api.parse_limit(query.get("limit")),
        token=query.get("next"),
        store=runtime.store,
        now=runtime.clock.now(),
    )
    now, base = runtime.clock.now(), _base()
    body = {"jobs": [job_view(job, now, base) for job in listing.jobs], "next": listing.next_token}
    headers = {}
    if listing.next_token:
        kept = {name: query.get(name) for name in ("status", "limit") if query.get(name)}
        more = urlencode({**kept, "next": listing.next_token})
        headers["Link"] = f'<{base}/jobs?{more}>; rel="next"'
    return _json(body, 200, headers)


@app.route("/jobs/{job_id}", methods=["GET"], authorizer=authorizer)
@_problems
def get_job(job_id: str) -> Response:
    runtime = _runtime()
    caller = _caller(runtime, auth.SCOPE_READ)
    job = jobs_api.visible_job(
        job_id,
        owner=caller.owner,
        store=runtime.store,
        clock=runtime.clock,
        operator=caller.operator,
        results=runtime.results,
    )
    if job.status.is_terminal:
        if job.status is JobStatus.COMPLETE:
            return _job_response(runtime, job, 303, {"Location": result_url(_base(), job.job_id)})
        return _job_response(runtime, job, 200)
    return _job_response(runtime, job, 202, {"Location": job_url(_base(), job.job_id)})


def _result_response(answer: jobs_api.ResultAnswer) -> Response:
    if answer.url is not None:  # a large result: GET it from the results bucket, presigned, short-lived
        return Response(
            body="", status_code=303, headers={"Location": answer.url, "Cache-Control": "no-store"}
        )
    return _json(answer.value, 200)


@app.route("/jobs/{job_id}/result", methods=["GET"], authorizer=authorizer)
@_problems
def get_job_result(job_id: str) -> Response:
    runtime = _runtime()
    caller = _caller(runtime, auth.SCOPE_READ)
    answer = jobs_api.job_result(
        job_id,
        owner=caller.owner,
        operator=caller.operator,
        store=runtime.store,
        clock=runtime.clock,
        settings=runtime.settings,
        results=runtime.results,
    )
    return _result_response(answer)


@app.route("/jobs/{job_id}/shares", methods=["POST"], authorizer=authorizer, content_types=[JSON])
@_problems
def share_job_result(job_id: str) -> Response:
    runtime = _runtime()
    raw = _request().raw_body
    share = jobs_api.share_result(
        job_id,
        jobs_api.parse_body(raw, runtime.settings) if raw and raw.strip() else None,
        owner=_caller(runtime, auth.SCOPE_READ).owner,
        store=runtime.store,
        clock=runtime.clock,
        settings=runtime.settings,
        share_key=runtime.share_key,
    )
    log_event(app.log, "result_shared", job_id=job_id, share_id=share.share_id)
    url = share_url(_base(), share.token(runtime.share_key))
    body = {"id": share.share_id, "job_id": share.job_id, "url": url, "expires_at": to_iso(share.expires_at)}
    return _json(body, 201, {"Location": url})


@app.route("/jobs/{job_id}/shares/{share_id}", methods=["DELETE"], authorizer=authorizer)
@_problems
def revoke_job_share(job_id: str, share_id: str) -> Response:
    runtime = _runtime()
    owner = _caller(runtime, auth.SCOPE_READ).owner
    jobs_api.revoke_share(job_id, share_id, owner=owner, store=runtime.store, clock=runtime.clock)
    log_event(app.log, "share_revoked", job_id=job_id, share_id=share_id)
    return Response(body="", status_code=204, headers={})


# No IAM here: the signed link is the credential (signature, expiry and the job's revocations are checked).
@app.route("/shared/{token}", methods=["GET"])
@_problems
def get_shared_result(token: str) -> Response:
    runtime = _runtime()
    answer = jobs_api.shared_result(
        token,
        store=runtime.store,
        clock=runtime.clock,
        settings=runtime.settings,
        share_key=runtime.share_key,
        results=runtime.results,
    )
    return _result_response(answer)


@app.route("/jobs/{job_id}", methods=["DELETE"], authorizer=authorizer)
@_problems
def delete_job(job_id: str) -> Response:
    runtime = _runtime()
    caller = _caller(runtime, auth.SCOPE_CANCEL)
    deleted = jobs_api.cancel_or_delete_result(
        job_id,
        owner=caller.owner,
        operator=caller.operator,
        store=runtime.store,
        providers=runtime.providers,
        sfn=runtime.sfn,
        clock=runtime.clock,
        settings=runtime.settings,
        on_finished=runtime.job_finished,
        results=runtime.results,
    )
    log_event(app.log, "job_deleted", job_id=job_id, canceled=deleted.canceled, by=caller.owner)
    if deleted.canceled:
        return _job_response(runtime, deleted.job, 200)
    return Response(body="", status_code=204, headers={})


@app.route("/providers", methods=["GET"], authorizer=authorizer)
@_problems
def list_providers() -> Response:
    runtime = _runtime()
    _caller(runtime)
    return _json({"providers": registry.describe(runtime.providers)}, 200)


@app.route("/providers/{name}", methods=["GET"], authorizer=authorizer)
@_problems
def get_provider(name: str) -> Response:
    runtime = _runtime()
    _caller(runtime)
    return _json(registry.describe(runtime.providers, name)[0], 200)


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    runtime = _runtime()
    return _json(openapi.document(runtime.providers, runtime.settings), 200)


# Wrong methods (any method a route does not serve, OPTIONS included) and unknown paths answer problem
# documents from the app itself, so that API Gateway (which answers both with its own 403 "Missing
# Authentication Token") and `chalice local` (which answers an unknown path itself, and matches no greedy
# `{proxy+}`) behave alike. Deeper unknown paths fall to API Gateway's gateway responses
# (infra/template.json), also problem documents. Methods API Gateway cannot route (TRACE, CONNECT) reach
# the app only locally (jobpoll.local_api), where the middleware answers them as any unserved method.
_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_ALLOWED = {path: ", ".join(sorted(entries)) for path, entries in app.routes.items()}


def _unserved(method: str, route: str, path: str) -> Response:
    """A method the API does not serve: 405 with Allow on a route, 404 anywhere else."""
    allowed = _ALLOWED.get(route)
    if allowed is None:
        return problems.problem_response(404, detail=f"no route {path!r}")
    detail = f"{method} is not allowed here; allowed: {allowed}"
    return problems.problem_response(405, detail=detail, headers={"Allow": allowed})


def _method_not_allowed(**_: str) -> Response:
    request = _request()
    return _unserved(request.method, request.path, request.context.get("path", ""))


for _index, (_path, _allowed) in enumerate(sorted(_ALLOWED.items())):
    _missing = [method for method in _ANY if method not in _allowed.split(", ")]
    app.route(_path, methods=_missing, content_types=["*/*"], name=f"method_not_allowed_{_index}")(
        _method_not_allowed
    )
for _depth in range(1, 7):
    _path = "".join(f"/{{p{i}}}" for i in range(_depth))
    app.route(_path, methods=_ANY, content_types=["*/*"], name=f"no_such_route_{_depth}")(_method_not_allowed)


@app.lambda_function(name="DeliverCallback")
def deliver_callback(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """POST a finished job to its callback URL (invoked asynchronously by whatever finished the job)."""
    runtime = _runtime()
    job = runtime.notifier.deliver_stored(str(event.get("job_id", "")))  # logs the outcome (metrics)
    record = job.callback
    return {"job_id": job.job_id, "delivered": bool(record and record.delivered_at)}
