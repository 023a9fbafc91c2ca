"""`jobpoll new provider`: each kind's example is written into a project, registered, and passes the
conformance kit's contract; bad names and taken names are refused with one line, writing nothing."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.providers import registry
from jobpoll.cli import main
from jobpoll.emulation import Emulation
from jobpoll.errors import ToolingError
from jobpoll.paths import FUNCTIONS_DIR
from jobpoll.scaffold import new_provider, provider_paths
from jobpoll.testing import check_contract


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory with the registry file of this one (and nothing scaffolded in it)."""
    providers = tmp_path / "functions" / "chalicelib" / "providers"
    providers.mkdir(parents=True)
    for name in ("base.py", "simulated.py"):
        shutil.copy(FUNCTIONS_DIR / "chalicelib" / "providers" / name, providers / name)
    shutil.copy(FUNCTIONS_DIR / "chalicelib" / "providers.json", providers.parent / "providers.json")
    return tmp_path


@pytest.fixture
def load_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """load_module(path, module) imports a scaffolded file as chalicelib.providers.<module> (until the test
    ends), as the registry would import it in its project."""

    def load(path: Path, module: str) -> Any:
        name = f"chalicelib.providers.{module}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, loaded)
        spec.loader.exec_module(loaded)
        return loaded

    yield load


@pytest.mark.parametrize(
    ("kind", "class_name"),
    [("poll", "AcmeWidgetProvider"), ("engine", "AcmeWidgetEngine"), ("worker", "AcmeWidgetWorker")],
)
def test_each_kind_is_written_with_its_kit_test_and_registered(
    project: Path, kind: str, class_name: str
) -> None:
    written = new_provider("acme-widget", kind, root=project)

    registry_file, module_file, test_file = provider_paths(project, "acme_widget")
    assert written == [module_file, test_file, registry_file]
    entries = registry.read_entries(registry_file)
    assert entries["acme-widget"] == f"chalicelib.providers.acme_widget:{class_name}"
    assert list(entries)[:3] == ["simulated", "simulated-engine", "simulated-stream"]
    test_source = test_file.read_text()
    assert f"from chalicelib.providers.acme_widget import {class_name}" in test_source
    assert f"provider_class = {class_name}" in test_source
    compile(test_source, str(test_file), "exec")


# The poll kind's example runs its own kit tests in tests/e2e/test_write_a_provider.py (the README's steps).
@pytest.mark.parametrize(
    ("kind", "class_name"), [("engine", "AcmeWidgetEngine"), ("worker", "AcmeWidgetWorker")]
)
def test_the_engine_and_worker_examples_pass_the_contract(
    project: Path, load_module: Any, kind: str, class_name: str, module_emulation: Emulation
) -> None:
    _, module_file, _ = provider_paths(project, "acme_widget")
    new_provider("acme-widget", kind, root=project)

    check_contract(getattr(load_module(module_file, "acme_widget"), class_name), module_emulation)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Acme", 'invalid provider name "Acme"'),
        ("acme_widget", "invalid provider name"),
        ("9lives", "invalid provider name"),
        ("class", "it is a Python keyword"),
        ("simulated", "provider 'simulated' exists already"),
        ("base", "functions/chalicelib/providers/base.py exists already"),
    ],
)
def test_a_bad_or_taken_name_is_refused_and_nothing_is_written(project: Path, name: str, reason: str) -> None:
    before = sorted(project.rglob("*"))
    registry_text = (project / "functions" / "chalicelib" / "providers.json").read_text()

    with pytest.raises(ToolingError, match=reason):
        new_provider(name, root=project)

    assert sorted(project.rglob("*")) == before
    assert (project / "functions" / "chalicelib" / "providers.json").read_text() == registry_text


def test_the_command_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new", "provider", "Not-Valid"]) == 1
    err = capsys.readouterr().err
    assert err.startswith('jobpoll: invalid provider name "Not-Valid"')
    assert err.count("\n") == 1
