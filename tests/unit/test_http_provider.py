"""The http provider against scripted services on 127.0.0.1, one per style, and its input checks."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.bootstrap import http_profiles_loader
from chalicelib.errors import (
    InvalidJobInput,
    ProviderError,
    ProviderRefused,
    ProviderUnavailable,
    UnsafeProviderUrl,
)
from chalicelib.providers.base import PollResult, WorkState
from chalicelib.providers.http import HttpProvider, Profile, parse_profiles, retry_after_seconds
from chalicelib.settings import Settings
from jobpoll.clocks import VirtualClock
from lro_server import Answer, LroServer, problem

TOKEN = "Bearer test-token-not-a-secret"
CAP = 64 * 1024
RESULT = {"answer": 42}


@dataclass(frozen=True)
class Script:
    """How one style's service answers: the submission, the monitor's answers, the cancel it expects."""

    style: str
    submit_path: str
    submitted: Answer
    monitor: str
    running: Answer
    done: tuple[tuple[str, str, Answer], ...]  # (method, path, answer): the monitor's last, and any result
    failed: Answer
    failure_code: str
    cancel: tuple[str, str]
    custom: dict[str, Any] | None = None
    progress: float | None = 0.4

    def job(self) -> dict[str, Any]:
        job: dict[str, Any] = {
            "profile": "svc",
            "style": self.style,
            # Relative to the profile's base_url, which ends in /v1.
            "request": {"method": "POST", "path": self.submit_path[3:], "body": {"audio": "s3://in/a.wav"}},
        }
        if self.custom is not None:
            job["custom"] = self.custom
        return job

    def with_running(self, server: LroServer, *last: Answer) -> None:
        server.on("POST", self.submit_path, self.submitted)
        server.on("GET", self.monitor, self.running, *last)

    def succeeding(self, server: LroServer) -> None:
        (_, _, last), *rest = self.done
        self.with_running(server, last)
        for method, path, answer in rest:
            server.on(method, path, answer)


FAILURE = {"code": "BadAudio", "message": "the audio is silent"}
SCRIPTS = [
    Script(
        style="azure",
        submit_path="/v1/analyze",
        submitted=Answer(202, None, {"Operation-Location": "/v1/operations/1"}),
        monitor="/v1/operations/1",
        running=Answer(200, {"status": "Running", "percentComplete": 40}),
        done=(("GET", "/v1/operations/1", Answer(200, {"status": "succeeded", "result": RESULT})),),
        failed=Answer(200, {"status": "Failed", "error": FAILURE}),
        failure_code="BadAudio",
        cancel=("DELETE", "/v1/operations/1"),
    ),
    Script(
        style="google",
        submit_path="/v1/speech:longrunningrecognize",
        submitted=Answer(200, {"name": "operations/7", "done": False}),
        monitor="/v1/operations/7",
        running=Answer(200, {"name": "operations/7", "done": False, "metadata": {"progressPercent": 40}}),
        done=(
            (
                "GET",
                "/v1/operations/7",
                Answer(200, {"name": "operations/7", "done": True, "response": RESULT}),
            ),
        ),
        failed=Answer(200, {"name": "operations/7", "done": True, "error": {"code": 3, "message": "silent"}}),
        failure_code="INVALID_ARGUMENT",
        cancel=("POST", "/v1/operations/7:cancel"),
    ),
    Script(
        style="jobpoll",
        submit_path="/v1/jobs",
        submitted=Answer(202, {"id": "j1", "status": "QUEUED"}, {"Location": "/v1/jobs/j1"}),
        monitor="/v1/jobs/j1",
        running=Answer(202, {"id": "j1", "status": "RUNNING", "progress": 0.4}),
        done=(
            ("GET", "/v1/jobs/j1", Answer(303, {"status": "COMPLETE"}, {"Location": "/v1/jobs/j1/result"})),
            ("GET", "/v1/jobs/j1/result", Answer(200, RESULT)),
        ),
        failed=Answer(200, {"id": "j1", "status": "FAILED", "error": FAILURE}),
        failure_code="BadAudio",
        cancel=("DELETE", "/v1/jobs/j1"),
    ),
    Script(
        style="status-code",
        submit_path="/v1/exports",
        submitted=Answer(202, None, {"Location": "/v1/exports/9"}),
        monitor="/v1/exports/9",
        running=Answer(202, {"state": "busy"}),
        done=(("GET", "/v1/exports/9", Answer(200, RESULT)),),
        failed=problem(422, "Unprocessable", "the export cannot be made"),
        failure_code="ProviderRefused",
        cancel=("DELETE", "/v1/exports/9"),
        progress=None,
    ),
    Script(
        style="custom",
        submit_path="/v1/tasks",
        submitted=Answer(200, {"links": {"poll": "/v1/tasks/3"}, "state": {"phase": "queued"}}),
        monitor="/v1/tasks/3",
        running=Answer(200, {"state": {"phase": "working", "pct": 40}}),
        done=(("GET", "/v1/tasks/3", Answer(200, {"state": {"phase": "finished"}, "output": RESULT})),),
        failed=Answer(200, {"state": {"phase": "broken"}, "problem": FAILURE}),
        failure_code="BadAudio",
        cancel=("POST", "/v1/tasks/3/cancel"),
        custom={
            "status_path": "state.phase",
            "running": ["queued", "working"],
            "succeeded": ["finished"],
            "failed": ["broken"],
            "canceled": ["stopped"],
            "progress_path": "state.pct",
            "progress_scale": 100,
            "result_path": "output",
            "error_path": "problem",
            "monitor_path": "links.poll",
            "cancel_method": "POST",
            "cancel_suffix": "/cancel",
        },
    ),
]


@pytest.fixture
def server() -> Iterator[LroServer]:
    with LroServer() as running:
        yield running


@pytest.fixture(params=SCRIPTS, ids=[s.style for s in SCRIPTS])
def script(request: pytest.FixtureRequest) -> Script:
    return request.param  # type: ignore[no-any-return]


def provider_for(
    server: LroServer, clock: VirtualClock | None = None, allow_loopback: bool = True, **profile: Any
) -> HttpProvider:
    profiles = {
        "svc": Profile(
            name="svc",
            base_url=f"{server.url}/v1",
            headers={"Authorization": TOKEN},
            timeout_seconds=profile.pop("timeout_seconds", 5.0),
        )
    }
    return HttpProvider(
        clock or VirtualClock(), lambda: profiles, allow_loopback=allow_loopback, max_response_bytes=CAP
    )


def run_to_end(provider: HttpProvider, work_id: str, limit: int = 10) -> list[PollResult]:
    results = [provider.poll(work_id)]
    while results[-1].state in (WorkState.PENDING, WorkState.RUNNING) and len(results) < limit:
        results.append(provider.poll(work_id))
    return results


def submit(provider: HttpProvider, script: Script) -> str:
    return provider.submit(provider.validate(script.job()))


# ---- each style: the same behaviours --------------------------------------------------------------------


def test_a_succeeding_operation_is_polled_to_its_result(server: LroServer, script: Script) -> None:
    script.succeeding(server)
    provider = provider_for(server)

    results = run_to_end(provider, submit(provider, script))

    assert [r.state for r in results] == [WorkState.RUNNING, WorkState.SUCCEEDED]
    assert results[0].progress == script.progress
    assert results[-1].result == RESULT
    assert all(seen.headers["authorization"] == TOKEN for seen in server.seen)  # from the profile
    (posted,) = server.requests("POST", script.submit_path)
    assert posted.body == {"audio": "s3://in/a.wav"}


def test_a_failing_operation_fails_with_the_services_error(server: LroServer, script: Script) -> None:
    script.with_running(server, script.failed)
    provider = provider_for(server)

    results = run_to_end(provider, submit(provider, script))

    assert results[-1].state is WorkState.FAILED
    assert results[-1].error is not None and results[-1].error.code == script.failure_code


def test_cancel_sends_the_styles_cancel_request(server: LroServer, script: Script) -> None:
    script.with_running(server)
    method, path = script.cancel
    server.on(method, path, Answer(202 if method == "POST" else 204))
    provider = provider_for(server)
    work_id = submit(provider, script)

    provider.cancel(work_id)
    provider.cancel(work_id)  # idempotent; a service that forgot the operation is no error either
    server.on(method, path, problem(404, "Not Found", "no such operation"))
    provider.cancel(work_id)

    assert len(server.requests(method, path)) == 3


def test_retry_after_as_an_http_date_is_the_next_poll_hint(server: LroServer, script: Script) -> None:
    clock = VirtualClock()
    later = email.utils.format_datetime(clock.now() + timedelta(seconds=90), usegmt=True)
    running = Answer(script.running.status, script.running.body, {"Retry-After": later})
    server.on("POST", script.submit_path, script.submitted)
    server.on("GET", script.monitor, running)
    provider = provider_for(server, clock)

    result = provider.poll(submit(provider, script))

    assert result.state is WorkState.RUNNING
    assert result.retry_after_seconds is not None and 89 <= result.retry_after_seconds <= 90


def test_a_500_is_transient_and_the_next_poll_succeeds(server: LroServer, script: Script) -> None:
    script.succeeding(server)
    (_, monitor, last), *_ = script.done
    server.on("GET", monitor, problem(500, "Internal Server Error", "try again"), last)
    provider = provider_for(server)
    work_id = submit(provider, script)

    with pytest.raises(ProviderUnavailable, match="500"):
        provider.poll(work_id)
    assert provider.poll(work_id).state is WorkState.SUCCEEDED


def test_a_404_mid_run_fails_the_job_with_the_status_and_problem_detail(
    server: LroServer, script: Script
) -> None:
    script.with_running(server, problem(404, "Not Found", "operation 1 expired"))
    provider = provider_for(server)

    results = run_to_end(provider, submit(provider, script))

    assert [r.state for r in results] == [WorkState.RUNNING, WorkState.FAILED]
    error = results[-1].error
    assert error is not None and error.code == "ProviderRefused"
    assert "404" in error.message and "operation 1 expired" in error.message


def test_a_redirect_out_of_the_profile_is_not_followed(server: LroServer, script: Script) -> None:
    outside = Answer(307, None, {"Location": f"{server.url}/admin/secrets"})
    script.with_running(server, outside)
    provider = provider_for(server)

    results = run_to_end(provider, submit(provider, script))

    error = results[-1].error
    assert results[-1].state is WorkState.FAILED
    assert error is not None and error.code == "UnsafeProviderUrl"
    assert server.requests(path="/admin/secrets") == []


@pytest.mark.parametrize("unsized", [False, True], ids=["content-length", "unsized"])
def test_a_huge_body_is_not_read_past_the_cap(server: LroServer, script: Script, unsized: bool) -> None:
    huge = Answer(200, b'{"status": "' + b"x" * (4 * CAP) + b'"}', unsized=unsized)
    script.with_running(server, huge)
    provider = provider_for(server)

    results = run_to_end(provider, submit(provider, script))

    error = results[-1].error
    assert error is not None and error.code == "ProviderResponseTooLarge"


# ---- transport, SSRF and input ---------------------------------------------------------------------------

AZURE = SCRIPTS[0]


def test_redirects_inside_the_profile_are_followed(server: LroServer) -> None:
    AZURE.with_running(server, Answer(307, None, {"Location": "/v1/operations/1b"}))
    server.on("GET", "/v1/operations/1b", Answer(200, {"status": "Succeeded", "result": RESULT}))
    provider = provider_for(server)

    assert run_to_end(provider, submit(provider, AZURE))[-1].result == RESULT


def test_a_result_at_resource_location_is_fetched(server: LroServer) -> None:
    done = Answer(200, {"status": "Succeeded", "resourceLocation": "/v1/analyses/1"})
    AZURE.with_running(server, done)
    server.on("GET", "/v1/analyses/1", Answer(200, RESULT))
    provider = provider_for(server)

    assert run_to_end(provider, submit(provider, AZURE))[-1].result == RESULT


def test_work_that_finishes_at_once_needs_no_monitor(server: LroServer) -> None:
    server.on("POST", "/v1/exports", Answer(200, RESULT))
    provider = provider_for(server)
    job = {**SCRIPTS[3].job(), "request": {"method": "POST", "path": "/exports"}}

    work_id = provider.submit(provider.validate(job))

    assert provider.poll(work_id).result == RESULT
    provider.cancel(work_id)
    assert len(server.seen) == 1


@pytest.mark.parametrize("status", [429, 502, 503])
def test_429_and_5xx_at_submission_are_transient(server: LroServer, status: int) -> None:
    server.on("POST", AZURE.submit_path, problem(status, "Busy", "later"))
    provider = provider_for(server)

    with pytest.raises(ProviderUnavailable):
        submit(provider, AZURE)


def test_a_4xx_at_submission_is_refused_with_the_problem_detail(server: LroServer) -> None:
    server.on("POST", AZURE.submit_path, problem(400, "Bad Request", "'audio' is not a URL"))
    provider = provider_for(server)

    with pytest.raises(ProviderRefused, match="400: Bad Request: 'audio' is not a URL"):
        submit(provider, AZURE)


def test_connection_errors_and_timeouts_are_transient(server: LroServer) -> None:
    server.on("POST", AZURE.submit_path, Answer(hang=True))
    provider = provider_for(server, timeout_seconds=0.2)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        submit(provider, AZURE)

    with LroServer() as closed:
        unreachable = provider_for(closed)
    with pytest.raises(ProviderUnavailable):  # nothing listens on its port any more
        submit(unreachable, AZURE)


def test_deployed_the_ssrf_guard_refuses_loopback_before_any_request(server: LroServer) -> None:
    AZURE.with_running(server)
    provider = provider_for(server, allow_loopback=False)

    with pytest.raises(UnsafeProviderUrl, match="loopback"):
        submit(provider, AZURE)
    assert server.seen == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("profile", "nope", "known: svc"),
        ("style", "soap", "'style' must be one of"),
        ("request", {"path": "/../admin"}, "outside the base_url"),
        ("request", {"path": "/x/%2E%2E/%2e%2e/admin"}, "outside the base_url"),
        ("request", {"path": "//evil.example/x"}, "'request.path'"),
        ("request", {"path": "http://evil.example/x"}, "'request.path'"),
        ("request", {"path": "/x", "method": "TRACE"}, "'request.method'"),
        ("request", {"path": "/x", "headers": {"Authorization": "Bearer mine"}}, "may not set Authorization"),
        ("custom", {"status_path": "s"}, "'custom' is for style 'custom' only"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    server: LroServer, field: str, value: Any, message: str
) -> None:
    provider = provider_for(server)
    with pytest.raises(InvalidJobInput, match=message):
        provider.validate({**AZURE.job(), field: value})


def test_the_custom_style_needs_its_description() -> None:
    profiles = {"svc": Profile("svc", "http://127.0.0.1:1/v1")}
    provider = HttpProvider(VirtualClock(), lambda: profiles, allow_loopback=True)
    job = {"profile": "svc", "style": "custom", "request": {"path": "/v1/x"}}
    with pytest.raises(InvalidJobInput, match="needs 'custom'"):
        provider.validate(job)
    with pytest.raises(InvalidJobInput, match=r"'custom\.running'"):
        provider.validate({**job, "custom": {"status_path": "s", "succeeded": ["ok"], "failed": ["no"]}})


def test_profile_defaults_fill_the_job_input() -> None:
    profiles = parse_profiles(
        '{"svc": {"base_url": "http://127.0.0.1:1/v1/", "defaults": {"style": "google"}}}'
    )
    provider = HttpProvider(VirtualClock(), lambda: profiles, allow_loopback=True)

    checked = provider.validate({"profile": "svc", "request": {"path": "/v1/x"}})

    assert checked == {"profile": "svc", "style": "google", "request": {"method": "POST", "path": "/v1/x"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "JSON object"),
        ('{"a": {"headers": {}}}', "needs 'base_url'"),
        ('{"a": {"base_url": "ftp://x"}}', "http\\(s\\) URL"),
        ('{"a": {"base_url": "http://u:p@x"}}', "credentials"),
        ('{"a": {"base_url": "http://x", "headers": {"Authorization": "Bearer s3cr3t\\n"}}}', "single-line"),
        ('{"a": {"base_url": "http://x", "token": "s3cr3t"}}', "unknown .* field"),
        ('{"bad name": {"base_url": "http://x"}}', "a name is"),
    ],
)
def test_malformed_profiles_are_refused_in_one_line_without_secrets(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_profiles(text)
    assert "s3cr3t" not in str(raised.value) and "\n" not in str(raised.value)


def test_profiles_are_read_from_ssm_once_on_first_use() -> None:
    class CountingSsm:
        calls = 0

        def get_parameter(self, Name: str, WithDecryption: bool) -> dict[str, Any]:
            assert (Name, WithDecryption) == ("/jobpoll/dev/http-profiles", True)
            self.calls += 1
            return {"Parameter": {"Value": '{"svc": {"base_url": "https://api.example/v1"}}'}}

    ssm = CountingSsm()
    load = http_profiles_loader(Settings(http_profiles_parameter="/jobpoll/dev/http-profiles"), ssm)
    assert ssm.calls == 0
    assert load()["svc"].base_url == "https://api.example/v1"
    assert load() is load() and ssm.calls == 1
    assert "s3cr3t" not in repr(Settings(http_profiles='{"svc": {"headers": {"k": "s3cr3t"}}}'))


def test_a_profile_contains_only_urls_below_its_base() -> None:
    profile = Profile("svc", "https://api.example/v1")
    assert profile.contains("https://api.example/v1/ops/1")
    assert profile.contains("https://API.example:443/v1")
    assert not profile.contains("https://api.example/v10/ops")
    assert not profile.contains("http://api.example/v1/ops")
    assert not profile.contains("https://api.example:8443/v1/ops")
    assert not profile.contains("https://api.example.evil/v1/ops")
    assert not profile.contains("https://user@api.example/v1/ops")
    assert not profile.contains("https://api.example/v1/%2e%2e/admin")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = VirtualClock().now()
    assert retry_after_seconds("120", now) == 120
    assert (
        retry_after_seconds(email.utils.format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    )
    assert (
        retry_after_seconds(email.utils.format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    )
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_a_foreign_work_id_is_refused(server: LroServer) -> None:
    with pytest.raises(ProviderError):
        provider_for(server).poll("sim-abc")
