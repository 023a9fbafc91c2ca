"""The poll policy: how long to wait before each poll and how many polls a job gets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import InvalidJobInput
from .job import PollSettings
from .providers import PollResult
from .settings import Settings


def _positive_int(request: Mapping[str, Any], name: str, default: int, upper: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobInput(f"{name!r} must be a whole number, got {json.dumps(value)}")
    if not 1 <= value <= upper:
        raise InvalidJobInput(f"{name!r} must be between 1 and {upper}, got {value}")
    return value


def poll_settings_from(request: Mapping[str, Any], settings: Settings) -> PollSettings:
    """Poll settings from a request's `wait_seconds` and `max_tries`, defaulting to the settings'."""
    return PollSettings(
        wait_seconds=_positive_int(
            request, "wait_seconds", settings.default_wait_seconds, settings.max_wait_seconds
        ),
        max_tries=_positive_int(request, "max_tries", settings.default_max_tries, settings.max_max_tries),
    )


def next_wait_seconds(poll: PollSettings, result: PollResult | None = None) -> int:
    """Seconds until the next poll. Fixed interval: the seed's behaviour."""
    return poll.wait_seconds
