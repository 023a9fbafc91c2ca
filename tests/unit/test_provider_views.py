"""How the console shows providers (`jobpoll providers list|describe`)."""

from __future__ import annotations

from chalicelib.providers import registry
from jobpoll import render


def test_the_list_shows_each_provider_with_its_kind_and_an_example() -> None:
    described = [spec.describe() for spec in registry.load()]

    lines = render.providers_table(described).splitlines()

    assert lines[0].split() == ["NAME", "KIND", "NOTIFY", "EXAMPLE", "INPUT"]
    assert lines[2].split()[:3] == ["simulated", "poll", "yes"]
    assert '{"delay":20}' in lines[2]


def test_describe_shows_the_schema_and_every_example() -> None:
    (simulated,) = [spec.describe() for spec in registry.load() if spec.name == "simulated"]

    text = render.provider_fields(simulated)

    assert text.startswith("name:")
    assert "kind:" in text and "poll" in text
    assert '"delay": {\n      "type": "number"' in text
    assert text.rstrip().endswith('{"delay": 30, "report_eta": true, "result": "done"}')
