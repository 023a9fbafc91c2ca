"""Settings: one frozen dataclass, read from the environment once, defaults in one place."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .auth import AUTH_IAM, AUTH_MODES

DEFAULT_WAIT_SECONDS = 10
DEFAULT_MAX_TRIES = 3
DEFAULT_JOB_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_DEADLINE_SECONDS = 24 * 3600
# A poll adds about 13 history events; Standard executions stop at 25,000.
DEFAULT_CONTINUE_AFTER = 1000
# Results larger than this (JSON bytes) go to the results bucket: a DynamoDB item holds at most 400 KB.
DEFAULT_RESULT_THRESHOLD_BYTES = 256 * 1024
# Queue mode: the longest job a worker runs (seed 003: "ten seconds to a few minutes"). The worker's Lambda
# timeout, its lease and the work queue's visibility timeout all follow from it (Settings below).
DEFAULT_QUEUE_JOB_MAX_SECONDS = 600
LAMBDA_MAX_TIMEOUT_SECONDS = 900
# AWS advises a source queue's visibility timeout of at least six times the function's timeout.
VISIBILITY_TIMEOUTS_PER_WORKER_TIMEOUT = 6
LOCAL_MODE = "local"
DEPLOYED_MODE = "deployed"


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
    # The longest queue-mode job: the worker fails a job still running after this (QueueJobTimedOut).
    queue_job_max_seconds: int = DEFAULT_QUEUE_JOB_MAX_SECONDS
    # The worker's event source mapping (read when `chalice package` imports app.py); its concurrency is the
    # template's WorkerConcurrency parameter.
    worker_batch_size: int = 1
    report_interval_seconds: float = 1.0
    partial_output_max_chars: int = 16 * 1024
    # Large results: objects in this bucket above this size (JSON bytes); the API redirects to a presigned
    # URL valid for `result_url_seconds`. No bucket: results stay on the job (a DynamoDB item holds 400 KB).
    results_bucket: str = ""
    result_threshold_bytes: int = DEFAULT_RESULT_THRESHOLD_BYTES
    result_url_seconds: int = 300
    # Share links of results: signed (HMAC-SHA256) with this key, or the one in the SSM SecureString
    # parameter named here (read on first use, by the API only). Neither: no share links.
    share_key: str = field(default="", repr=False)
    share_key_parameter: str = ""
    default_share_seconds: int = 3600
    # The providers this stack runs (the EnabledProviders stack parameter); empty: every registered one.
    enabled_providers: tuple[str, ...] = ()
    job_ttl_seconds: int = DEFAULT_JOB_TTL_SECONDS
    log_level: str = "INFO"
    # The CloudWatch namespace of the metrics (chalicelib/metrics.py); the template makes it the stack's.
    metrics_namespace: str = "jobpoll"
    # "deployed" (callbacks only to public addresses) or "local" (`chalice local`: callbacks may go to
    # loopback).
    mode: str = DEPLOYED_MODE
    # Who may call the API (chalicelib/auth.py): "iam" (SigV4), "jwt" (bearer tokens of `jwt_issuer` for
    # `jwt_audience`, keys from `jwt_jwks_url` or the issuer's OpenID configuration) or "cognito" (the same
    # with a Cognito user pool's access tokens, whose app client is `jwt_audience`).
    auth: str = AUTH_IAM
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_jwks_url: str = ""
    # Per-caller limits (0: none): API requests per second, and jobs not finished yet.
    max_requests_per_second: int = 0
    max_jobs_in_flight: int = 0
    # The key that signs callbacks (HMAC-SHA256). Empty: callbacks are refused at submission.
    callback_secret: str = field(default="", repr=False)
    # Or: the name of an SSM SecureString parameter holding it, read once per cold start (deployed stages).
    callback_secret_parameter: str = ""
    callback_max_attempts: int = 5
    # The http provider's profiles (base URLs and the headers that carry credentials), JSON: given directly
    # (local stages), or the name of an SSM SecureString parameter holding it, read on first use.
    http_profiles: str = field(default="", repr=False)
    http_profiles_parameter: str = ""
    # The function that delivers callbacks (invoked asynchronously, so no poll or API request waits on a
    # receiver); empty: deliver in the finishing process itself.
    callback_function: str = ""
    callback_backoff_seconds: int = 1
    callback_timeout_seconds: int = 5
    max_body_bytes: int = 64 * 1024
    # Retry-After for a job whose next poll time is not known yet (queued).
    default_retry_after_seconds: int = 1
    # Queue-mode jobs report progress about once a second: clients look every 2 s.
    queue_retry_after_seconds: int = 2
    # The local stack's `--speed` (local mode only): time runs `clock_speed` times faster than real time
    # since `clock_origin` (ISO-8601 UTC), the same for the API under `chalice local` and the emulation.
    clock_speed: float = 1.0
    clock_origin: str = ""
    # The reconciler: how often a job whose run was lost is resumed before it fails (ResumesExhausted), how
    # long an unfinished job goes without an update before it looks at it, and how many jobs per run.
    max_resumes: int = 3
    reconcile_after_seconds: int = 120
    reconcile_batch_size: int = 200

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ValueError(f"JOBPOLL_AUTH must be one of {', '.join(AUTH_MODES)}, got {self.auth!r}")
        if not self.clock_speed > 0:
            raise ValueError(f"JOBPOLL_CLOCK_SPEED must be positive, got {self.clock_speed!r}")
        if self.clock_speed != 1 and not self.local_mode:
            raise ValueError("JOBPOLL_CLOCK_SPEED applies only with JOBPOLL_MODE=local")
        if self.queue_job_max_seconds < 1 or self.worker_timeout_seconds > LAMBDA_MAX_TIMEOUT_SECONDS:
            longest = LAMBDA_MAX_TIMEOUT_SECONDS - LAMBDA_MAX_TIMEOUT_SECONDS // 11
            raise ValueError(
                f"JOBPOLL_QUEUE_JOB_MAX_SECONDS must be from 1 to {longest} (the worker's Lambda timeout, "
                f"{LAMBDA_MAX_TIMEOUT_SECONDS} s at most, adds a tenth), got {self.queue_job_max_seconds}"
            )

    @property
    def worker_timeout_seconds(self) -> int:
        """RunQueuedJob's Lambda timeout: the longest job plus a tenth (at least 2 s) for the worker's own
        writes after it stops the job."""
        return self.queue_job_max_seconds + max(2, self.queue_job_max_seconds // 10)

    @property
    def lease_seconds(self) -> int:
        """A worker's lease on its job, renewed at each report: as long as the worker can live, so no other
        delivery takes a job over from a live worker."""
        return self.worker_timeout_seconds

    @property
    def work_queue_visibility_timeout_seconds(self) -> int:
        """The work queue's visibility timeout: a message of a dead worker returns after its lease lapsed."""
        return VISIBILITY_TIMEOUTS_PER_WORKER_TIMEOUT * self.worker_timeout_seconds

    @property
    def local_mode(self) -> bool:
        return self.mode == LOCAL_MODE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from JOBPOLL_* variables; unset ones take the defaults above."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def parsed(name: str, default: Any, kind: Callable[[str], Any], what: str) -> Any:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name} must be {what}, got {raw!r}") from None

        def integer(name: str, default: int) -> int:
            return int(parsed(name, default, int, "an integer"))

        def number(name: str, default: float) -> float:
            return float(parsed(name, default, float, "a number"))

        mode = env.get("JOBPOLL_MODE", defaults.mode).strip().lower() or defaults.mode
        if mode not in (LOCAL_MODE, DEPLOYED_MODE):
            raise ValueError(f"JOBPOLL_MODE must be {LOCAL_MODE!r} or {DEPLOYED_MODE!r}, got {mode!r}")
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
            queue_job_max_seconds=integer("JOBPOLL_QUEUE_JOB_MAX_SECONDS", defaults.queue_job_max_seconds),
            worker_batch_size=integer("JOBPOLL_WORKER_BATCH_SIZE", defaults.worker_batch_size),
            log_level=env.get("JOBPOLL_LOG_LEVEL", defaults.log_level).upper(),
            metrics_namespace=env.get("JOBPOLL_METRICS_NAMESPACE") or defaults.metrics_namespace,
            mode=mode,
            auth=env.get("JOBPOLL_AUTH", defaults.auth).strip().lower() or defaults.auth,
            jwt_issuer=env.get("JOBPOLL_JWT_ISSUER", defaults.jwt_issuer),
            jwt_audience=env.get("JOBPOLL_JWT_AUDIENCE", defaults.jwt_audience),
            jwt_jwks_url=env.get("JOBPOLL_JWT_JWKS_URL", defaults.jwt_jwks_url),
            max_requests_per_second=integer(
                "JOBPOLL_MAX_REQUESTS_PER_SECOND", defaults.max_requests_per_second
            ),
            max_jobs_in_flight=integer("JOBPOLL_MAX_JOBS_IN_FLIGHT", defaults.max_jobs_in_flight),
            callback_secret=env.get("JOBPOLL_CALLBACK_SECRET", defaults.callback_secret),
            callback_secret_parameter=env.get(
                "JOBPOLL_CALLBACK_SECRET_PARAMETER", defaults.callback_secret_parameter
            ),
            http_profiles=env.get("JOBPOLL_HTTP_PROFILES", defaults.http_profiles),
            http_profiles_parameter=env.get(
                "JOBPOLL_HTTP_PROFILES_PARAMETER", defaults.http_profiles_parameter
            ),
            callback_max_attempts=integer("JOBPOLL_CALLBACK_MAX_ATTEMPTS", defaults.callback_max_attempts),
            callback_function=env.get("JOBPOLL_CALLBACK_FUNCTION", defaults.callback_function),
            callback_backoff_seconds=integer(
                "JOBPOLL_CALLBACK_BACKOFF_SECONDS", defaults.callback_backoff_seconds
            ),
            callback_timeout_seconds=integer(
                "JOBPOLL_CALLBACK_TIMEOUT_SECONDS", defaults.callback_timeout_seconds
            ),
            max_body_bytes=integer("JOBPOLL_MAX_BODY_BYTES", defaults.max_body_bytes),
            results_bucket=env.get("JOBPOLL_RESULTS_BUCKET", defaults.results_bucket),
            result_threshold_bytes=integer("JOBPOLL_RESULT_THRESHOLD_BYTES", defaults.result_threshold_bytes),
            result_url_seconds=integer("JOBPOLL_RESULT_URL_SECONDS", defaults.result_url_seconds),
            share_key=env.get("JOBPOLL_SHARE_KEY", defaults.share_key),
            share_key_parameter=env.get("JOBPOLL_SHARE_KEY_PARAMETER", defaults.share_key_parameter),
            default_share_seconds=integer("JOBPOLL_SHARE_SECONDS", defaults.default_share_seconds),
            enabled_providers=tuple(
                name.strip() for name in env.get("JOBPOLL_ENABLED_PROVIDERS", "").split(",") if name.strip()
            ),
            default_retry_after_seconds=integer(
                "JOBPOLL_DEFAULT_RETRY_AFTER_SECONDS", defaults.default_retry_after_seconds
            ),
            clock_speed=number("JOBPOLL_CLOCK_SPEED", defaults.clock_speed),
            clock_origin=env.get("JOBPOLL_CLOCK_ORIGIN", defaults.clock_origin),
            max_resumes=integer("JOBPOLL_MAX_RESUMES", defaults.max_resumes),
            reconcile_after_seconds=integer(
                "JOBPOLL_RECONCILE_AFTER_SECONDS", defaults.reconcile_after_seconds
            ),
        )
