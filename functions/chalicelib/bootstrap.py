"""Wires settings, clock, store and providers once per cold start.

Nothing is built at import time (`chalice package` imports app.py): `get_runtime()` builds on first use.
Tests and the local emulation install their own runtime with `set_runtime()`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .auth import AUTH_COGNITO, COGNITO_RESOURCE_SERVER, Jwks, TokenVerifier, discovered_jwks, url_jwks
from .callbacks import Notifier, Resolver, Sender, system_resolver, urllib_sender
from .clock import Clock, clock_from_settings
from .job import Job
from .limits import CallerLimits
from .metrics import Metrics, stdout_line
from .providers import AnyProvider, registry
from .providers.http import Profile, Profiles, parse_profiles
from .results import ResultStore, S3ResultStore
from .settings import Settings
from .store import DynamoDBJobStore, JobStore


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    clock: Clock
    store: JobStore
    providers: Mapping[str, AnyProvider]
    sfn: Any
    sqs: Any
    # How callbacks wait between tries, send, and resolve hosts (tests put fakes or virtual time here).
    sleep: Callable[[float], None] = time.sleep
    sender: Sender = urllib_sender
    resolve: Resolver = system_resolver

    # Lambda: where callbacks are dispatched to the DeliverCallback function (made on first use).
    lambda_client: Any = None
    # Bearer tokens: where the issuer's keys come from (None: fetched over HTTP as the settings say) and the
    # time their `exp`/`nbf` are read against (real time: a token is a real-world credential).
    jwks: Callable[[], Jwks] | None = None
    token_time: Callable[[], float] = time.time
    # Per-caller limits (off unless the settings set them).
    limits: CallerLimits = field(default_factory=CallerLimits.off)
    # Where metrics go, one EMF document a line (tests collect them instead).
    metrics_output: Callable[[str], None] = stdout_line

    @cached_property
    def verifier(self) -> TokenVerifier:
        """Checks the API's bearer tokens (auth modes jwt and cognito); keys kept for the cold start."""
        settings = self.settings
        if not (settings.jwt_issuer and settings.jwt_audience):
            raise ValueError(
                f"JOBPOLL_AUTH={settings.auth} needs JOBPOLL_JWT_ISSUER and JOBPOLL_JWT_AUDIENCE"
            )
        fetch = self.jwks
        if fetch is None:
            fetch = (
                url_jwks(settings.jwt_jwks_url)
                if settings.jwt_jwks_url
                else discovered_jwks(settings.jwt_issuer)
            )
        cognito = settings.auth == AUTH_COGNITO
        return TokenVerifier(
            settings.jwt_issuer,
            settings.jwt_audience,
            fetch,
            now=self.token_time,
            # Cognito access tokens name the app client in `client_id` and scope by resource server.
            audience_claim="client_id" if cognito else "aud",
            scope_prefix=f"{COGNITO_RESOURCE_SERVER}/" if cognito else "",
        )

    # Where large results are kept (None: no results bucket, results stay on the job).
    results: ResultStore | None = None
    # SSM: where the share key is read from on first use (made then, if not given).
    ssm: Any = None

    @cached_property
    def share_key(self) -> str:
        """The key that signs share links (only the API reads it: the other functions need no access)."""
        if self.settings.share_key or not self.settings.share_key_parameter:
            return self.settings.share_key
        return read_secure_parameter(self.settings.share_key_parameter, self.ssm)

    @cached_property
    def metrics(self) -> Metrics:
        return Metrics(self.metrics_output, self.clock, self.settings.metrics_namespace)

    def job_finished(self, job: Job) -> Job:
        """What the use cases call when their write finished a job: count it, then deliver its callback."""
        self.metrics.job_finished(job)
        return self.notifier.job_finished(job)

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(
            store=self.store,
            settings=self.settings,
            clock=self.clock,
            sleep=self.sleep,
            sender=self.sender,
            resolve=self.resolve,
            dispatch=self._dispatch_callback if self.settings.callback_function else None,
            metrics=self.metrics,
        )

    def _dispatch_callback(self, job_id: str) -> None:
        client = self.lambda_client
        if client is None:
            import boto3

            client = boto3.client("lambda")
        client.invoke(
            FunctionName=self.settings.callback_function,
            InvocationType="Event",  # Lambda queues it and retries it: nothing here waits on the receiver
            Payload=json.dumps({"job_id": job_id}).encode(),
        )


def build_runtime(
    settings: Settings | None = None,
    clock: Clock | None = None,
    dynamodb: Any = None,
    sfn: Any = None,
    sqs: Any = None,
    **parts: Any,
) -> Runtime:
    """A runtime from the given parts; missing ones come from the environment and boto3's defaults."""
    ssm = parts.pop("ssm", None)
    settings = with_callback_secret(settings or Settings.from_env(), ssm)
    clock = clock or clock_from_settings(settings)
    if dynamodb is None or sfn is None or sqs is None:
        import boto3

        dynamodb = dynamodb or boto3.client("dynamodb")
        sfn = sfn or boto3.client("stepfunctions")
        sqs = sqs or boto3.client("sqs")
    clients = parts.pop("clients", None) or _boto3_client
    # Providers get the parts their constructors name (providers/registry.py); AWS clients come from
    # `clients` (service name -> client) where given, else boto3's defaults.
    providers: dict[str, AnyProvider] = registry.build(
        enabled(registry.load(), settings.enabled_providers),
        clock=clock,
        settings=settings,
        resolve=parts.get("resolve", system_resolver),
        clients=clients,
        profiles=http_profiles_loader(settings, ssm),
        allow_loopback=settings.local_mode,
    )
    limits = CallerLimits(
        settings.table_name,
        dynamodb,
        settings.max_requests_per_second,
        settings.max_jobs_in_flight,
        now=parts.get("token_time", time.time),
    )
    results = None
    if settings.results_bucket:
        results = S3ResultStore(settings.results_bucket, registry.LazyClient("s3", clients))
    return Runtime(
        settings=settings,
        clock=clock,
        store=DynamoDBJobStore(settings.table_name, dynamodb, results, settings.result_threshold_bytes),
        limits=limits,
        providers=providers,
        sfn=sfn,
        sqs=sqs,
        results=results,
        ssm=ssm,
        sleep=parts.pop("sleep", None) or getattr(clock, "sleep", None) or time.sleep,
        **parts,
    )


def enabled(
    specs: tuple[registry.ProviderSpec, ...], names: tuple[str, ...]
) -> tuple[registry.ProviderSpec, ...]:
    """The providers this stack runs (the EnabledProviders parameter); no names: all of them."""
    return tuple(spec for spec in specs if not names or spec.name in names)


def _boto3_client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def with_callback_secret(settings: Settings, ssm: Any = None) -> Settings:
    """Settings with the callback signing key read from SSM, where a parameter is named and no key given.

    The key never sits in the template, the code or the environment: only the parameter's name does.
    """
    if settings.callback_secret or not settings.callback_secret_parameter:
        return settings
    return dataclasses.replace(
        settings, callback_secret=read_secure_parameter(settings.callback_secret_parameter, ssm)
    )


def http_profiles_loader(settings: Settings, ssm: Any = None) -> Profiles:
    """The http provider's profiles, read on first use and kept (once per cold start): the settings' JSON,
    else the SSM SecureString parameter they name. Functions that never run an http job never read it."""

    @functools.cache
    def load() -> Mapping[str, Profile]:
        if settings.http_profiles or not settings.http_profiles_parameter:
            return parse_profiles(settings.http_profiles)
        return parse_profiles(read_secure_parameter(settings.http_profiles_parameter, ssm))

    return load


def read_secure_parameter(name: str, ssm: Any = None) -> str:
    """The decrypted value of an SSM SecureString parameter (an SSM client is made when none is given)."""
    if ssm is None:
        import boto3

        ssm = boto3.client("ssm")
    return str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The process-wide runtime, built on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime()
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the process-wide runtime (None: build afresh on next use)."""
    global _runtime
    with _lock:
        _runtime = runtime
