"""Named domain errors.

Lambda handlers let these propagate: the Lambda runtime reports the class name as `errorType`, which
Step Functions uses as the error name, so the ASL's `ErrorEquals` names these same classes.
"""

from __future__ import annotations

from typing import Any


class JobPollError(Exception):
    """Base of every jobpoll error."""

    @property
    def code(self) -> str:
        return type(self).__name__


class InvalidJobInput(JobPollError):
    """The request to start a job is malformed; nothing was stored."""


class JobNotFound(JobPollError):
    """No job has this id."""


class ProviderNotFound(JobPollError):
    """No provider has this name."""


class JobAlreadyExists(JobPollError):
    """A job with this id exists already."""


class ConcurrentUpdate(JobPollError):
    """Another writer changed the job first; re-read and try again. `current` is the job as that writer left
    it, where the failed write returned it (then no re-read is needed)."""

    def __init__(self, message: str, current: Any = None) -> None:
        super().__init__(message)
        self.current = current


class IllegalTransition(JobPollError):
    """The job's status does not allow the requested change (a finished job never changes)."""


class ProviderError(JobPollError):
    """The provider could not do what was asked."""


class ProviderUnavailable(ProviderError):
    """A transient provider failure: retry later."""


class ProviderRefused(ProviderError):
    """The service refused a request with a client error (a 4xx other than 429): retrying will not help."""


class UnsafeProviderUrl(ProviderError):
    """A URL outside the provider profile's base_url, or one whose host jobpoll may not reach (SSRF)."""


class ProviderResponseTooLarge(ProviderError):
    """The service answered with a body larger than the provider reads."""


class MaxTriesExceeded(JobPollError):
    """The job was still running after the last allowed poll."""


class ProviderJobFailed(JobPollError):
    """The provider reported that the work failed."""


class JobGone(JobPollError):
    """The job (or its result) existed but has expired or been deleted."""


class JobNotFinished(JobPollError):
    """The job has no result yet: it is still running."""


class JobAlreadyFinished(JobPollError):
    """A cancel lost to the job finishing first; `job` is the state that won."""

    def __init__(self, message: str, job: Any = None) -> None:
        super().__init__(message)
        self.job = job


class IdempotencyKeyReused(JobPollError):
    """The Idempotency-Key was used before with a different request body."""


class InvalidRequest(JobPollError):
    """The HTTP request is malformed (bad JSON, a bad query parameter, a bad page token)."""


class PayloadTooLarge(JobPollError):
    """The request body is larger than the API accepts."""


class NotAuthenticated(JobPollError):
    """The caller's identity is missing or not recognised (no token, or one expired or forged)."""


class MissingScope(JobPollError):
    """The caller is known but its token does not grant the scope this request needs."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"this request needs the scope {scope!r}")
        self.scope = scope


class TooManyRequests(JobPollError):
    """The caller is over one of its limits (requests per second, jobs in flight)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShareLinkInvalid(JobPollError):
    """A share link that is malformed or not signed with this API's share key (forged or altered)."""


class ShareLinkRevoked(JobPollError):
    """The job's owner revoked this share link."""


class ShareLinkExpired(JobPollError):
    """The share link is past its expiry time."""


class SharingNotConfigured(JobPollError):
    """No share key is configured on this server: share links cannot be made."""


class InvalidCallbackUrl(InvalidJobInput):
    """The callback URL is malformed or points where callbacks may not go (SSRF)."""


class ExecutionStartFailed(JobPollError):
    """Step Functions did not start the job's execution; the job was marked FAILED."""


class DeadlineExceeded(JobPollError):
    """The job was still running at its overall deadline."""


class MalformedEngineMessage(JobPollError):
    """An engine answered something that is not a valid result or schedule_poll_task message."""


class JobCanceled(JobPollError):
    """The job was canceled while a worker ran it: the worker stops."""


class LeaseHeld(JobPollError):
    """Another worker holds a live lease on the job: this delivery does no work (and is retried later)."""


class LeaseLost(JobPollError):
    """The worker's lease on the job expired and another worker took it over: this one stops."""


class QueueJobTimedOut(JobPollError):
    """A queue-mode job ran past the longest a worker runs one (`queue_job_max_seconds`): the worker stops it
    and fails the job, before Lambda's timeout would kill the worker."""


# The error names the state machine sees (statemachine/poller.asl.json): what its Retry and Catch match
# (JobAlreadyFinished: a notification came before WaitForNotification began), the names its MaxTriesExceeded
# state and the API's StopExecution raise, and the errors a failed job's execution ends with (a job's own
# error code where it is one of these, else ProviderJobFailed). The poll loop's Lambda handlers raise no
# other domain errors (a new error they raise belongs here). A test checks this set against the ASL.
ASL_ERROR_NAMES = frozenset(
    cls.__name__
    for cls in (
        InvalidJobInput,
        InvalidCallbackUrl,
        JobNotFound,
        JobAlreadyExists,
        ConcurrentUpdate,
        IllegalTransition,
        ProviderError,
        ProviderUnavailable,
        ProviderRefused,
        UnsafeProviderUrl,
        ProviderResponseTooLarge,
        ProviderJobFailed,
        MaxTriesExceeded,
        DeadlineExceeded,
        MalformedEngineMessage,
        JobCanceled,
        JobAlreadyFinished,
        ExecutionStartFailed,
    )
)
