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
    # Merged into the swagger body of the API `chalice package` generates (RestAPI), so that API Gateway
    # owns them with the API (separate GatewayResponse resources would drift from the body).
    rest_api = json.loads(INFRA_TEMPLATE.read_text())["Resources"]["RestAPI"]
    return dict(rest_api["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"])


def test_api_gateways_own_errors_render_as_problem_json() -> None:
    responses = gateway_responses()
    assert set(responses) >= REQUIRED
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
