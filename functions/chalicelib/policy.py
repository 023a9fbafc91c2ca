"""The poll policy: how long to wait before each poll, how many polls a job gets, and its deadline.

Fixed: every wait is `wait_seconds` (the seed's behaviour). Adaptive: the provider's hint (Retry-After, ETA)
when it gives one, otherwise capped exponential backoff with full jitter starting from `wait_seconds`.
Either way no poll is scheduled past the job's deadline.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .errors import InvalidJobInput
from .job import Job, PollMode, PollSettings
from .providers import PollResult, integral
from .settings import Settings


def poll_field_schemas(settings: Settings) -> dict[str, dict[str, Any]]:
    """The poll fields of a job request as JSON Schema: `poll_settings_from` validates by these bounds and
    defaults, and the OpenAPI document shows them (one description of the request)."""

    def whole(maximum: int, default: int | None, description: str) -> dict[str, Any]:
        schema = {"type": "integer", "minimum": 1, "maximum": maximum, "description": description}
        return schema if default is None else {**schema, "default": default}

    return {
        "wait_seconds": whole(
            settings.max_wait_seconds, settings.default_wait_seconds, "Seconds before each poll"
        ),
        "max_tries": whole(
            settings.max_max_tries,
            settings.default_max_tries,
            "Polls allowed before MaxTriesExceeded (an engine's job: up to the maximum by default, so that "
            "its deadline ends it)",
        ),
        "poll_mode": {
            "type": "string",
            "enum": [mode.value for mode in PollMode],
            "default": PollMode.FIXED.value,
        },
        "max_wait_seconds": whole(
            settings.max_wait_seconds,
            min(settings.default_max_wait_seconds, settings.max_wait_seconds),
            "Adaptive: the longest wait (never below wait_seconds)",
        ),
        "deadline_seconds": whole(
            settings.max_deadline_seconds,
            settings.default_deadline_seconds,
            "The job fails with DeadlineExceeded when still running this long after it started",
        ),
        "continue_after": whole(
            settings.max_max_tries,
            settings.default_continue_after,
            "Polls per execution before the loop continues in a new one",
        ),
        "notify": {
            "type": "boolean",
            "default": False,
            "description": "Wait for the provider's notification",
        },
        "notify_timeout_seconds": whole(
            settings.max_deadline_seconds,
            settings.default_notify_timeout_seconds,
            "How long to wait for the notification",
        ),
        "heartbeat_seconds": {
            **whole(
                settings.max_deadline_seconds,
                None,
                "Heartbeats expected while waiting; at or above notify_timeout_seconds it is lowered to "
                "just under it",
            ),
            "type": ["integer", "null"],
        },
    }


POLL_FIELDS = frozenset(poll_field_schemas(Settings()))


def _whole_number(
    request: Mapping[str, Any], name: str, schema: Mapping[str, Any], default: int | None = None
) -> int:
    value = request.get(name, schema.get("default") if default is None else default)
    value = integral(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobInput(f"{name!r} must be a whole number, got {json.dumps(value)}")
    if not schema["minimum"] <= value <= schema["maximum"]:
        raise InvalidJobInput(
            f"{name!r} must be between {schema['minimum']} and {schema['maximum']}, got {value}"
        )
    return value


def poll_settings_from(
    request: Mapping[str, Any], settings: Settings, *, engine: bool = False
) -> PollSettings:
    """Poll settings from a request's poll fields, defaulting to the settings'; raises InvalidJobInput.

    An engine's job polls until the engine answers or its deadline passes: its tries default to the maximum.
    """
    fields = poll_field_schemas(settings)
    mode_name = request.get("poll_mode", fields["poll_mode"]["default"])
    if mode_name not in fields["poll_mode"]["enum"]:
        known = ", ".join(fields["poll_mode"]["enum"])
        raise InvalidJobInput(f"'poll_mode' must be one of {known}, got {json.dumps(mode_name)}")
    wait = _whole_number(request, "wait_seconds", fields["wait_seconds"])
    max_wait = max(wait, _whole_number(request, "max_wait_seconds", fields["max_wait_seconds"]))
    notify = request.get("notify", False)
    if not isinstance(notify, bool):
        raise InvalidJobInput(f"'notify' must be true or false, got {json.dumps(notify)}")
    notify_timeout = _whole_number(request, "notify_timeout_seconds", fields["notify_timeout_seconds"])
    heartbeat = request.get("heartbeat_seconds")
    if heartbeat is not None:
        # Step Functions wants the heartbeat below the timeout.
        heartbeat = min(
            _whole_number(request, "heartbeat_seconds", fields["heartbeat_seconds"]),
            max(1, notify_timeout - 1),
        )
    tries = fields["max_tries"]
    return PollSettings(
        wait_seconds=wait,
        max_tries=_whole_number(request, "max_tries", tries, tries["maximum"] if engine else None),
        mode=PollMode(mode_name),
        max_wait_seconds=max_wait,
        deadline_seconds=_whole_number(request, "deadline_seconds", fields["deadline_seconds"]),
        continue_after=_whole_number(request, "continue_after", fields["continue_after"]),
        notify=notify,
        notify_timeout_seconds=notify_timeout,
        heartbeat_seconds=heartbeat,
    )


def _jitter(job_id: str, try_count: int) -> random.Random:
    # Seeded by job and try: the same poll gets the same wait when retried, and tests are repeatable.
    return random.Random(f"{job_id}/{try_count}")


def next_wait_seconds(job: Job, result: PollResult | None = None) -> int:
    """Whole seconds until the next poll of `job`, after `job.try_count` polls (before the deadline)."""
    poll = job.poll
    if poll.mode is PollMode.FIXED:
        return poll.wait_seconds
    if result is not None and result.retry_after_seconds is not None:
        return max(1, min(poll.max_wait_seconds, round(result.retry_after_seconds)))
    ceiling = min(poll.max_wait_seconds, poll.wait_seconds * 2 ** max(job.try_count - 1, 0))
    return max(1, round(_jitter(job.job_id, job.try_count).uniform(0, ceiling)))


def clamp_to_deadline(job: Job, at: datetime, now: datetime) -> tuple[datetime, bool]:
    """The poll time to use: `at`, not before `now` and not after the job's deadline; and whether clamped."""
    when = max(at, now)
    if when > job.deadline:
        return max(job.deadline, now), True
    return when, False


def poll_time(job: Job, now: datetime, result: PollResult | None = None) -> tuple[datetime, bool]:
    """When to poll `job` next under its policy, clamped to its deadline."""
    return clamp_to_deadline(job, now + timedelta(seconds=next_wait_seconds(job, result)), now)
