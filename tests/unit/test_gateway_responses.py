"""API Gateway's own errors (no route, bad signature, throttling, ...) are problem documents too."""

from __future__ import annotations

import json

from jobpoll.paths import INFRA_TEMPLATE

# Every response type API Gateway has (its "Gateway response types" page), with its default status.
DEFAULT_STATUS = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "AUTHORIZER_FAILURE": 500,
    "BAD_REQUEST_PARAMETERS": 400,
    "BAD_REQUEST_BODY": 400,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_API_KEY": 403,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "QUOTA_EXCEEDED": 429,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "THROTTLED": 429,
    "UNAUTHORIZED": 401,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "WAF_FILTERED": 403,
}


def gateway_responses() -> dict[str, dict[str, object]]:
    # Merged into the swagger body of the API `chalice package` generates (RestAPI), so that API Gateway
    # owns them with the API (separate GatewayResponse resources would drift from the body).
    rest_api = json.loads(INFRA_TEMPLATE.read_text())["Resources"]["RestAPI"]
    return dict(rest_api["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"])


def test_api_gateways_own_errors_render_as_problem_json() -> None:
    responses = gateway_responses()
    assert set(responses) == {*DEFAULT_STATUS, "DEFAULT_4XX", "DEFAULT_5XX"}
    for kind, properties in responses.items():
        headers = properties["responseParameters"]
        assert headers["gatewayresponse.header.Content-Type"] == "'application/problem+json'"  # type: ignore[index]
        template = properties["responseTemplates"]["application/json"]  # type: ignore[index]
        # API Gateway substitutes the message as a quoted JSON string.
        rendered = json.loads(
            template.replace("$context.error.messageString", json.dumps('a "quoted" message'))
        )
        assert rendered["type"] == "about:blank" and rendered["title"], kind
        if "statusCode" in properties:
            assert rendered["status"] == int(properties["statusCode"]), kind  # type: ignore[call-overload]


def test_every_gateway_error_names_its_status_as_the_problem_schema_requires() -> None:
    # The DEFAULT_* fallbacks cannot know the status; every type that reaches them is named above instead.
    responses = gateway_responses()
    for kind, status in DEFAULT_STATUS.items():
        assert responses[kind]["statusCode"] == str(status), kind
        template = responses[kind]["responseTemplates"]["application/json"]  # type: ignore[index]
        assert json.loads(template.replace("$context.error.messageString", '""'))["status"] == status
