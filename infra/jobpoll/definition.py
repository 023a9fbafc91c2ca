"""The state machine definition (the ASL in statemachine/: its `${...}` placeholders, its graph) and the
job table's declaration."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .paths import INFRA_TEMPLATE

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    """The names of every `${Name}` in `text`."""
    return set(PLACEHOLDER.findall(text))


def cfn_state_machine_definition(properties: Mapping[str, Any]) -> str:
    """The definition CloudFormation would create from an `AWS::StepFunctions::StateMachine`'s properties:
    `Definition` (or `DefinitionString`) with every `${Name}` of `DefinitionSubstitutions` replaced."""
    definition = properties.get("Definition")
    text = json.dumps(definition) if definition is not None else str(properties.get("DefinitionString", ""))
    for name, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + name + "}", str(value))
    return text


def table_properties(template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The job table as infra/template.json (or `template`) declares it (one definition for AWS and the
    emulation)."""
    template = template or json.loads(INFRA_TEMPLATE.read_text())
    properties = dict(template["Resources"]["JobsTable"]["Properties"])
    properties.pop("TableName", None)  # a stack parameter; the emulation names the table itself
    return properties


def _function_events(kind: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """The events of type `kind` infra/template.json gives functions: event name -> (function, properties)."""
    template = json.loads(INFRA_TEMPLATE.read_text())
    events = {}
    for function, resource in template["Resources"].items():
        for name, source in (resource.get("Properties", {}).get("Events") or {}).items():
            if source.get("Type") == kind:
                events[name] = (function, source["Properties"])
    return events


def event_rules() -> dict[str, tuple[str, dict[str, Any]]]:
    """The EventBridge rules infra/template.json gives functions: rule name -> (function, event pattern)."""
    return {name: (fn, props["Pattern"]) for name, (fn, props) in _function_events("EventBridgeRule").items()}


def scheduled_rules() -> dict[str, tuple[str, str]]:
    """The schedules infra/template.json gives functions: rule name -> (function, schedule expression)."""
    return {name: (fn, props["Schedule"]) for name, (fn, props) in _function_events("Schedule").items()}


def _transitions(state: Mapping[str, Any]) -> list[str]:
    targets = [state[key] for key in ("Next", "Default") if key in state]
    targets += [choice["Next"] for choice in state.get("Choices", []) if "Next" in choice]
    targets += [catcher["Next"] for catcher in state.get("Catch", []) if "Next" in catcher]
    return targets


def asl_problems(definition: Mapping[str, Any], where: str = "") -> list[str]:
    """What is wrong with an ASL graph that the linters miss: dangling or missing transitions, unreachable
    states (in Parallel branches and Map iterators too). Empty when the graph is sound."""
    problems: list[str] = []
    states: Mapping[str, Any] = definition.get("States", {})
    start = definition.get("StartAt")
    if start not in states:
        problems.append(f"{where}StartAt names {start!r}, which is not a state")
    for name, state in states.items():
        kind = state.get("Type")
        for target in _transitions(state):
            if target not in states:
                problems.append(f"{where}{name} goes to {target!r}, which is not a state")
        ends = kind in ("Succeed", "Fail", "Choice") or state.get("End") is True
        if not ends and "Next" not in state:
            problems.append(f"{where}{name} has neither Next nor End")
        for index, branch in enumerate(state.get("Branches", [])):
            problems += asl_problems(branch, f"{where}{name}.Branches[{index}].")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                problems += asl_problems(state[key], f"{where}{name}.{key}.")
    reached: set[str] = set()
    pending: list[str] = [str(start)] if start in states else []
    while pending:
        current = pending.pop()
        if current in reached:
            continue
        reached.add(current)
        pending += [target for target in _transitions(states[current]) if target in states]
    problems += [f"{where}{name} is never reached from {start!r}" for name in states if name not in reached]
    return problems
