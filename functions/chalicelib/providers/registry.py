"""The provider registry: which providers this deployment runs, found by name from one file that ships with
the bundle, `chalicelib/providers.json` (`{"providers": {"NAME": "module:Class"}}`).

A provider class declares what it is as class attributes, and the registry checks the declaration when it
loads (so a broken provider fails `chalice package`, `jobpoll deploy` and `jobpoll local up`, never the
first job):

    name = "acme"                 # the registry's key
    kind = "poll"                 # poll (submit/poll/cancel), engine (handle) or worker (run)
    can_notify = False            # whether the service can tell jobpoll the work is done (notify: true)
    input_schema = {...}          # JSON Schema of the job's input (type object); or a property, when it
                                  # depends on the deployment (None: nothing it could run is configured)
    examples = [{...}]            # at least one input the provider accepts

The registry builds each class with the runtime parts its constructor names: `clock`, `settings`,
`resolve` (host name -> addresses, for an SSRF guard), `allow_loopback` (true in local mode only),
`profiles` (the named endpoints and their secrets, read on first use), `clients` (AWS service name -> boto3
client) and `client` (the boto3 client of the AWS service the class names in `aws_service`, made on first
use).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProviderNotFound
from .base import Engine, WorkerProvider

REGISTRY_FILE = Path(__file__).resolve().parents[1] / "providers.json"
KINDS = ("poll", "engine", "worker")
# What each kind must be able to do (the service calls these).
METHODS = {
    "poll": ("validate", "submit", "poll", "cancel"),
    "engine": ("validate", "handle"),
    "worker": ("validate", "run"),
}
# What the registry can give a provider's constructor, by parameter name.
CONSTRUCTOR_PARTS = ("clock", "settings", "resolve", "allow_loopback", "profiles", "clients", "client")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME_LENGTH = 40
_TARGET_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ProviderRegistryError(Exception):
    """The registry file or a provider it lists is broken; the message is one line naming it."""


@dataclass(frozen=True)
class ProviderSpec:
    """A registered provider: its class and what it declares."""

    name: str
    target: str  # "module:Class", as the registry file lists it
    cls: type
    kind: str
    can_notify: bool
    input_schema: Mapping[str, Any] | None  # None: each instance says, for its deployment (a property)
    examples: tuple[Any, ...]
    description: str

    def describe(self) -> dict[str, Any]:
        """What discovery (`GET /providers`, the console) shows of the provider."""
        return {
            "name": self.name,
            "kind": self.kind,
            "can_notify": self.can_notify,
            "description": self.description,
            "input_schema": None if self.input_schema is None else dict(self.input_schema),
            "examples": list(self.examples),
        }


def kind_of(provider: Any) -> str:
    """The kind the service treats `provider` (a class or an instance) as, from the methods it has."""
    if isinstance(provider, type):
        has = set(dir(provider))
        if {"name", "validate", "handle"} <= has:
            return "engine"
        if {"name", "validate", "run"} <= has:
            return "worker"
        return "poll"
    if isinstance(provider, Engine):
        return "engine"
    if isinstance(provider, WorkerProvider):
        return "worker"
    return "poll"


def read_entries(path: Path = REGISTRY_FILE) -> dict[str, str]:
    """The registry file's `providers` mapping (name -> "module:Class"), checked for shape."""
    where = path.name
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise ProviderRegistryError(f"cannot read the provider registry {where}: {exc.strerror}") from None
    except ValueError as exc:
        raise ProviderRegistryError(f"the provider registry {where} is not JSON: {exc}") from None
    entries = document.get("providers") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise ProviderRegistryError(
            f'the provider registry {where} must be {{"providers": {{NAME: "module:Class"}}}}'
        )
    for name, target in entries.items():
        check_name(name)
        if not isinstance(target, str) or not _TARGET_PATTERN.match(target):
            raise ProviderRegistryError(f"provider {name!r}: {json.dumps(target)} is not 'module:Class'")
    return dict(entries)


def check_name(name: Any) -> str:
    """A provider name: lowercase letters and digits, words joined by '-', starting with a letter."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.match(name):
        raise ProviderRegistryError(
            f"invalid provider name {json.dumps(name)}: use lowercase letters and digits, words joined by "
            f"'-', starting with a letter, at most {MAX_NAME_LENGTH} characters"
        )
    return name


def load_class(name: str, target: str) -> type:
    """Import the class `module:Class` registered as `name`."""
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the module raises on import, report it on one line
        raise ProviderRegistryError(
            f"provider {name!r}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ProviderRegistryError(f"provider {name!r}: {module_name} has no class {class_name}")
    return cls


def spec_for(name: str, cls: type, target: str = "") -> ProviderSpec:
    """Check that `cls` declares itself and can do what its kind needs; raises ProviderRegistryError."""
    label = f"provider {name!r} ({target or cls.__qualname__})"

    def broken(problem: str) -> ProviderRegistryError:
        return ProviderRegistryError(f"{label}: {problem}")

    declared = getattr(cls, "name", None)
    if declared != name:
        raise broken(f"the class's name is {json.dumps(declared)}, not {json.dumps(name)}")
    kind = getattr(cls, "kind", None)
    if kind not in KINDS:
        raise broken(f"kind must be one of {', '.join(KINDS)}, got {json.dumps(kind)}")
    missing = [method for method in METHODS[kind] if not callable(getattr(cls, method, None))]
    if missing:
        raise broken(f"{_article(kind)} {kind} provider needs method(s) {', '.join(missing)}")
    other = [method for method in ("handle", "run") if method not in METHODS[kind] and hasattr(cls, method)]
    if other:
        # The service tells the kinds apart by these methods: one of another kind's would confuse it.
        raise broken(f"{_article(kind)} {kind} provider must not have method(s) {', '.join(other)}")
    can_notify = getattr(cls, "can_notify", None)
    if not isinstance(can_notify, bool):
        raise broken("can_notify must be true or false")
    schema = getattr(cls, "input_schema", None)
    if isinstance(schema, property):
        schema = None  # what the input may be depends on the deployment (e.g. http's profiles)
    elif not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise broken('input_schema must be a JSON Schema of {"type": "object", ...} (or a property)')
    examples = getattr(cls, "examples", None)
    if not isinstance(examples, list | tuple) or not examples:
        raise broken("examples must list at least one input")
    if not all(isinstance(example, dict) for example in examples):
        raise broken("each example must be a JSON object")
    try:
        json.dumps([schema, list(examples)])
    except (TypeError, ValueError) as exc:
        raise broken(f"input_schema and examples must be JSON: {exc}") from None
    _check_constructor(cls, broken)
    doc = inspect.getdoc(cls) or ""
    return ProviderSpec(
        name=name,
        target=target or f"{cls.__module__}:{cls.__qualname__}",
        cls=cls,
        kind=kind,
        can_notify=can_notify,
        input_schema=schema,
        examples=tuple(examples),
        description=doc.split("\n\n")[0].replace("\n", " "),
    )


def _article(kind: str) -> str:
    return "an" if kind == "engine" else "a"


def _check_constructor(cls: type, broken: Callable[[str], ProviderRegistryError]) -> None:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name not in CONSTRUCTOR_PARTS and parameter.default is parameter.empty:
            raise broken(
                f"its constructor needs {parameter.name!r}; the registry gives only "
                f"{', '.join(CONSTRUCTOR_PARTS)}"
            )
        if parameter.name == "client" and not isinstance(getattr(cls, "aws_service", None), str):
            raise broken("its constructor takes 'client': name the AWS service in aws_service, e.g. 'athena'")


class LazyClient:
    """A boto3 client made on first use: most cold starts never call most providers' services."""

    def __init__(self, service: str, clients: Callable[[str], Any]) -> None:
        self.service = service
        self._clients = clients
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._clients(self.service)
        return getattr(self._client, name)


@functools.cache
def load(path: Path = REGISTRY_FILE) -> tuple[ProviderSpec, ...]:
    """Every registered provider, imported and checked (once per process)."""
    return tuple(
        spec_for(name, load_class(name, target), target) for name, target in read_entries(path).items()
    )


def build(specs: tuple[ProviderSpec, ...], **parts: Any) -> dict[str, Any]:
    """An instance of each provider, given the runtime parts its constructor names (CONSTRUCTOR_PARTS);
    `clients` (service name -> boto3 client) also makes each `client`."""
    providers = {}
    for spec in specs:
        wanted = inspect.signature(spec.cls).parameters
        given = {key: value for key, value in parts.items() if key in wanted}
        if "client" in wanted:
            given["client"] = LazyClient(spec.cls.aws_service, parts["clients"])  # type: ignore[attr-defined]
        providers[spec.name] = spec.cls(**given)
    return providers


def describe(providers: Mapping[str, Any], name: str | None = None) -> list[dict[str, Any]]:
    """What discovery shows of the runtime's providers (from their classes' declarations), sorted by name;
    with `name`, of that one only (ProviderNotFound if there is none)."""
    if name is not None and name not in providers:
        raise ProviderNotFound(f"no provider {name[:80]!r}")
    names = [name] if name is not None else sorted(providers)
    # The schema is the instance's: a provider whose input depends on the deployment narrows it (or has none).
    return [
        {**spec_for(each, type(providers[each])).describe(), "input_schema": providers[each].input_schema}
        for each in names
    ]
