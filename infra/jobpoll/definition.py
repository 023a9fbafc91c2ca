"""The state machine definition: the ASL in statemachine/, with its `${...}` placeholders filled."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .paths import INFRA_TEMPLATE, POLLER_ASL

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(text: str) -> set[str]:
    """The names of every `${Name}` in `text`."""
    return set(PLACEHOLDER.findall(text))


def render(substitutions: Mapping[str, str], path: Path = POLLER_ASL) -> str:
    """The ASL with every placeholder replaced; raises KeyError naming any left unfilled."""
    text = path.read_text()
    missing = placeholders(text) - set(substitutions)
    if missing:
        raise KeyError(f"no value for placeholder(s) {sorted(missing)} in {path.name}")
    return PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)


def function_arn_placeholder(function_name: str) -> str:
    """`StartJob` -> `StartJobFunctionArn`: how the ASL names a Chalice Lambda's ARN."""
    return f"{function_name}FunctionArn"


def table_properties() -> dict[str, Any]:
    """The job table as infra/template.json declares it (one definition for AWS and the emulation)."""
    template = json.loads(INFRA_TEMPLATE.read_text())
    return dict(template["Resources"]["JobsTable"]["Properties"])
