"""A request to start a job, as both entry points receive it: `POST /jobs` and the StartJob Lambda.

`parse_job_request` validates it (raising InvalidJobInput, writing nothing); `new_job` is the QUEUED job it
creates. The API's submit path reads: parse, create, start or enqueue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import engine
from .callbacks import parse_callback_url
from .clock import Clock
from .errors import InvalidJobInput
from .job import Job, JobStatus, PollSettings
from .policy import POLL_FIELDS, poll_settings_from
from .providers import Engine, Providers, get_provider
from .settings import Settings

# Step Functions execution names are 1-80 characters of this set. A job id is an execution name, and a
# continued poll loop runs as `<job id>-<n>`, so job ids stop at 64.
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_PROVIDER = "simulated"
# Keys of a start request that are not the provider's input (the shorthand form puts the input beside them).
_REQUEST_KEYS = frozenset({"job_id", "provider", "input", "callback_url"} | POLL_FIELDS)


@dataclass(frozen=True)
class JobRequest:
    """A validated request to start a job."""

    provider: str
    provider_input: dict[str, Any]
    poll: PollSettings
    job_id: str | None = None
    callback_url: str | None = None
    # The poll settings as the request gave them (StartJob derives the same defaults again).
    poll_fields: Mapping[str, Any] = field(default_factory=dict)

    def execution_input(self, job_id: str) -> dict[str, Any]:
        """What the poller's execution starts from (StartJob parses it again)."""
        return {"job_id": job_id, "provider": self.provider, "input": self.provider_input, **self.poll_fields}


def parse_job_request(event: Any, providers: Providers, settings: Settings) -> JobRequest:
    """Validate a start request; raises InvalidJobInput and writes nothing.

    Full form: `{"provider": "simulated", "input": {...}, "wait_seconds": 10, "max_tries": 3,
    "callback_url": "https://..."}` (all but `input` optional).
    Shorthand (the seed's): `{"delay": 20}` is the simulated provider's input with default poll settings.
    """
    if not isinstance(event, dict):
        raise InvalidJobInput(f"the job request must be a JSON object, got {type(event).__name__}")
    job_id = event.get("job_id")
    if job_id is not None and (not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id)):
        raise InvalidJobInput("'job_id' must be 1-64 characters of letters, digits, '-' and '_'")
    provider_name = event.get("provider", DEFAULT_PROVIDER)
    if not isinstance(provider_name, str):
        raise InvalidJobInput(f"'provider' must be a string, got {json.dumps(provider_name)}")
    provider = get_provider(providers, provider_name)
    if "input" in event:
        unknown = sorted(set(event) - _REQUEST_KEYS)
        if unknown:
            raise InvalidJobInput(f"unknown field(s) beside 'input': {', '.join(unknown)}")
        raw_input = event["input"]
    else:
        raw_input = {k: v for k, v in event.items() if k not in _REQUEST_KEYS}
    is_engine = isinstance(provider, Engine)
    poll = poll_settings_from(event, settings, engine=is_engine)
    if poll.notify and not getattr(provider, "can_notify", False):
        raise InvalidJobInput(f"provider {provider_name!r} cannot notify: leave out 'notify'")
    return JobRequest(
        provider=provider_name,
        provider_input=engine.validate_input(provider.validate, raw_input)
        if is_engine
        else provider.validate(raw_input),
        poll=poll,
        job_id=job_id,
        callback_url=parse_callback_url(event["callback_url"])
        if event.get("callback_url") is not None
        else None,
        poll_fields={name: event[name] for name in sorted(POLL_FIELDS) if name in event},
    )


def new_job(
    job_id: str,
    request: JobRequest,
    clock: Clock,
    settings: Settings,
    owner: str = "local",
    request_hash: str | None = None,
) -> Job:
    """The QUEUED job a request creates (not stored yet)."""
    now = clock.now()
    return Job(
        job_id=job_id,
        provider=request.provider,
        request=request.provider_input,
        poll=request.poll,
        status=JobStatus.QUEUED,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=settings.job_ttl_seconds),
        owner=owner,
        callback_url=request.callback_url,
        request_hash=request_hash,
    )
