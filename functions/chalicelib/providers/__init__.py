"""Providers adapt one external service each; the state machine never knows which one runs."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import InvalidJobInput
from .base import Engine, NotifiesByEvent, PollResult, Provider, Report, WorkerProvider, WorkState, integral

__all__ = [
    "Engine",
    "NotifiesByEvent",
    "PollResult",
    "Provider",
    "Providers",
    "Report",
    "WorkState",
    "WorkerProvider",
    "get_provider",
    "integral",
]

AnyProvider = Provider | Engine | WorkerProvider
# The providers a runtime knows, by name (bootstrap registers them).
Providers = Mapping[str, AnyProvider]


def get_provider(providers: Providers, name: str) -> AnyProvider:
    """The provider registered under `name`; raises InvalidJobInput naming the known ones."""
    try:
        return providers[name]
    except KeyError:
        known = ", ".join(sorted(providers)) or "none"
        raise InvalidJobInput(f"unknown provider {name!r} (known: {known})") from None
