"""API Gateway's own errors (no route, bad signature, throttling, ...) are problem documents too."""

from __future__ import annotations

import json

from jobpoll.paths import INFRA_TEMPLATE

REQUIRED = {
    "MISSING_AUTHENTICATION_TOKEN",
    "ACCESS_DENIED",
    "REQUEST_TOO_LARGE",
    "DEFAULT_4XX",
    "DEFAULT_5XX",
}


def gateway_responses() -> dict[str, dict[str, object]]:
    resources = json.loads(INFRA_TEMPLATE.read_text())["Resources"]
    return {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::GatewayResponse"
    }


def test_api_gateways_own_errors_render_as_problem_json() -> None:
    responses = gateway_responses()
    assert set(responses) >= REQUIRED
    for kind, properties in responses.items():
        assert properties["RestApiId"] == {"Ref": "RestAPI"}  # the API `chalice package` generates
        headers = properties["ResponseParameters"]
        assert headers["gatewayresponse.header.Content-Type"] == "'application/problem+json'"  # type: ignore[index]
        template = properties["ResponseTemplates"]["application/json"]  # type: ignore[index]
        # API Gateway substitutes the message as a quoted JSON string.
        rendered = json.loads(
            template.replace("$context.error.messageString", json.dumps('a "quoted" message'))
        )
        assert rendered["type"] == "about:blank" and rendered["title"], kind
        if "StatusCode" in properties:
            assert rendered["status"] == int(properties["StatusCode"]), kind  # type: ignore[call-overload]
