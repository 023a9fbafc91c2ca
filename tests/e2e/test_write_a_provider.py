"""README "Write a provider", its commands run as a user runs them, in a copy of the project (nothing is
ever scaffolded into this checkout): new provider, its tests, the local stack listing it and running a job."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import LocalStack, cli_environment, running_local_up

from jobpoll.demo import free_ports
from jobpoll.paths import ROOT

STEP_TIMEOUT = 120


def readme_steps() -> list[str]:
    """The commands of the README's "Write a provider" block, without their comments."""
    section = ROOT.joinpath("README.md").read_text().split("## Write a provider", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the section has no bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project's code (no tests, no state): what a fresh clone has to scaffold into."""
    copy = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", ".chalice/deployments", ".chalice/deployed")
    for part in ("functions", "infra", "statemachine"):
        shutil.copytree(ROOT / part, copy / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def environment(project: Path) -> dict[str, str]:
    """The copy's `jobpoll` package first on the path, as a clone installed in editable mode has it."""
    return {**cli_environment(), "PYTHONPATH": f"{project / 'infra'}", "TZ": "UTC"}


def command(step: str) -> list[str]:
    """A README step as this environment runs it (its `jobpoll` and `python`)."""
    words = shlex.split(step.rstrip("&").strip())
    if words[0] == "jobpoll":
        return [sys.executable, "-m", "jobpoll.cli", *words[1:]]
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    raise AssertionError(f"unexpected README step {step!r}")


def run(step: str, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(step),
        cwd=project,
        env=environment(project),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )


def local_up(project: Path) -> contextlib.AbstractContextManager[LocalStack]:
    """The README's `jobpoll local up ... &` in the copy, on free ports, faster (a context manager)."""
    (step,) = [s for s in readme_steps() if s.startswith("jobpoll local up")]
    api_port, aws_port, issuer_port = free_ports(3)
    argv = [*command(step), "--speed", "50", "--api-port", str(api_port), "--aws-port", str(aws_port)]
    argv += ["--issuer-port", str(issuer_port)]
    argv += ["--console-port", "0"]
    state_file = project / ".jobpoll" / "local.json"
    return running_local_up(
        argv, project, environment(project), state_file, project / "local-up.log", api_port, aws_port
    )


def test_the_readme_steps_scaffold_test_list_and_run_a_new_provider(project: Path) -> None:
    steps = readme_steps()
    assert [step.split()[:3] for step in steps] == [
        ["jobpoll", "new", "provider"],
        ["python", "-m", "pytest"],
        ["jobpoll", "local", "up"],
        ["jobpoll", "providers", "describe"],
        ["jobpoll", "jobs", "submit"],
    ]

    scaffolded = run(steps[0], project)
    assert scaffolded.returncode == 0, scaffolded.stderr
    assert "wrote functions/chalicelib/providers/acme.py" in scaffolded.stdout
    # (A taken name is refused: tests/integration/test_scaffold.py, in-process.)

    tested = run(steps[1] + " -n 0 -p no:cacheprovider", project)  # one test file: no worker processes
    assert tested.returncode == 0, tested.stdout[-3000:]
    passed = re.search(r"(\d+) passed", tested.stdout)
    assert passed is not None and int(passed.group(1)) >= 8, tested.stdout[-500:]

    with local_up(project):
        described = run(steps[3] + " --json", project)
        assert described.returncode == 0, described.stderr
        provider = json.loads(described.stdout)
        assert (provider["name"], provider["kind"]) == ("acme", "poll")
        assert provider["input_schema"]["required"] == ["seconds"]

        listed = run("jobpoll providers list", project)
        assert listed.returncode == 0, listed.stderr
        assert re.search(r"^acme +poll +no +\{", listed.stdout, re.MULTILINE), listed.stdout

        submitted = run(steps[4], project)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        assert "COMPLETE" in submitted.stdout
