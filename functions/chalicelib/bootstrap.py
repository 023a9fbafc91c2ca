"""Wires settings, clock, store and providers once per cold start.

Nothing is built at import time (`chalice package` imports app.py): `get_runtime()` builds on first use.
Tests and the local emulation install their own runtime with `set_runtime()`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .callbacks import Notifier, Resolver, Sender, system_resolver, urllib_sender
from .clock import Clock, SystemClock
from .providers import AnyProvider
from .providers.simulated import SimulatedProvider
from .providers.simulated_engine import SimulatedEngine
from .providers.streaming import SimulatedStreamingProvider
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
    # Where large results are kept (None: no results bucket, results stay on the job).
    results: ResultStore | None = None
    # SSM: where the share key is read from on first use (made then, if not given).
    ssm: Any = None

    @cached_property
    def share_key(self) -> str:
        """The key that signs share links (only the API reads it: the other functions need no access)."""
        return secret_value(self.settings.share_key, self.settings.share_key_parameter, self.ssm)

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
    s3: Any = None,
    **parts: Any,
) -> Runtime:
    """A runtime from the given parts; missing ones come from the environment and boto3's defaults."""
    ssm = parts.pop("ssm", None)
    settings = with_callback_secret(settings or Settings.from_env(), ssm)
    clock = clock or SystemClock()
    if dynamodb is None or sfn is None or sqs is None:
        import boto3

        dynamodb = dynamodb or boto3.client("dynamodb")
        sfn = sfn or boto3.client("stepfunctions")
        sqs = sqs or boto3.client("sqs")
    results = None
    if settings.results_bucket:
        if s3 is None:
            import boto3

            s3 = boto3.client("s3")
        results = S3ResultStore(settings.results_bucket, s3)
    return Runtime(
        settings=settings,
        clock=clock,
        store=DynamoDBJobStore(settings.table_name, dynamodb, results, settings.result_threshold_bytes),
        providers=enabled(registered_providers(clock), settings.enabled_providers),
        sfn=sfn,
        sqs=sqs,
        results=results,
        ssm=ssm,
        sleep=parts.pop("sleep", None) or getattr(clock, "sleep", None) or time.sleep,
        **parts,
    )


def registered_providers(clock: Clock) -> dict[str, AnyProvider]:
    """Every provider this code has, by the name requests choose it with."""
    return {
        "simulated": SimulatedProvider(clock),
        "simulated-engine": SimulatedEngine(clock),
        "simulated-stream": SimulatedStreamingProvider(clock),
    }


def enabled(providers: Mapping[str, AnyProvider], names: tuple[str, ...]) -> dict[str, AnyProvider]:
    """The providers this stack runs (the EnabledProviders parameter); no names: all of them."""
    return {name: provider for name, provider in providers.items() if not names or name in names}


def secret_value(value: str, parameter: str, ssm: Any = None) -> str:
    """`value`, else the SSM SecureString `parameter` (decrypted), else "".

    A key never sits in the template, the code or the environment: only the parameter's name does.
    """
    if value or not parameter:
        return value
    if ssm is None:
        import boto3

        ssm = boto3.client("ssm")
    return str(ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"])


def with_callback_secret(settings: Settings, ssm: Any = None) -> Settings:
    """Settings with the callback signing key read from SSM, where a parameter is named and no key given."""
    secret = secret_value(settings.callback_secret, settings.callback_secret_parameter, ssm)
    return dataclasses.replace(settings, callback_secret=secret)


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
