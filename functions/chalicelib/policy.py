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
from .providers import PollResult
from .settings import Settings

POLL_FIELDS = frozenset(
    {
        "wait_seconds",
        "max_tries",
        "poll_mode",
        "max_wait_seconds",
        "deadline_seconds",
        "continue_after",
        "notify",
        "notify_timeout_seconds",
        "heartbeat_seconds",
    }
)


def _whole_number(request: Mapping[str, Any], name: str, default: int, upper: int) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobInput(f"{name!r} must be a whole number, got {json.dumps(value)}")
    if not 1 <= value <= upper:
        raise InvalidJobInput(f"{name!r} must be between 1 and {upper}, got {value}")
    return value


def poll_settings_from(request: Mapping[str, Any], settings: Settings) -> PollSettings:
    """Poll settings from a request's poll fields, defaulting to the settings'; raises InvalidJobInput."""
    mode_name = request.get("poll_mode", PollMode.FIXED.value)
    try:
        mode = PollMode(mode_name)
    except ValueError:
        known = ", ".join(m.value for m in PollMode)
        raise InvalidJobInput(f"'poll_mode' must be one of {known}, got {json.dumps(mode_name)}") from None
    wait = _whole_number(request, "wait_seconds", settings.default_wait_seconds, settings.max_wait_seconds)
    max_wait = _whole_number(
        request,
        "max_wait_seconds",
        max(wait, settings.default_max_wait_seconds),
        settings.max_wait_seconds,
    )
    if max_wait < wait:
        raise InvalidJobInput(f"'max_wait_seconds' ({max_wait}) is less than 'wait_seconds' ({wait})")
    notify = request.get("notify", False)
    if not isinstance(notify, bool):
        raise InvalidJobInput(f"'notify' must be true or false, got {json.dumps(notify)}")
    notify_timeout = _whole_number(
        request,
        "notify_timeout_seconds",
        settings.default_notify_timeout_seconds,
        settings.max_deadline_seconds,
    )
    heartbeat = request.get("heartbeat_seconds")
    if heartbeat is not None:
        # Step Functions wants the heartbeat below the timeout.
        heartbeat = _whole_number(request, "heartbeat_seconds", 0, max(1, notify_timeout - 1))
    return PollSettings(
        wait_seconds=wait,
        max_tries=_whole_number(request, "max_tries", settings.default_max_tries, settings.max_max_tries),
        mode=mode,
        max_wait_seconds=max_wait,
        deadline_seconds=_whole_number(
            request, "deadline_seconds", settings.default_deadline_seconds, settings.max_deadline_seconds
        ),
        continue_after=_whole_number(
            request, "continue_after", settings.default_continue_after, settings.max_max_tries
        ),
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
