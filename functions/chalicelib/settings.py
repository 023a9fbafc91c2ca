"""Settings: one frozen dataclass, read from the environment once, defaults in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_WAIT_SECONDS = 10
DEFAULT_MAX_TRIES = 3
DEFAULT_JOB_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_DEADLINE_SECONDS = 24 * 3600
# A poll adds about 13 history events; Standard executions stop at 25,000.
DEFAULT_CONTINUE_AFTER = 1000


@dataclass(frozen=True)
class Settings:
    table_name: str = "jobpoll-jobs"
    state_machine_arn: str = ""
    default_wait_seconds: int = DEFAULT_WAIT_SECONDS
    default_max_tries: int = DEFAULT_MAX_TRIES
    max_wait_seconds: int = 24 * 3600
    max_max_tries: int = 100_000
    default_max_wait_seconds: int = 300
    default_deadline_seconds: int = DEFAULT_DEADLINE_SECONDS
    max_deadline_seconds: int = 365 * 24 * 3600
    default_continue_after: int = DEFAULT_CONTINUE_AFTER
    default_notify_timeout_seconds: int = 3600
    # Queue mode.
    work_queue_name: str = "jobpoll-work"
    work_queue_url: str = ""
    dead_letter_queue_name: str = "jobpoll-work-dlq"
    lease_seconds: int = 60
    report_interval_seconds: float = 1.0
    partial_output_max_chars: int = 16 * 1024
    max_result_chars: int = 300 * 1024
    job_ttl_seconds: int = DEFAULT_JOB_TTL_SECONDS
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from JOBPOLL_* variables; unset ones take the defaults above."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def integer(name: str, default: int) -> int:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {raw!r}") from None

        return cls(
            table_name=env.get("JOBPOLL_TABLE", defaults.table_name),
            state_machine_arn=env.get("JOBPOLL_STATE_MACHINE_ARN", defaults.state_machine_arn),
            default_wait_seconds=integer("JOBPOLL_WAIT_SECONDS", defaults.default_wait_seconds),
            default_max_tries=integer("JOBPOLL_MAX_TRIES", defaults.default_max_tries),
            max_wait_seconds=integer("JOBPOLL_MAX_WAIT_SECONDS", defaults.max_wait_seconds),
            max_max_tries=integer("JOBPOLL_MAX_MAX_TRIES", defaults.max_max_tries),
            job_ttl_seconds=integer("JOBPOLL_JOB_TTL_SECONDS", defaults.job_ttl_seconds),
            default_max_wait_seconds=integer(
                "JOBPOLL_MAX_WAIT_DEFAULT_SECONDS", defaults.default_max_wait_seconds
            ),
            default_deadline_seconds=integer("JOBPOLL_DEADLINE_SECONDS", defaults.default_deadline_seconds),
            default_continue_after=integer("JOBPOLL_CONTINUE_AFTER", defaults.default_continue_after),
            work_queue_name=env.get("JOBPOLL_WORK_QUEUE", defaults.work_queue_name),
            work_queue_url=env.get("JOBPOLL_WORK_QUEUE_URL", defaults.work_queue_url),
            dead_letter_queue_name=env.get("JOBPOLL_DEAD_LETTER_QUEUE", defaults.dead_letter_queue_name),
            lease_seconds=integer("JOBPOLL_LEASE_SECONDS", defaults.lease_seconds),
            log_level=env.get("JOBPOLL_LOG_LEVEL", defaults.log_level).upper(),
        )
