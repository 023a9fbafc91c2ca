"""The template packaged in auth mode jwt: lint-clean, every route behind the bearer-token authorizer,
whose function may read nothing of the stack, and it deploys into the emulation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from test_packaged_template import _lint, _statements

from jobpoll.clocks import VirtualClock
from jobpoll.deploy import deploy
from jobpoll.emulation import MOTO_CONFIG, resolve_handler
from jobpoll.local import function_environment
from jobpoll.moto_patches import emulation_patches
from jobpoll.package import Package, chalice_package, cloudformation_template
from jobpoll.target import Target

REGION = "us-east-1"
AUTHORIZER = "BearerTokenAuthorizer"


@pytest.fixture(scope="module")
def packaged_jwt(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return chalice_package("dev", Path(tmp_path_factory.mktemp("package-jwt")), REGION, auth="jwt")


@pytest.fixture(scope="module")
def transformed_jwt(packaged_jwt: Package) -> dict[str, Any]:
    return cloudformation_template(packaged_jwt, REGION, "jobpoll-artifacts-123456789012-us-east-1", "b.zip")


def test_the_jwt_template_is_cfn_lint_clean_before_and_after_the_sam_transform(
    packaged_jwt: Package, transformed_jwt: dict[str, Any]
) -> None:
    assert _lint(packaged_jwt.template()) == []
    assert _lint(transformed_jwt) == []


def test_every_job_route_is_behind_the_bearer_token_authorizer(transformed_jwt: dict[str, Any]) -> None:
    body = transformed_jwt["Resources"]["RestAPI"]["Properties"]["Body"]
    schemes = body["securityDefinitions"]
    (name,) = [
        name for name, scheme in schemes.items() if scheme.get("x-amazon-apigateway-authtype") == "custom"
    ]
    routes = {
        "/jobs": ("get", "post"),
        "/jobs/{job_id}": ("get", "delete"),
        "/jobs/{job_id}/result": ("get",),
    }
    for path, methods in routes.items():
        for method in methods:
            assert body["paths"][path][method]["security"] == [{name: []}], (path, method)
    assert body["paths"]["/openapi.json"]["get"].get("security") is None


def test_the_authorizer_runs_with_a_role_that_reads_nothing_of_the_stack(
    transformed_jwt: dict[str, Any],
) -> None:
    resources = transformed_jwt["Resources"]
    assert resources[AUTHORIZER]["Properties"]["Role"] == {"Fn::GetAtt": ["BearerTokenAuthorizerRole", "Arn"]}
    actions = {a for s in _statements(transformed_jwt, "BearerTokenAuthorizerRole") for a in s["Action"]}
    assert actions == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    variables = resources[AUTHORIZER]["Properties"]["Environment"]["Variables"]
    assert variables["JOBPOLL_AUTH"] == "jwt"
    assert variables["JOBPOLL_JWT_ISSUER"] == {"Ref": "JwtIssuer"}


def test_the_401_gateway_response_is_a_problem_with_a_bearer_challenge(
    transformed_jwt: dict[str, Any],
) -> None:
    responses = transformed_jwt["Resources"]["RestAPI"]["Properties"]["Body"][
        "x-amazon-apigateway-gateway-responses"
    ]
    parameters = responses["UNAUTHORIZED"]["responseParameters"]
    assert parameters["gatewayresponse.header.WWW-Authenticate"] == "'Bearer realm=\"jobpoll\"'"
    assert (
        json.loads(
            responses["UNAUTHORIZED"]["responseTemplates"]["application/json"].replace(
                "$context.error.messageString", '"Unauthorized"'
            )
        )["status"]
        == 401
    )


@pytest.fixture
def moto_target(virtual_clock: VirtualClock) -> Iterator[Target]:
    from chalicelib.bootstrap import set_runtime

    with mock_aws(config=MOTO_CONFIG), emulation_patches(virtual_clock, resolve_handler):  # type: ignore[call-overload]
        yield Target(region=REGION)
        set_runtime(None)


def test_the_jwt_stack_deploys_into_the_emulation_with_its_issuer(
    moto_target: Target, packaged_jwt: Package
) -> None:
    parameters = {"JwtIssuer": "https://issuer.example.test", "JwtAudience": "jobpoll"}
    deploy(
        "dev",
        moto_target,
        "jobpoll-dev",
        with_api=False,
        progress=lambda _: None,
        package=packaged_jwt,
        parameters=parameters,
    )

    environment = function_environment(moto_target, "jobpoll-dev", AUTHORIZER)
    assert environment["JOBPOLL_AUTH"] == "jwt"
    assert environment["JOBPOLL_JWT_ISSUER"] == "https://issuer.example.test"
    assert environment["JOBPOLL_JWT_AUDIENCE"] == "jobpoll"


def test_an_iam_stack_has_no_authorizer_function(packaged: Package) -> None:
    template = packaged.template()
    assert not [name for name in template["Resources"] if name.startswith(AUTHORIZER)]
    assert template["Globals"]["Function"]["Environment"]["Variables"]["JOBPOLL_AUTH"] == "iam"


@pytest.fixture(scope="module")
def packaged_cognito(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return chalice_package("dev", Path(tmp_path_factory.mktemp("package-cognito")), REGION, auth="cognito")


def test_the_cognito_template_creates_a_user_pool_unless_given_one_and_is_cfn_lint_clean(
    packaged_cognito: Package, packaged_jwt: Package
) -> None:
    template = packaged_cognito.template()
    assert _lint(template) == []
    assert (
        _lint(cloudformation_template(packaged_cognito, REGION, "jobpoll-artifacts-1-us-east-1", "b.zip"))
        == []
    )
    pool = ("UserPool", "UserPoolResourceServer", "UserPoolDomain", "UserPoolClient")
    assert all(template["Resources"][name]["Condition"] == "CreateUserPool" for name in pool)
    scopes = template["Resources"]["UserPoolResourceServer"]["Properties"]["Scopes"]
    assert {scope["ScopeName"] for scope in scopes} == {
        "jobs:submit",
        "jobs:read",
        "jobs:cancel",
        "jobs:operator",
    }
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["JOBPOLL_AUTH"] == "cognito"
    assert variables["JOBPOLL_JWT_ISSUER"]["Fn::If"][0] == "CreateUserPool"
    assert not [name for name in packaged_jwt.template()["Resources"] if name.startswith("UserPool")]
