"""The console (`jobpoll executions ...`, `jobpoll jobs ...`) against one running local stack.

Commands run in-process through `jobpoll.cli.main` (what the entry point calls) for speed; the exit codes
that matter to scripts are also checked through the installed entry point in a subprocess.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from e2e_support import LocalStack, cli_environment, jobpoll_command

from jobpoll.cli import main
from jobpoll.paths import ROOT


class Console:
    def __init__(self, stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
        self.stack = stack
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        """Run a console command against the stack: exit code, stdout, stderr."""
        self.capsys.readouterr()
        code = main([*argv, "--state-file", str(self.stack.state_file)])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def subprocess(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*jobpoll_command(), *argv, "--state-file", str(self.stack.state_file)],
            cwd=ROOT,
            env=cli_environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def console(local_stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> Console:
    return Console(local_stack, capsys)


def _one_error_line(code: int, err: str) -> str:
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_start_follow_prints_each_transition_with_tries_and_exits_0_on_success(console: Console) -> None:
    code, out, _ = console("executions", "start", "--input", '{"delay": 20}', "--name", "seed", "--follow")
    assert code == 0, out
    # Scaled time runs on between polls: how many polls it took depends on the machine's load, what each
    # says does not.
    polls = re.findall(r"< GetJobStatus  (\w+)  try (\d+)/3", out)
    assert [status for status, _ in polls] == ["RUNNING"] * (len(polls) - 1) + ["COMPLETE"], out
    assert [int(tries) for _, tries in polls] == list(range(1, len(polls) + 1))
    assert out.count("> GetJobStatus") == len(polls)
    assert out.strip().splitlines()[-1].startswith("=> SUCCEEDED: execution seed")
    assert f"job COMPLETE after {len(polls)} tries" in out
    # The stack's time, as the job saw it: the poll that found it done came 20 s or more after the start.
    assert out.splitlines()[0].endswith("times at 100x real time)")
    found_done = re.search(r"\+\s*([\d.]+)s  < GetJobStatus  COMPLETE", out)
    assert found_done is not None and float(found_done.group(1)) >= 20, out


def test_follow_exits_non_zero_when_the_tries_run_out(console: Console) -> None:
    finished = console.subprocess(
        "executions", "start", "--input", '{"delay": 3600, "max_tries": 3}', "--name", "too-long", "--follow"
    )
    assert finished.returncode == 1, finished.stderr
    for tries in (1, 2, 3):
        assert f"< GetJobStatus  RUNNING  try {tries}/3" in finished.stdout
    assert "> MaxTriesExceeded" in finished.stdout
    last = finished.stdout.strip().splitlines()[-1]
    assert last.startswith("=> FAILED: execution too-long")
    assert "job FAILED after 3 tries (MaxTriesExceeded" in last


def test_follow_an_execution_started_elsewhere_through_its_continuations(console: Console) -> None:
    console.stack.client("stepfunctions").start_execution(
        stateMachineArn=console.stack.state["outputs"]["StateMachineArn"],
        name="chained",
        # One poll per execution, about 10 of them: 3 or more even if the machine stalls for seconds of real
        # time (scaled time runs on meanwhile), and tries to spare.
        input=json.dumps({"delay": 200, "wait_seconds": 20, "continue_after": 1, "max_tries": 100}),
    )
    code, out, err = console("executions", "follow", "chained")
    assert code == 0, out + err
    continued = re.findall(r"continued in execution (chained-\d+)", out)
    assert continued[:2] == ["chained-1", "chained-2"]
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"=> SUCCEEDED: execution {continued[-1]} ({len(continued) + 1} executions)")
    assert f"job COMPLETE after {len(continued) + 1} tries" in last


def test_list_describe_and_history_show_an_execution(console: Console) -> None:
    console("executions", "start", "--input", '{"delay": 5}', "--name", "shown", "--follow")
    code, out, _ = console("executions", "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "STARTED", "(UTC)", "STOPPED", "(UTC)"]
    assert any(line.split()[:2] == ["shown", "SUCCEEDED"] for line in out.splitlines())

    code, out, _ = console("executions", "list", "--status", "succeeded", "--json")
    assert code == 0
    listed = json.loads(out)
    assert "shown" in {e["name"] for e in listed}
    assert {e["status"] for e in listed} == {"SUCCEEDED"}

    code, out, _ = console("executions", "describe", "shown")
    assert code == 0
    assert "status:       SUCCEEDED" in out
    assert 'input:        {"delay": 5}' in out

    code, out, _ = console("executions", "history", "shown", "--json")
    events = json.loads(out)
    assert events[0]["type"] == "ExecutionStarted"
    assert events[-1]["type"] == "ExecutionSucceeded"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))


def test_stop_aborts_a_running_execution(console: Console) -> None:
    code, out, _ = console("executions", "start", "--input", '{"delay": 36000, "wait_seconds": 3600}')
    assert code == 0
    name = out.split()[2]
    code, out, _ = console("executions", "stop", name, "--cause", "no longer needed")
    assert code == 0
    assert out.strip() == f"execution {name}: ABORTED"
    code, out, _ = console("executions", "describe", name, "--json")
    assert json.loads(out)["status"] == "ABORTED"
    assert console("executions", "follow", name)[0] == 1


def test_jobs_submit_wait_get_list_and_result(console: Console) -> None:
    code, out, _ = console("jobs", "submit", "--input", '{"delay": 20}', "--json")
    assert code == 0
    job_id = json.loads(out)["id"]
    code, out, _ = console("jobs", "wait", job_id)
    assert code == 0, out
    assert re.fullmatch(rf"=> job {job_id} COMPLETE after \d+ tries", out.strip().splitlines()[-1])
    assert "[########################] 100%  COMPLETE" in out

    code, out, _ = console("jobs", "get", job_id)
    assert code == 0
    assert "status:           COMPLETE" in out
    code, out, _ = console("jobs", "list", "--status", "complete")
    assert job_id in out
    code, out, _ = console("jobs", "result", job_id)
    assert code == 0
    assert json.loads(out)["output"]["delay"] == 20


def test_jobs_result_reads_a_large_result_and_share_links_are_made_and_revoked(console: Console) -> None:
    request = '{"input": {"delay": 1, "result_bytes": 400000}, "wait_seconds": 1}'
    code, out, _ = console("jobs", "submit", "--input", request, "--json", "--wait")
    job_id = json.loads(out)["id"]
    code, out, _ = console("jobs", "result", job_id)  # the API redirects to the object: followed
    assert code == 0 and len(json.loads(out)["output"]) == 400000
    code, out, _ = console("jobs", "share", job_id, "--expires-in", "600", "--json")
    link = json.loads(out)
    with urllib.request.urlopen(link["url"], timeout=30) as response:  # anyone, no credentials
        assert len(json.loads(response.read())["output"]) == 400000
    code, out, _ = console("jobs", "unshare", job_id, link["id"])
    assert (code, out.strip()) == (0, f"share link {link['id']} revoked")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(link["url"], timeout=30)
    assert refused.value.code == 403


def test_jobs_wait_shows_a_streaming_jobs_output_grow(console: Console) -> None:
    code, out, _ = console(
        "jobs",
        "submit",
        "--provider",
        "simulated-stream",
        "--input",
        # 200 s at --speed 100: 2 real seconds, so that a look a Retry-After (1 s) later still sees it run.
        '{"tokens": 300, "tokens_per_second": 1.5}',
        "--wait",
    )
    assert code == 0, out
    growing = [line for line in out.splitlines() if "RUNNING" in line and "+ '" in line]
    assert growing, out
    assert "the quick brown fox" in growing[0]
    assert "COMPLETE" in out.strip().splitlines()[-1]


def test_jobs_wait_exits_non_zero_for_failed_and_canceled_jobs(console: Console) -> None:
    code, out, _ = console("jobs", "submit", "--input", '{"delay": 5, "fail": true}', "--wait")
    assert code == 1
    assert " FAILED after " in out.strip().splitlines()[-1]

    code, out, _ = console("jobs", "submit", "--input", '{"delay": 36000, "wait_seconds": 3600}', "--json")
    job_id = json.loads(out)["id"]
    code, out, _ = console("jobs", "cancel", job_id)
    assert (code, out.strip()) == (0, f"job {job_id}: CANCELED")
    code, out, _ = console("jobs", "wait", job_id)
    assert code == 1
    assert out.strip().splitlines()[-1].startswith(f"=> job {job_id} CANCELED")


def test_an_unknown_execution_or_job_is_one_line(console: Console) -> None:
    line = _one_error_line(*console("executions", "describe", "no-such-execution")[::2])
    assert line.startswith("jobpoll: no execution 'no-such-execution'")
    line = _one_error_line(*console("executions", "follow", "no-such-execution")[::2])
    assert line.startswith("jobpoll: no execution 'no-such-execution'")
    line = _one_error_line(*console("jobs", "get", "no-such-job")[::2])
    assert line.startswith("jobpoll: ") and "404" in line
    line = _one_error_line(*console("jobs", "wait", "no-such-job")[::2])
    assert "404" in line


def test_malformed_input_json_says_where(console: Console) -> None:
    line = _one_error_line(*console("executions", "start", "--input", '{"delay": 20,}')[::2])
    assert line == (
        "jobpoll: --input is not valid JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 14 (char 13)"
    )
    line = _one_error_line(*console("jobs", "submit", "--input", "{delay: 20}")[::2])
    assert "at line 1 column 2" in line


def test_a_job_the_api_refuses_is_one_line(console: Console) -> None:
    line = _one_error_line(*console("jobs", "submit", "--input", '{"delay": "twenty"}')[::2])
    assert "'delay' must be a number of seconds" in line


def test_no_local_stack_says_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["executions", "list"], ["jobs", "list"]):
        code = main([*argv, "--state-file", str(tmp_path / "local.json")])
        line = _one_error_line(code, capsys.readouterr().err)
        assert line == "jobpoll: no local stack running: start it with: jobpoll local up"


def test_a_stale_state_file_counts_as_no_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    state = tmp_path / "local.json"
    state.write_text(
        json.dumps(
            {
                "api_url": "http://127.0.0.1:9",
                "aws_endpoint_url": "http://127.0.0.1:9",
                "region": "us-east-1",
                "stack_name": "jobpoll-local",
                "outputs": {},
                "pid": dead.pid,
                "api_token": "x",
            }
        )
    )
    line = _one_error_line(main(["jobs", "list", "--state-file", str(state)]), capsys.readouterr().err)
    assert line.endswith("start it with: jobpoll local up")


def test_missing_aws_credentials_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(["executions", "list", "--stack", "jobpoll-dev", "--region", "eu-west-1"])
    line = _one_error_line(code, capsys.readouterr().err)
    assert line.startswith("jobpoll: AWS credentials not found")


def test_a_stack_is_found_by_name_through_its_outputs(console: Console) -> None:
    endpoint = console.stack.state["aws_endpoint_url"]
    code, out, err = console(
        "executions", "describe", "seed", "--stack", "jobpoll-local", "--endpoint-url", endpoint
    )
    assert code == 0, err
    assert "status:       SUCCEEDED" in out
    line = _one_error_line(*console("executions", "list", "--stack", "nope", "--endpoint-url", endpoint)[::2])
    assert line == "jobpoll: there is no stack named nope"


def test_aws_options_without_a_stack_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_error_line(main(["executions", "list", "--region", "eu-west-1"]), capsys.readouterr().err)
    assert line == "jobpoll: --region only applies with --stack NAME; the local stack needs none"


def test_an_unreadable_state_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "local.json"
    state.write_text("{not json")
    line = _one_error_line(main(["jobs", "list", "--state-file", str(state)]), capsys.readouterr().err)
    assert line.endswith("is not a local stack's state file: start it with: jobpoll local up")


def test_the_same_idempotency_key_submits_one_job(console: Console) -> None:
    argv = ("jobs", "submit", "--input", '{"delay": 1}', "--idempotency-key", "console-once", "--json")
    first, again = console(*argv), console(*argv)
    assert first[0] == again[0] == 0
    assert json.loads(first[1])["id"] == json.loads(again[1])["id"]
