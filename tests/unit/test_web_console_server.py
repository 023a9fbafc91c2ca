"""The web console's server without a stack: its pages, problem details, ETags; and the state graph."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobpoll import graph
from jobpoll.console import local_console
from jobpoll.errors import PortInUse
from jobpoll.paths import ROOT
from jobpoll.web_console import ConsoleServer, Stack, current_state, execution_view

POLLER = json.loads((ROOT / "statemachine" / "poller.asl.json").read_text())


@pytest.fixture
def stopped_stack_console(tmp_path: Path) -> Iterator[ConsoleServer]:
    """The console of a local stack that is not running (no state file)."""
    server = ConsoleServer(0, Stack(lambda: local_console(tmp_path / "local.json"))).start()
    try:
        yield server
    finally:
        server.stop()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status, dict(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def test_a_stopped_stack_is_a_problem_saying_how_to_start_it(stopped_stack_console: ConsoleServer) -> None:
    status, headers, body = _get(f"{stopped_stack_console.url}api/executions")
    assert status == 503
    assert headers["Content-Type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["title"] == "the stack is not running"
    assert problem["detail"] == "start it with: jobpoll local up"


def test_pages_are_served_from_the_package_and_nothing_else(stopped_stack_console: ConsoleServer) -> None:
    status, headers, page = _get(stopped_stack_console.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="/static/console.js"' in page
    assert b"http" not in page.replace(b"http-equiv", b"")  # no external fetches
    assert _get(f"{stopped_stack_console.url}static/console.js")[0] == 200
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for missing in ("static/../web_console.py", "static/nothing.js", "api/nothing"):
        status, headers, body = _get(f"{stopped_stack_console.url}{missing}")
        assert status == 404 and json.loads(body)["status"] == 404, missing


def test_an_unchanged_answer_is_304_for_its_etag() -> None:
    class Fixed:
        stack_name, is_local = "jobpoll-test", True

    server = ConsoleServer(0, Stack(lambda: Fixed())).start()  # type: ignore[arg-type, return-value]
    try:
        status, headers, _ = _get(f"{server.url}api/stack")
        assert status == 200
        assert _get(f"{server.url}api/stack", {"If-None-Match": headers["ETag"]})[0] == 304
        assert _get(f"{server.url}api/stack", {"If-None-Match": '"other"'})[0] == 200
    finally:
        server.stop()


def test_a_console_port_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} \\(console\\).*--console-port"):
            ConsoleServer(port, Stack(lambda: local_console()))


def test_choice_branches_are_labelled_with_their_rules() -> None:
    labels = {(e.target, e.label) for e in graph.edges(POLLER) if e.source == "CheckJobComplete"}
    assert ("JobSucceeded", "status = COMPLETE") in labels
    assert ("JobFailed", "status = FAILED or status = CANCELED") in labels
    assert ("MaxTriesExceeded", "try_count \u2265 poll.max_tries") in labels
    assert ("Wait", "otherwise") in labels


def test_every_state_has_a_box_of_its_own_below_the_states_leading_to_it() -> None:
    shape = graph.layout(POLLER)
    assert set(shape.positions) == set(POLLER["States"])
    assert len(set(shape.positions.values())) == len(shape.positions)
    rows = {name: y for name, (_, y) in shape.positions.items()}
    assert rows["StartJob"] < rows["Init"] < rows["CheckJobComplete"] < rows["Wait"] < rows["GetJobStatus"]
    assert rows["RecordFailure"] < rows["JobFailed"]
    loops = {(e.source, e.target) for e in shape.back}
    assert ("GetJobStatus", "CheckJobComplete") in loops


def test_the_path_taken_counts_entries_and_marks_the_current_state() -> None:
    seed = ["StartJob", "Init", "CheckJobComplete"] + ["Wait", "GetJobStatus", "CheckJobComplete"] * 2
    drawn = graph.svg(POLLER, seed, current="CheckJobComplete")
    assert 'class="state choice visited current" data-state="CheckJobComplete" data-entered="3"' in drawn
    assert 'data-state="GetJobStatus" data-entered="2"' in drawn
    assert 'class="state succeed" data-state="JobSucceeded" data-entered="0"' in drawn
    counts, taken = graph.path_taken(seed)
    assert counts["Wait"] == 2 and ("GetJobStatus", "CheckJobComplete") in taken
    assert ("CheckJobComplete", "JobSucceeded") not in taken


def _entered(name: str) -> dict[str, Any]:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}


def test_the_current_state_is_the_one_entered_and_not_exited() -> None:
    exited = {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "StartJob"}}
    assert current_state([_entered("StartJob")]) == "StartJob"
    assert current_state([_entered("StartJob"), exited]) is None


class _ContinuedExecutions:
    """An execution of the poll loop that continued in `job-1` (ContinueAsNewExecution)."""

    def describe(self, name: str) -> dict[str, Any]:
        output = {"continued_in": {"execution_arn": "arn:aws:states:us-east-1:1:execution:poller:job-1"}}
        return {"name": name, "status": "SUCCEEDED", "input": "{}", "output": json.dumps(output)}

    def history(self, name: str) -> list[dict[str, Any]]:
        exited = {
            "type": "TaskStateExited",
            "stateExitedEventDetails": {"name": "ContinueAsNewExecution", "output": '{"job_id": "job"}'},
        }
        return [
            {**_entered("ContinueAsNewExecution"), "id": 1, "timestamp": "t"},
            {**exited, "id": 2, "timestamp": "t"},
        ]


def test_an_execution_links_the_execution_it_continued_in_and_its_job() -> None:
    view = execution_view(_ContinuedExecutions(), POLLER, "job")  # type: ignore[arg-type]
    assert view["continued_in"] == "job-1"
    assert view["job_id"] == "job"
    assert view["entered"] == {"ContinueAsNewExecution": 1}
    assert view["events"][1] == {
        "id": 2,
        "type": "TaskStateExited",
        "timestamp": "t",
        "state": "ContinueAsNewExecution",
        "output": {"job_id": "job"},
    }
