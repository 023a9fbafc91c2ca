"""The provider registry: a broken registry file or provider is one line naming it, found when the registry
loads (as `chalice package` imports the app), never at the first job."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from chalicelib.providers import registry
from chalicelib.providers.registry import ProviderRegistryError
from chalicelib.settings import Settings
from jobpoll.clocks import VirtualClock
from jobpoll.errors import PackageError
from jobpoll.package import chalice_executable, check_providers
from jobpoll.paths import FUNCTIONS_DIR

GOOD = '''
class Acme:
    """Acme's countdown.

    More words."""

    name = "acme"
    kind = "poll"
    can_notify = False
    input_schema = {"type": "object", "properties": {"seconds": {"type": "integer"}}, "required": ["seconds"]}
    examples = [{"seconds": 5}]

    def __init__(self, clock, settings=None):
        self.clock, self.settings = clock, settings

    def validate(self, request): return request
    def submit(self, request): return "w"
    def poll(self, work_id): return None
    def cancel(self, work_id): return None
'''


@pytest.fixture
def write_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """write_provider(source, name="acme") -> the registry file listing a fresh module holding `source`."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str, name: str = "acme", class_name: str = "Acme") -> Path:
        module = f"kit_{uuid.uuid4().hex[:12]}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        registry_file = tmp_path / f"{module}.json"
        registry_file.write_text(json.dumps({"providers": {name: f"{module}:{class_name}"}}))
        return registry_file

    return write


def broken(source: str, replace: str, by: str) -> str:
    assert replace in source
    return source.replace(replace, by)


def test_a_good_provider_loads_with_its_declaration(write_provider: Any) -> None:
    (spec,) = registry.load(write_provider(GOOD))

    assert (spec.name, spec.kind, spec.can_notify) == ("acme", "poll", False)
    assert spec.description == "Acme's countdown."
    assert spec.examples == ({"seconds": 5},)


def test_build_gives_a_constructor_only_the_parts_it_names(write_provider: Any) -> None:
    specs = registry.load(write_provider(GOOD))
    clock, settings = VirtualClock(), Settings()

    provider = registry.build(specs, clock=clock, settings=settings, clients=lambda name: None)["acme"]

    assert (provider.clock, provider.settings) == (clock, settings)


def test_a_provider_of_an_aws_service_gets_its_client_made_on_first_use(write_provider: Any) -> None:
    source = broken(GOOD, "def __init__(self, clock, settings=None):", "def __init__(self, client):")
    source = broken(source, "self.clock, self.settings = clock, settings", "self.client = client")
    source = broken(source, 'kind = "poll"', 'kind = "poll"\n    aws_service = "athena"')
    made: list[str] = []

    def clients(service: str) -> Any:
        made.append(service)
        return type("Client", (), {"get_query_execution": lambda self: "answered"})()

    provider = registry.build(registry.load(write_provider(source)), clients=clients)["acme"]

    assert made == []
    assert provider.client.get_query_execution() == "answered"
    assert made == ["athena"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("raise RuntimeError('no config')", "cannot import kit_"),
        ("import not_a_module_anywhere", "No module named 'not_a_module_anywhere'"),
        ("class Other: pass", "has no class Acme"),
        (broken(GOOD, 'name = "acme"', 'name = "other"'), 'the class\'s name is "other", not "acme"'),
        (broken(GOOD, 'kind = "poll"', 'kind = "batch"'), "kind must be one of poll, engine, worker"),
        (broken(GOOD, 'kind = "poll"', 'kind = "engine"'), "an engine provider needs method(s) handle"),
        (broken(GOOD, "def cancel(self, work_id): return None", ""), "needs method(s) cancel"),
        (GOOD + "    def run(self, request, report): return None\n", "must not have method(s) run"),
        (broken(GOOD, "can_notify = False", "can_notify = 'no'"), "can_notify must be true or false"),
        (broken(GOOD, '{"type": "object", ', '{"type": "array", '), "input_schema must be a JSON Schema"),
        (broken(GOOD, 'examples = [{"seconds": 5}]', "examples = []"), "examples must list at least one"),
        (broken(GOOD, 'examples = [{"seconds": 5}]', "examples = [5]"), "each example must be a JSON object"),
        (broken(GOOD, "settings=None", "settings, region"), "its constructor needs 'region'"),
        (broken(GOOD, "settings=None", "client"), "name the AWS service in aws_service"),
    ],
)
def test_a_broken_provider_is_one_line_naming_it(write_provider: Any, source: str, reason: str) -> None:
    with pytest.raises(ProviderRegistryError) as refused:
        registry.load(write_provider(source))

    message = str(refused.value)
    assert message.startswith("provider 'acme'")
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not JSON"),
        ('["acme"]', 'must be {"providers"'),
        ('{"providers": {"Acme": "m:C"}}', 'invalid provider name "Acme"'),
        ('{"providers": {"acme": "no colon"}}', "is not 'module:Class'"),
    ],
)
def test_a_broken_registry_file_is_one_line(tmp_path: Path, content: str, reason: str) -> None:
    registry_file = tmp_path / "providers.json"
    registry_file.write_text(content)

    with pytest.raises(ProviderRegistryError, match=reason):
        registry.read_entries(registry_file)


def test_packaging_also_checks_each_example_against_the_schema(write_provider: Any) -> None:
    source = broken(GOOD, 'examples = [{"seconds": 5}]', 'examples = [{"seconds": "five"}]')

    with pytest.raises(PackageError) as refused:
        check_providers(write_provider(source))

    assert str(refused.value).startswith("provider 'acme'")
    assert "does not fit its input_schema" in str(refused.value)


def test_the_shipped_registry_lists_the_built_in_providers() -> None:
    names = {spec.name for spec in registry.load()}
    assert {"simulated", "simulated-engine", "simulated-stream"} <= names
    assert registry.REGISTRY_FILE.parent.name == "chalicelib"  # chalice bundles chalicelib/, not functions/


def test_chalice_package_fails_with_one_line_naming_a_provider_that_cannot_be_imported(
    tmp_path: Path,
) -> None:
    project = tmp_path / "functions"
    subprocess.run(["cp", "-r", str(FUNCTIONS_DIR), str(project)], check=True)
    registry_file = project / "chalicelib" / "providers.json"
    document = json.loads(registry_file.read_text())
    document["providers"]["acme"] = "chalicelib.providers.acme:AcmeProvider"
    registry_file.write_text(json.dumps(document))

    result = subprocess.run(
        [chalice_executable(), "package", "--stage", "dev", str(tmp_path / "out")],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "TZ": "UTC"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "jobpoll: provider 'acme': cannot import chalicelib.providers.acme: "
        "ModuleNotFoundError: No module named 'chalicelib.providers.acme'"
    ]
