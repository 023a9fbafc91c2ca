"""How infra/template.json becomes the merge template; how the packaged template is checked and adapted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.settings import Settings
from jobpoll.errors import PackageError
from jobpoll.package import check_packaged, render_merge_template, with_code_location, without_api_gateway
from jobpoll.paths import POLLER_ASL


def test_the_merge_template_inlines_the_poller_asl_as_the_state_machine_definition() -> None:
    machine = render_merge_template()["Resources"]["PollerStateMachine"]
    assert machine["Properties"]["Definition"] == json.loads(POLLER_ASL.read_text())
    assert "DefinitionString" not in machine["Properties"]


def test_rendering_refuses_an_asl_with_a_dangling_next(tmp_path: Any) -> None:
    broken = json.loads(POLLER_ASL.read_text())
    broken["States"]["Wait"]["Next"] = "Nowhere"
    asl = tmp_path / "broken.asl.json"
    asl.write_text(json.dumps(broken))
    template = {
        "Resources": {
            "M": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Metadata": {"jobpoll": {"DefinitionFile": str(asl)}},
                "Properties": {},
            }
        }
    }
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    with pytest.raises(PackageError, match="Wait goes to 'Nowhere'"):
        render_merge_template(path)


def _state_machine(definition: dict[str, Any], substitutions: dict[str, Any]) -> dict[str, Any]:
    return {
        "Resources": {
            "M": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"Definition": definition, "DefinitionSubstitutions": substitutions},
            }
        }
    }


def test_check_packaged_names_a_placeholder_without_substitution() -> None:
    template = _state_machine(
        {"Resource": "${AFunctionArn}", "Other": "${BFunctionArn}"}, {"AFunctionArn": "x"}
    )
    with pytest.raises(PackageError, match="no DefinitionSubstitutions for \\['BFunctionArn'\\]"):
        check_packaged(template)


def test_check_packaged_names_an_unused_substitution() -> None:
    template = _state_machine({"Resource": "${AFunctionArn}"}, {"AFunctionArn": "x", "Stale": "y"})
    with pytest.raises(PackageError, match="\\['Stale'\\] are not used"):
        check_packaged(template)


def test_check_packaged_names_an_override_of_a_function_chalice_did_not_generate() -> None:
    template = {"Resources": {"StartJob": {"Properties": {"Role": "r"}}}}
    with pytest.raises(PackageError, match="adds properties to StartJob"):
        check_packaged(template)


def test_code_location_points_every_function_at_the_uploaded_bundle() -> None:
    sam = {
        "Resources": {
            "F": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "./deployment.zip"}}
        }
    }
    located = with_code_location(sam, "bucket-1", "stack/deployment-abc.zip")
    assert located["Resources"]["F"]["Properties"]["CodeUri"] == {
        "Bucket": "bucket-1",
        "Key": "stack/deployment-abc.zip",
    }
    assert sam["Resources"]["F"]["Properties"]["CodeUri"] == "./deployment.zip"  # input untouched


def test_without_api_gateway_drops_the_api_and_whatever_refers_to_it() -> None:
    sam = {
        "Resources": {
            "RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {}},
            "APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {}},
            "APIHandlerInvokePermission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": {"Ref": "APIHandler"},
                    "SourceArn": {"Fn::Sub": "arn:aws:execute-api:::${RestAPI}/*"},
                },
            },
            "JobsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        },
        "Outputs": {
            "EndpointURL": {"Value": {"Fn::Sub": "https://${RestAPI}.execute-api/api/"}},
            "RestAPIId": {"Value": {"Ref": "RestAPI"}},
            "APIHandlerArn": {"Value": {"Fn::GetAtt": ["APIHandler", "Arn"]}},
        },
    }
    stripped = without_api_gateway(sam)
    assert set(stripped["Resources"]) == {"APIHandler", "JobsTable"}
    assert set(stripped["Outputs"]) == {"APIHandlerArn"}


def test_rendering_fills_in_the_queue_workers_limits_from_the_settings() -> None:
    template = render_merge_template(settings=Settings(queue_job_max_seconds=100))
    assert "jobpoll:Setting" not in json.dumps([template["Resources"], template["Globals"]])
    assert template["Resources"]["RunQueuedJob"]["Properties"]["Timeout"] == 110
    assert template["Resources"]["WorkQueue"]["Properties"]["VisibilityTimeout"] == 660
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["JOBPOLL_QUEUE_JOB_MAX_SECONDS"] == 100
