"""`jobpoll local up` end to end: a job runs to completion through the local stack, the AWS CLI and
`jobpoll deploy`/`destroy` work against it, and SIGTERM leaves no process and no bound port.

The tests share the session's local stack, except the one that stops its own.
"""

from __future__ import annotations

import http.client
import http.server
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import jwt
from e2e_support import LocalStack, alive, cli_environment, jobpoll_command, port_is_free

from chalicelib.callbacks import SIGNATURE_HEADER, verify_signature
from chalicelib.clock import from_iso
from jobpoll.paths import ROOT
from lro_server import Answer, LroServer

COMMAND_TIMEOUT = 60.0


JOBS_IN_FLIGHT = 8


def _wait_for_execution(stack: LocalStack, name: str, timeout: float = 30.0) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    arn = f"{stack.state['outputs']['StateMachineArn'].replace(':stateMachine:', ':execution:')}:{name}"
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def _post_job(api_url: str, token: str, body: dict[str, Any]) -> str:
    request = urllib.request.Request(
        f"{api_url}/jobs",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201, 202)
        location = response.headers.get("Location", "")
        answer = json.loads(response.read() or b"{}")
    return str(answer.get("job_id") or answer.get("id") or location.rstrip("/").rsplit("/", 1)[-1])


def test_local_up_writes_what_a_client_needs(local_stack: LocalStack) -> None:
    state = local_stack.state
    assert state["api_url"] == f"http://127.0.0.1:{local_stack.api_port}"
    assert state["aws_endpoint_url"] == f"http://127.0.0.1:{local_stack.aws_port}"
    assert state["outputs"]["StateMachineArn"].endswith(":stateMachine:jobpoll-local-poller")
    assert state["outputs"]["JobsTableName"] == "jobpoll-local-jobs"
    assert len(state["api_token"]) >= 16
    assert len(state["callback_secret"]) >= 32  # made afresh: callbacks work with no configuration
    assert local_stack.state_file.stat().st_mode & 0o077 == 0  # secrets: the owner's alone
    assert "callback_secret" in local_stack.log.read_text()  # `local up` says where the key is


def test_chalice_local_answers_on_the_api_port(local_stack: LocalStack) -> None:
    try:
        with urllib.request.urlopen(f"{local_stack.state['api_url']}/", timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as error:  # no route at / is still chalice answering
        status = error.code
    assert status < 500


def test_trace_on_the_local_api_answers_405_problem_json_with_allow(local_stack: LocalStack) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", local_stack.api_port, timeout=10)
    try:
        connection.request("TRACE", "/jobs/abc")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 405
    assert response.getheader("Content-Type") == "application/problem+json"
    assert response.getheader("Allow") == "DELETE, GET"
    assert body["status"] == 405


def test_a_seed_job_completes_through_the_local_stack(local_stack: LocalStack) -> None:
    job_id = _post_job(local_stack.state["api_url"], local_stack.state["api_token"], {"delay": 20})
    described = _wait_for_execution(local_stack, job_id)
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    item = local_stack.client("dynamodb").get_item(
        TableName=local_stack.state["outputs"]["JobsTableName"], Key={"job_id": {"S": job_id}}
    )["Item"]
    assert item["status"]["S"] == "COMPLETE"


def test_the_aws_cli_lists_the_local_executions(local_stack: LocalStack) -> None:
    result = subprocess.run(
        [
            sys.executable,  # the AWS CLI comes with the dev extra
            "-m",
            "awscli",
            "stepfunctions",
            "list-executions",
            "--endpoint-url",
            local_stack.state["aws_endpoint_url"],
            "--state-machine-arn",
            local_stack.state["outputs"]["StateMachineArn"],
        ],
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "SUCCEEDED" in {e["status"] for e in json.loads(result.stdout)["executions"]}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _get_job(api_url: str, token: str, job_id: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{api_url}/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as response:
            retry_after = response.headers.get("Retry-After")
            return {"http": response.status, "retry_after": retry_after, **json.loads(response.read())}
    except urllib.error.HTTPError as error:  # 303 to the result once complete
        return {"http": error.code, **json.loads(error.read() or b"{}")}


def test_a_queue_mode_job_streams_its_output_through_the_local_stack(local_stack: LocalStack) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    # 60 s of emulated streaming, written once an emulated second: many polls see it grow, even when idle.
    job_id = _post_job(
        api_url, token, {"provider": "simulated-stream", "input": {"tokens": 60, "tokens_per_second": 1}}
    )

    outputs = []
    deadline = time.monotonic() + 30
    while (answer := _get_job(api_url, token, job_id))["http"] == 202:
        outputs.append(answer.get("partial_output") or "")
        assert time.monotonic() < deadline, "the queued job never finished"
        time.sleep(0.05)
    assert answer["http"] == 303
    assert outputs, "the POST answered only once the work was done: the worker should run after it"
    grown = [len(text) for text in outputs if text]
    assert len(set(grown)) >= 2 and grown == sorted(grown)  # the output grew across polls


def test_an_http_job_in_style_jobpoll_drives_another_job_on_the_same_stack(local_stack: LocalStack) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    inner = {"delay": 20, "result": {"answer": 42}}
    request = {"method": "POST", "path": "/jobs", "body": inner}
    job_id = _post_job(
        api_url,
        token,
        {
            "provider": "http",
            "input": {"profile": "self", "style": "jobpoll", "request": request},
            "max_tries": 10,
        },
    )

    described = _wait_for_execution(local_stack, job_id)
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    result = urllib.request.Request(
        f"{api_url}/jobs/{job_id}/result", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(result, timeout=10) as response:
        outer = json.loads(response.read())
    assert outer["output"] == {"answer": 42}  # the inner job's result, read through its 303


def _job_when(stack: LocalStack, job_id: str, done: Any, timeout: float = 30) -> dict[str, Any]:
    api_url, token = stack.state["api_url"], stack.state["api_token"]
    deadline = time.monotonic() + timeout
    while not done(answer := _get_job(api_url, token, job_id)):
        assert time.monotonic() < deadline, f"job {job_id} is still {answer.get('status')}"
        time.sleep(0.05)
    return answer


def _finished(answer: dict[str, Any]) -> bool:
    return answer.get("status") in ("COMPLETE", "FAILED", "CANCELED")


def test_aws_service_jobs_complete_fail_and_cancel_on_the_local_stack(local_stack: LocalStack) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    s3 = local_stack.client("s3")
    s3.create_bucket(Bucket="media")
    s3.put_object(Bucket="media", Key="talk.mp3", Body=b"not really audio")
    transcription = {"media_uri": "s3://media/talk.mp3", "language_code": "en-US"}
    done = _post_job(api_url, token, {"provider": "aws-transcribe", "input": transcription, "max_tries": 10})
    failed = _post_job(
        api_url,
        token,
        {"provider": "aws-athena", "input": {"query": "SELECT 1", "output_location": "s3://none/"}},
    )
    canceled = _post_job(
        api_url,
        token,
        {"provider": "aws-athena", "input": {"query": "SELECT 1"}, "wait_seconds": 3600, "max_tries": 2},
    )

    assert _job_when(local_stack, done, _finished)["provider_status"] == "COMPLETED"
    failure = _job_when(local_stack, failed, _finished)
    assert (failure["status"], failure["error"]["code"]) == ("FAILED", "QueryFailed")
    assert "Unable to verify/create output bucket none" in failure["error"]["message"]
    _job_when(local_stack, canceled, lambda answer: answer.get("status") == "PENDING")
    request = urllib.request.Request(
        f"{api_url}/jobs/{canceled}", method="DELETE", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["status"] == "CANCELED"
    item = local_stack.client("dynamodb").get_item(
        TableName=local_stack.state["outputs"]["JobsTableName"], Key={"job_id": {"S": canceled}}
    )["Item"]
    query = local_stack.client("athena").get_query_execution(QueryExecutionId=item["work_id"]["S"])
    assert query["QueryExecution"]["Status"]["State"] == "CANCELLED"


def test_notified_jobs_complete_with_no_poll_when_their_service_announces_the_end(
    local_stack: LocalStack,
) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    table = local_stack.state["outputs"]["JobsTableName"]
    transcription = {"media_uri": "s3://media/talk.mp3", "language_code": "en-US"}
    told = _post_job(api_url, token, {"provider": "aws-transcribe", "input": transcription, "notify": True})
    # The simulated service puts its own event on the bus when the work ends (20 s, long before 120 s).
    simulated = _post_job(api_url, token, {"delay": 20, "notify": True, "notify_timeout_seconds": 120})

    dynamodb = local_stack.client("dynamodb")
    deadline = time.monotonic() + 30
    while "notify_token" not in (
        item := dynamodb.get_item(TableName=table, Key={"job_id": {"S": told}})["Item"]
    ):
        assert time.monotonic() < deadline, "the transcription job never waited for its notification"
        time.sleep(0.05)
    work_id = item["work_id"]["S"]
    for _ in range(3):  # Transcribe finishes the job (each describe is one step on moto)
        local_stack.client("transcribe").get_transcription_job(TranscriptionJobName=work_id)
    local_stack.client("events").put_events(
        Entries=[
            {
                "Source": "aws.transcribe",
                "DetailType": "Transcribe Job State Change",
                "Detail": json.dumps(
                    {"TranscriptionJobName": work_id, "TranscriptionJobStatus": "COMPLETED"}
                ),
            }
        ]
    )

    for job_id in (told, simulated):
        answer = _job_when(local_stack, job_id, _finished)
        assert (answer["status"], answer["try_count"]) == ("COMPLETE", 0), answer


def test_a_5_mb_result_is_kept_in_s3_and_read_back_through_the_local_api(local_stack: LocalStack) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    five_mb = 5 * 1024 * 1024
    body = {"input": {"delay": 1, "result_bytes": five_mb}, "wait_seconds": 1}
    job_id = _post_job(api_url, token, body)
    assert _wait_for_execution(local_stack, job_id)["status"] == "SUCCEEDED"
    item = local_stack.client("dynamodb").get_item(
        TableName=local_stack.state["outputs"]["JobsTableName"], Key={"job_id": {"S": job_id}}
    )["Item"]
    assert "result" not in item and len(json.dumps(item)) < 4096  # the record names the object only

    presigned = _redirect(api_url, token, f"/jobs/{job_id}/result")  # a presigned URL of the local S3
    with urllib.request.urlopen(presigned, timeout=30) as response:
        assert len(json.loads(response.read())["output"]) == five_mb

    request = urllib.request.Request(
        f"{api_url}/jobs/{job_id}/shares",
        data=b'{"expires_in_seconds": 600}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        share_url = json.loads(response.read())["url"]
    with urllib.request.urlopen(share_url, timeout=30) as response:  # no credentials; follows the 303
        assert len(json.loads(response.read())["output"]) == five_mb


def _redirect(api_url: str, token: str, path: str) -> str:
    """Where `path` answers 303 See Other to."""
    request = urllib.request.Request(f"{api_url}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as response:
            raise AssertionError(f"{path} answered {response.status}, not a redirect")
    except urllib.error.HTTPError as error:
        assert error.code == 303
        return str(error.headers["Location"])


def test_jobpoll_deploy_and_destroy_run_against_the_emulation(local_stack: LocalStack) -> None:
    endpoint = local_stack.state["aws_endpoint_url"]

    def jobpoll(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*jobpoll_command(), *args],
            cwd=ROOT,
            env=cli_environment(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    deployed = jobpoll("deploy", "--stage", "e2e", "--endpoint-url", endpoint)
    assert deployed.returncode == 0, deployed.stderr
    assert "stateMachine:jobpoll-e2e-poller" in deployed.stdout
    assert "CREATE_COMPLETE" in deployed.stdout
    cloudformation = local_stack.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName="jobpoll-e2e")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"

    destroyed = jobpoll("destroy", "--stage", "e2e", "--endpoint-url", endpoint)
    assert destroyed.returncode == 0, destroyed.stderr
    assert "DELETE_COMPLETE" in destroyed.stdout
    machines = local_stack.client("stepfunctions").list_state_machines()["stateMachines"]
    assert [m["name"] for m in machines] == ["jobpoll-local-poller"]

    again = jobpoll("destroy", "--stage", "e2e", "--endpoint-url", endpoint)
    assert again.returncode == 1
    assert again.stderr.strip() == "jobpoll: there is no stack named jobpoll-e2e"


def test_under_speed_the_api_and_the_poll_loop_read_one_clock(local_stack: LocalStack) -> None:
    """At --speed 100, a 10 s wait is `Retry-After: 1` (real seconds), and a 40 s job's created_at (the
    API's clock) and completed_at (the handlers') are its run time apart on one clock (they were a real
    time apart from an emulated one: the time since the stack started, x 99)."""
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    began = time.monotonic()
    job_id = _post_job(api_url, token, {"input": {"delay": 40}, "wait_seconds": 10, "max_tries": 10})
    polled = []
    deadline = time.monotonic() + 30
    while (answer := _get_job(api_url, token, job_id))["http"] == 202:
        if answer["next_poll_at"] is not None:
            polled.append(int(answer["retry_after"]))
        assert time.monotonic() < deadline, "the job never finished"
        time.sleep(0.02)
    assert answer["http"] == 303
    assert polled, "no answer while the poll loop waited"
    assert max(polled) <= 2
    request = urllib.request.Request(
        f"{api_url}/jobs/{job_id}/result", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result = json.loads(response.read())
    took = (from_iso(result["completed_at"]) - from_iso(answer["created_at"])).total_seconds()
    # Both were stamped while this test looked on: at most that real time x the speed apart.
    assert 40 <= took <= (time.monotonic() - began) * local_stack.state["clock_speed"] + 1


class CallbackReceiver(http.server.BaseHTTPRequestHandler):
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.put((self.headers.get(SIGNATURE_HEADER, ""), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_fresh_local_stack_delivers_a_signed_callback_to_loopback(local_stack: LocalStack) -> None:
    receiver = http.server.HTTPServer(("127.0.0.1", 0), CallbackReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/done"
        job_id = _post_job(
            local_stack.state["api_url"],
            local_stack.state["api_token"],
            {"input": {"delay": 5}, "callback_url": url},
        )
        signature, body = CallbackReceiver.received.get(timeout=30)
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert verify_signature(local_stack.state["callback_secret"], signature, body, time.time())
    delivered = json.loads(body)
    assert (delivered["id"], delivered["status"]) == (job_id, "COMPLETE")


def test_after_a_sigkill_no_child_is_left_a_restart_completes_every_job_in_flight_and_sigterm_stops_it(
    local_stack_in_tmp_path: Callable[[], AbstractContextManager[LocalStack]],
) -> None:
    # One test, two starts of `local up` (each costs seconds of CPU): the restarted stack is the one SIGTERM
    # stops.
    with local_stack_in_tmp_path() as stack:
        api, token = stack.state["api_url"], stack.state["api_token"]
        # 10 s of real time at --speed 100: running when the stack is killed, done soon after its restart.
        body = {"input": {"delay": 1000}, "wait_seconds": 30, "max_tries": 200}
        job_ids = [_post_job(api, token, body) for _ in range(JOBS_IN_FLIGHT)]
        assert not any(_finished(_get_job(api, token, job_id)) for job_id in job_ids)
        stack.process.kill()  # SIGKILL: no cleanup of its own runs
        stack.process.wait(30)
        deadline = time.monotonic() + 30
        while [pid for pid in stack.descendants if alive(pid)]:
            assert time.monotonic() < deadline, "a child outlived the SIGKILLed local up"
            time.sleep(0.1)
        assert stack.state_file.exists()  # left behind: the next start clears it
    with local_stack_in_tmp_path() as restarted:
        api, token = restarted.state["api_url"], restarted.state["api_token"]
        finished = {job_id: _job_when(restarted, job_id, _finished, timeout=60) for job_id in job_ids}
        assert restarted.descendants, "chalice local should be running as a child"
        assert restarted.stop() == 0  # SIGTERM
        assert not restarted.state_file.exists()
        assert [pid for pid in restarted.descendants if alive(pid)] == []
        assert port_is_free(restarted.api_port)
        assert port_is_free(restarted.aws_port)
    assert {job["status"] for job in finished.values()} == {"COMPLETE"}
    assert {job["resumes"] for job in finished.values()} == {1}
    assert f"Restored {JOBS_IN_FLIGHT} jobs" in restarted.log.read_text()


def _status_of(api_url: str, method: str, path: str, token: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"input": {"delay": 1}}).encode() if method == "POST" else None
    request = urllib.request.Request(f"{api_url}{path}", data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_the_local_issuer_signs_tokens_the_api_accepts_with_their_scopes_only(
    local_stack: LocalStack,
) -> None:
    api_url = local_stack.state["api_url"]

    def token(*args: str) -> str:
        command = [*jobpoll_command(), "token", "--state-file", str(local_stack.state_file), *args]
        printed = subprocess.run(
            command, cwd=ROOT, env=cli_environment(), capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
        assert printed.returncode == 0, printed.stderr
        return printed.stdout.strip()

    reader = token("--sub", "carol", "--scope", "jobs:read")
    assert _status_of(api_url, "GET", "/jobs", reader)[0] == 200
    status, headers, problem = _status_of(api_url, "POST", "/jobs", reader)
    assert (status, problem["scope"]) == (403, "jobs:submit")
    assert headers["Content-Type"] == "application/problem+json"
    for refused in (None, "forged." + reader.split(".", 1)[1], reader[:-4] + "AAAA"):
        status, headers, problem = _status_of(api_url, "GET", "/jobs", refused)
        assert (status, problem["status"]) == (401, 401)
        assert headers["WWW-Authenticate"].startswith("Bearer")
    # The issuer serves its configuration and keys on loopback, as an OIDC issuer does.
    issuer_url = local_stack.state["issuer_url"]
    with urllib.request.urlopen(f"{issuer_url}/.well-known/openid-configuration", timeout=5) as response:
        configuration = json.loads(response.read())
    assert configuration["issuer"] == jwt.decode(reader, options={"verify_signature": False})["iss"]
    with urllib.request.urlopen(configuration["jwks_uri"], timeout=5) as response:
        assert [key["kty"] for key in json.loads(response.read())["keys"]] == ["RSA"]


def _azure_job(path: str) -> dict[str, Any]:
    request = {"method": "POST", "path": path, "body": {"audio": "s3://in/a.wav"}}
    return {
        "provider": "http",
        "input": {"profile": "lro", "style": "azure", "request": request},
        "max_tries": 20,
    }


def test_an_azure_style_job_completes_with_the_services_result_and_a_cancel_reaches_the_service(
    local_stack: LocalStack, lro_service: LroServer
) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    lro_service.on(
        "POST", "/v1/done", Answer(202, {"status": "NotStarted"}, {"Operation-Location": "/ops/1"})
    )
    lro_service.on(
        "GET",
        "/ops/1",
        Answer(200, {"status": "Running", "percentComplete": 40}),
        Answer(200, {"status": "Succeeded", "result": {"transcript": "hello"}}),
    )
    lro_service.on(
        "POST", "/v1/slow", Answer(202, {"status": "NotStarted"}, {"Operation-Location": "/ops/2"})
    )
    lro_service.on("GET", "/ops/2", Answer(200, {"status": "Running"}))
    lro_service.on("DELETE", "/ops/2", Answer(204))

    done = _post_job(api_url, token, _azure_job("/v1/done"))
    slow = _post_job(api_url, token, _azure_job("/v1/slow"))

    finished = _job_when(local_stack, done, _finished)
    assert finished["status"] == "COMPLETE", finished.get("error")
    result = urllib.request.Request(
        f"{api_url}/jobs/{done}/result", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(result, timeout=10) as response:
        body = json.loads(response.read())
        assert body == {"transcript": "hello"}  # the service's result, as the job keeps it

    _job_when(local_stack, slow, lambda answer: answer.get("try_count", 0) >= 1)
    cancel = urllib.request.Request(
        f"{api_url}/jobs/{slow}", method="DELETE", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(cancel, timeout=10) as response:
        assert response.status == 200
    deadline = time.monotonic() + 30
    while not lro_service.requests("DELETE", "/ops/2"):
        assert time.monotonic() < deadline, "the service never saw the cancel"
        time.sleep(0.05)
    assert _get_job(api_url, token, slow)["status"] == "CANCELED"
