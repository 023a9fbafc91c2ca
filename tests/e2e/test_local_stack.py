"""`jobpoll local up` end to end: a job runs to completion through the local stack, the AWS CLI and
`jobpoll deploy`/`destroy` work against it, and SIGTERM leaves no process and no bound port.

The tests run in file order on one local stack; the last one stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

from e2e_support import LocalStack, alive, cli_environment, jobpoll_command, port_is_free

from jobpoll.paths import ROOT

COMMAND_TIMEOUT = 60.0


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


def test_chalice_local_answers_on_the_api_port(local_stack: LocalStack) -> None:
    try:
        with urllib.request.urlopen(f"{local_stack.state['api_url']}/", timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as error:  # no route at / is still chalice answering
        status = error.code
    assert status < 500


def test_a_seed_job_completes_through_the_local_stack(local_stack: LocalStack) -> None:
    job_id = _post_job(local_stack.state["api_url"], local_stack.state["api_token"], {"delay": 20})
    described = _wait_for_execution(local_stack, job_id)
    assert described["status"] == "SUCCEEDED", described
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
            return {"http": response.status, **json.loads(response.read())}
    except urllib.error.HTTPError as error:  # 303 to the result once complete
        return {"http": error.code, **json.loads(error.read() or b"{}")}


def test_a_queue_mode_job_streams_its_output_through_the_local_stack(local_stack: LocalStack) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    started = time.monotonic()
    job_id = _post_job(
        api_url, token, {"provider": "simulated-stream", "input": {"tokens": 120, "tokens_per_second": 5}}
    )
    assert time.monotonic() - started < 5  # the worker runs after the POST, not inside it

    outputs = []
    deadline = time.monotonic() + 30
    while (answer := _get_job(api_url, token, job_id))["http"] == 202:
        outputs.append(answer.get("partial_output") or "")
        assert time.monotonic() < deadline, "the queued job never finished"
        time.sleep(0.05)
    assert answer["http"] == 303
    grown = [len(text) for text in outputs if text]
    assert len(set(grown)) >= 2 and grown == sorted(grown)  # the output grew across polls


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


def test_sigterm_stops_everything_local_up_started(local_stack: LocalStack) -> None:
    assert local_stack.descendants, "chalice local should be running as a child"
    assert local_stack.stop() == 0
    assert not local_stack.state_file.exists()
    assert [pid for pid in local_stack.descendants if alive(pid)] == []
    assert port_is_free(local_stack.api_port)
    assert port_is_free(local_stack.aws_port)
