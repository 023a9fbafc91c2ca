"""Discovery: `GET /providers`, `GET /providers/{name}`, and `POST /jobs` in /openapi.json as a choice by
provider, each with the input schema the provider declares. One emulation for the module."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_harness import Api, make_api
from jsonschema import Draft202012Validator

from chalicelib.providers import registry
from jobpoll.emulation import Emulation

BUILT_IN = {"simulated": "poll", "simulated-engine": "engine", "simulated-stream": "worker"}


# The http provider's example names the profile `speech`: here a loopback port where nothing listens.
HTTP_PROFILES = json.dumps({"speech": {"base_url": "http://127.0.0.1:9"}})


@pytest.fixture(scope="module")
def api(module_emulation: Emulation) -> Api:
    return make_api(module_emulation, http_profiles=HTTP_PROFILES)


def _documented(api: Api, name: str) -> Draft202012Validator:
    """A validator for the OpenAPI document's component schema `name`."""
    document = api.client.http.get("/openapi.json").json_body
    return Draft202012Validator(
        {**document["components"]["schemas"][name], "components": document["components"]}
    )


def test_get_providers_lists_each_with_its_kind_schema_and_examples(api: Api) -> None:
    response = api.get("/providers")

    assert response.status_code == 200
    _documented(api, "ProviderList").validate(response.json_body)
    listed = {provider["name"]: provider for provider in response.json_body["providers"]}
    assert {name: listed[name]["kind"] for name in BUILT_IN} == BUILT_IN
    assert listed["simulated"]["can_notify"] is True
    assert listed["simulated-stream"]["can_notify"] is False
    for provider in listed.values():
        assert provider["examples"]
        for example in provider["examples"]:
            Draft202012Validator(provider["input_schema"]).validate(example)


def test_get_one_provider_and_an_unknown_one(api: Api) -> None:
    one = api.get("/providers/simulated-engine")
    assert one.status_code == 200
    _documented(api, "Provider").validate(one.json_body)
    assert one.json_body["name"] == "simulated-engine"
    assert "poll_seconds" in one.json_body["input_schema"]["properties"]

    missing = api.get("/providers/carrier-pigeon")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert "carrier-pigeon" in missing.json_body["detail"]


def test_discovery_needs_a_caller(api: Api) -> None:
    assert api.client.http.get("/providers").status_code == 401


def _job_request_validator(api: Api) -> Draft202012Validator:
    return _documented(api, "JobRequest")


def test_the_openapi_document_offers_one_choice_per_provider_with_its_input_schema(api: Api) -> None:
    document = api.client.http.get("/openapi.json").json_body
    choices = document["components"]["schemas"]["JobRequest"]["anyOf"]
    by_name = {choice["properties"]["provider"]["const"]: choice for choice in choices}

    assert set(by_name) == set(api.runtime.providers)
    for name, provider in api.runtime.providers.items():
        assert by_name[name]["properties"]["input"] == provider.input_schema
    # A provider whose input depends on the deployment offers what it accepts: http, its profiles.
    http_profiles = {
        v["properties"]["profile"]["const"] for v in by_name["http"]["properties"]["input"]["anyOf"]
    }
    assert http_profiles == {"speech"}


def _examples() -> list[tuple[str, dict[str, Any]]]:
    return [(spec.name, example) for spec in registry.load() for example in spec.examples]


@pytest.mark.parametrize(("provider", "example"), _examples())
def test_each_example_the_document_shows_is_a_request_the_api_accepts(
    api: Api, provider: str, example: dict[str, Any]
) -> None:
    body = {"provider": provider, "input": example}
    _job_request_validator(api).validate(body)

    response = api.post(body)

    assert response.status_code == 202, response.json_body


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "simulated", "input": {"delay": "soon"}},
        {"provider": "simulated-engine", "input": {"delay": 1, "poll_seconds": 0}},
        {"provider": "simulated-stream", "input": {"tokens": 1}, "notify": True},
        {"provider": "carrier-pigeon", "input": {}},
        {"input": {"tokens": 5}},
    ],
)
def test_a_body_the_document_refuses_the_api_refuses_too(api: Api, body: dict[str, Any]) -> None:
    assert not _job_request_validator(api).is_valid(body)
    assert api.post(body).status_code == 400
