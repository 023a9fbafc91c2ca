"""A client that was never written for jobpoll: azure-core's long-running-operation poller, with a bearer
token from the local issuer, drives a job on the local stack from its 202 to its result (issue 16: a client
tested against the local stack works against a deployed `jwt` stack with only the URL and token changed)."""

from __future__ import annotations

import json
from typing import Any

from azure.core import PipelineClient
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import HeadersPolicy, RedirectPolicy, RequestIdPolicy, RetryPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest
from e2e_support import LocalStack


def _body(response: PipelineResponse) -> Any:
    return json.loads(response.http_response.text())


def test_azure_cores_lro_poller_follows_a_job_to_its_result_with_a_bearer_token(
    local_stack: LocalStack,
) -> None:
    api_url, token = local_stack.state["api_url"], local_stack.state["api_token"]
    client = PipelineClient(
        base_url=api_url,
        policies=[
            RequestIdPolicy(),
            RedirectPolicy(),  # the finished job's 303 to its result (it drops Authorization: set after it)
            HeadersPolicy({"Authorization": f"Bearer {token}"}),  # where azure puts its credential policy
            RetryPolicy(retry_total=0),
        ],
    )
    body = {"delay": 20, "wait_seconds": 5, "max_tries": 20, "result": {"answer": 42}}
    initial = client._pipeline.run(HttpRequest("POST", f"{api_url}/jobs", json=body), stream=False)
    assert initial.http_response.status_code == 202
    assert initial.http_response.headers["Location"].startswith(f"{api_url}/jobs/")

    poller = LROPoller(client, initial, _body, LROBasePolling(timeout=0.2))
    result = poller.result(timeout=120)

    assert poller.status() == "Succeeded"
    assert result["output"] == {"answer": 42}


def test_without_a_token_the_same_client_is_refused_before_anything_starts(local_stack: LocalStack) -> None:
    api_url = local_stack.state["api_url"]
    client = PipelineClient(base_url=api_url, policies=[RequestIdPolicy(), RetryPolicy(retry_total=0)])
    response = client.send_request(HttpRequest("POST", f"{api_url}/jobs", json={"delay": 1}))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
