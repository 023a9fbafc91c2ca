"""The poller ASL is a sound graph, and every placeholder it uses is wired in infra/template.json."""

from __future__ import annotations

import json
from typing import Any

from jobpoll.definition import asl_problems, placeholders, table_properties
from jobpoll.paths import INFRA_TEMPLATE, POLLER_ASL


def _poller() -> dict[str, Any]:
    return json.loads(POLLER_ASL.read_text())  # type: ignore[no-any-return]


def test_poller_asl_has_no_dangling_or_unreachable_states() -> None:
    assert asl_problems(_poller()) == []


def test_asl_problems_names_a_next_to_a_missing_state() -> None:
    definition = _poller()
    definition["States"]["Wait"]["Next"] = "GetJobStatuss"
    assert "Wait goes to 'GetJobStatuss', which is not a state" in asl_problems(definition)


def test_asl_problems_names_an_unreachable_state() -> None:
    definition = _poller()
    definition["States"]["Orphan"] = {"Type": "Succeed"}
    assert "Orphan is never reached from 'StartJob'" in asl_problems(definition)


def test_asl_problems_names_a_state_without_next_or_end() -> None:
    definition = _poller()
    del definition["States"]["Init"]["Next"]
    problems = asl_problems(definition)
    assert "Init has neither Next nor End" in problems
    assert "Wait is never reached from 'StartJob'" in problems  # the loop hangs off Init


def test_asl_problems_looks_inside_parallel_branches() -> None:
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "End": True,
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}],
            }
        },
    }
    assert asl_problems(definition) == ["Both.Branches[0].A goes to 'Nowhere', which is not a state"]


def test_every_placeholder_in_the_asl_has_a_definition_substitution_and_no_more() -> None:
    template = json.loads(INFRA_TEMPLATE.read_text())
    substitutions = template["Resources"]["PollerStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert placeholders(POLLER_ASL.read_text()) == set(substitutions)


def test_each_substitution_is_the_arn_of_the_function_the_placeholder_names() -> None:
    template = json.loads(INFRA_TEMPLATE.read_text())
    substitutions = template["Resources"]["PollerStateMachine"]["Properties"]["DefinitionSubstitutions"]
    for name, value in substitutions.items():
        assert value == {"Fn::GetAtt": [name.removesuffix("FunctionArn"), "Arn"]}


def test_the_emulation_creates_the_table_the_template_declares_minus_its_stack_name() -> None:
    properties = table_properties()
    assert "TableName" not in properties  # a stack parameter; the emulation names its own table
    assert [index["IndexName"] for index in properties["GlobalSecondaryIndexes"]] == [
        "by-owner",
        "by-work-id",
        "by-unfinished",
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
