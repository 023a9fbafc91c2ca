"""The moto patches fail loudly when moto moves what they patch; moto's CloudFormation builds executable
state machines."""

from __future__ import annotations

import inspect
import json
import threading

import pytest
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramRunning, ProgramStopped

from jobpoll import moto_patches
from jobpoll.clocks import VirtualClock
from jobpoll.definition import cfn_state_machine_definition
from jobpoll.emulation import Emulation, resolve_handler


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


def test_executions_of_one_state_machine_parse_its_definition_once_and_keep_their_own_state(
    emulation: Emulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    parses: list[str] = []
    parse = AmazonStateLanguageParser.parse
    monkeypatch.setattr(
        AmazonStateLanguageParser, "parse", staticmethod(lambda text: parses.append(text) or parse(text))
    )
    monkeypatch.setattr(moto_patches, "_programs", {})
    succeeded = emulation.start({"delay": 20, "wait_seconds": 10}, name="parsed-once-a")
    exhausted = emulation.start({"delay": 60, "wait_seconds": 10, "max_tries": 2}, name="parsed-once-b")

    assert emulation.wait(succeeded)["status"] == "SUCCEEDED"
    assert emulation.wait(exhausted)["status"] == "FAILED"
    assert len(parses) == 1
    assert emulation.runtime.store.get("parsed-once-a").status.value == "COMPLETE"
    assert emulation.runtime.store.get("parsed-once-b").try_count == 2


def test_dynamodb_attribute_values_of_every_type_come_back_as_stored(emulation: Emulation) -> None:
    dynamodb = emulation.client("dynamodb")
    dynamodb.create_table(
        TableName="wire-shapes",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = {
        "id": {"S": "one"},
        "n": {"N": "12.5"},
        "yes": {"BOOL": True},
        "nothing": {"NULL": True},
        "names": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2"]},
        "blob": {"B": b"\x00\xffbytes"},
        "blobs": {"BS": [b"\x01", b"\x02"]},
        "map": {"M": {"s": {"S": "x"}, "l": {"L": [{"N": "1"}, {"B": b"\x03"}, {"M": {}}]}}},
        "list": {"L": [{"S": "y"}, {"BOOL": False}]},
    }
    dynamodb.put_item(TableName="wire-shapes", Item=item)

    got = dynamodb.get_item(TableName="wire-shapes", Key={"id": {"S": "one"}})["Item"]
    queried = dynamodb.query(
        TableName="wire-shapes",
        KeyConditionExpression="id = :id",
        ExpressionAttributeValues={":id": {"S": "one"}},
    )["Items"]

    assert got == item
    assert queried == [item]
    assert dynamodb.get_item(
        TableName="wire-shapes",
        Key={"id": {"S": "one"}},
        ProjectionExpression="#m.s",
        ExpressionAttributeNames={"#m": "map"},
    )["Item"]["map"]["M"]["s"] == {"S": "x"}


def test_an_event_on_the_bus_reaches_the_rules_that_match_it_and_never_a_scheduled_rule(
    emulation: Emulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.events.models import events_backends

    from chalicelib.providers.simulated import SimulatedProvider

    invoked: list[str] = []
    monkeypatch.setattr(
        LambdaSimpleBackend, "invoke", lambda self, arn, *args: invoked.append(arn.split(":")[-1])
    )
    rules = events_backends[DEFAULT_ACCOUNT_ID][emulation.region].event_buses["default"].rules
    scheduled = [rule for rule in rules.values() if rule.scheduled_expression]
    patterned = [
        rule for rule in rules.values() if "Simulated" in json.dumps(rule.event_pattern.get_pattern())
    ]
    event = {
        "source": SimulatedProvider.event_source,
        "detail-type": SimulatedProvider.event_detail_type,
        "detail": {"work_id": "no-such-work", "state": "SUCCEEDED"},
        "time": 0,
    }

    for rule in [*scheduled, *patterned]:
        rule.send_to_targets(event)

    assert scheduled and patterned
    assert len(invoked) == len(patterned)
    assert not any("Reconcile" in name for name in invoked)


def _running_environment() -> Environment:
    environment = Environment.__new__(Environment)  # only its program state is under test
    environment._state_mutex = threading.RLock()
    environment._program_state = ProgramRunning()
    environment._frames = []
    environment.program_state_event = threading.Event()
    return environment


def test_a_stopped_execution_stays_aborted_when_its_interrupted_state_raises_afterwards() -> None:
    error = ExecutionFailedEventDetails(error="States.Runtime", cause="IndexError(pop from empty list)")
    unpatched = _running_environment()
    unpatched.set_stop(stop_date=None, cause=None, error=None)
    unpatched.set_error(error)
    assert isinstance(unpatched.program_state(), ProgramError)  # moto's race: a stop turned into a failure

    with moto_patches.service_patches():
        stopped = _running_environment()
        stopped.set_stop(stop_date=None, cause=None, error=None)
        stopped.set_error(error)
        failing = _running_environment()
        failing.set_error(error)
    assert isinstance(stopped.program_state(), ProgramStopped)
    assert isinstance(failing.program_state(), ProgramError)  # a running execution still fails
