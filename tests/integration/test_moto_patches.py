"""The moto patches still find their targets, and moto's CloudFormation builds executable state machines."""

from __future__ import annotations

from jobpoll.moto_patches import cfn_state_machine_definition, check_patch_targets


def test_every_patched_moto_internal_is_where_the_patches_expect_it() -> None:
    check_patch_targets()  # raises MotoMoved naming what moved


def test_a_cloudformation_definition_gets_its_substitutions_like_cloudformation_does() -> None:
    properties = {
        "Definition": {"States": {"A": {"Parameters": {"FunctionName": "${AFunctionArn}"}}}},
        "DefinitionSubstitutions": {"AFunctionArn": "arn:aws:lambda:us-east-1:1:function:a"},
    }
    assert '"FunctionName": "arn:aws:lambda:us-east-1:1:function:a"' in cfn_state_machine_definition(
        properties
    )


def test_a_definition_string_is_used_as_given() -> None:
    assert cfn_state_machine_definition({"DefinitionString": '{"StartAt": "A"}'}) == '{"StartAt": "A"}'
