"""The moto patches fail loudly when moto moves what they patch; moto's CloudFormation builds executable
state machines."""

from __future__ import annotations

import inspect

import pytest

from jobpoll import moto_patches
from jobpoll.clocks import VirtualClock
from jobpoll.definition import cfn_state_machine_definition
from jobpoll.emulation import resolve_handler


def test_every_patched_moto_internal_is_where_the_patches_expect_it() -> None:
    moto_patches.check_patch_targets()


def test_every_patch_goes_through_a_target_that_check_patch_targets_checks() -> None:
    source = inspect.getsource(moto_patches)
    # One place replaces anything (`_Target.patch`), and a `_Target` is made only by `_target`, which
    # registers it: so no patch escapes the check.
    assert source.count("mock.patch") == 1
    assert source.count("_Target(") == 1
    assert source.count("setattr(") == 0
    assert {(target.owner, target.name) for target in moto_patches._TARGETS} >= {
        (moto_patches.LambdaSimpleBackend, "invoke"),
        (moto_patches.WaitFunction, "_wait_interval"),
        (moto_patches.retrier_decl, "time"),
    }


def test_a_moved_target_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    monkeypatch.delattr(WaitFunction, "_wait_interval")
    with pytest.raises(moto_patches.MotoMoved, match=r"WaitFunction\._wait_interval is gone"):
        moto_patches.check_patch_targets()


def test_a_reshaped_target_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", lambda self, name, body: None)
    with pytest.raises(moto_patches.MotoMoved, match=r"LambdaSimpleBackend\.invoke"):
        moto_patches.check_patch_targets()


def test_the_patches_cannot_be_installed_twice() -> None:
    with (
        moto_patches.emulation_patches(VirtualClock(), resolve_handler),
        pytest.raises(RuntimeError, match="installed already"),
        moto_patches.emulation_patches(VirtualClock(), resolve_handler),
    ):
        pass


def test_the_patches_are_removed_on_exit() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    original = LambdaSimpleBackend.invoke
    with moto_patches.emulation_patches(VirtualClock(), resolve_handler):
        assert LambdaSimpleBackend.invoke is not original
    assert LambdaSimpleBackend.invoke is original


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


def test_dynamodb_item_writes_are_serialised_while_atomic_writes_are_on() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.put_item
    with moto_patches.atomic_dynamodb_writes():
        assert DynamoDBBackend.put_item is not original
        with moto_patches.atomic_dynamodb_writes():  # nested: wrapped once
            assert DynamoDBBackend.put_item.__wrapped__ is original  # type: ignore[attr-defined]
    assert DynamoDBBackend.put_item is original
