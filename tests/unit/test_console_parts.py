"""The console's pure parts: input parsing, continuation, rendering, request signing (no AWS, no stack)."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from jobpoll.errors import ToolingError
from jobpoll.executions import continued_in, parse_input, state_detail
from jobpoll.jobs_client import bearer, sigv4_signer
from jobpoll.render import JobProgress, table


def test_malformed_input_names_line_and_column() -> None:
    with pytest.raises(ToolingError, match=r"at line 2 column 12 \(char 13\)"):
        parse_input('{\n  "delay": }')
    assert parse_input('{"delay": 20}') == {"delay": 20}


def test_continued_in_reads_only_a_succeeded_continuation() -> None:
    output = json.dumps({"continued_in": {"execution_arn": "arn:x:job-1"}})
    assert continued_in({"status": "SUCCEEDED", "output": output}) == "arn:x:job-1"
    assert continued_in({"status": "SUCCEEDED", "output": json.dumps({"status": "COMPLETE"})}) is None
    assert continued_in({"status": "FAILED", "output": output}) is None


def test_state_detail_shows_status_tries_and_progress_of_a_poll() -> None:
    output = {"status": "RUNNING", "try_count": 1, "poll": {"max_tries": 3}, "progress": 0.5}
    assert state_detail("GetJobStatus", output) == "RUNNING  try 1/3  progress 50%"
    assert state_detail("Wait", "not a dict") == ""


def test_table_aligns_columns_under_a_header() -> None:
    rows = [{"name": "seed", "status": "SUCCEEDED"}, {"name": "too-long", "status": "FAILED"}]
    text = table(rows, [("NAME", lambda r: r["name"]), ("STATUS", lambda r: r["status"])])
    assert text.splitlines() == [
        "NAME      STATUS",
        "--------  ---------",
        "seed      SUCCEEDED",
        "too-long  FAILED",
    ]


def test_progress_off_a_terminal_prints_a_line_per_change_with_the_new_output() -> None:
    stream = io.StringIO()
    show = JobProgress(stream, live=False)
    for partial, progress in (("", 0.0), ("the quick", 0.2), ("the quick", 0.2), ("the quick brown", 0.4)):
        show(
            {
                "status": "RUNNING",
                "progress": progress,
                "try_count": 1,
                "max_tries": 3,
                "partial_output": partial,
            }
        )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[1].endswith("+ 'the quick'")
    assert lines[2].endswith("+ 'brown'")


def test_progress_on_a_terminal_redraws_one_line() -> None:
    stream = io.StringIO()
    show = JobProgress(stream, live=True)
    show({"status": "RUNNING", "progress": 0.5, "try_count": 1, "max_tries": 3})
    show({"status": "COMPLETE", "progress": 1.0, "try_count": 2, "max_tries": 3})
    written = stream.getvalue()
    assert written.count("\r\033[K") == 2
    assert written.endswith("COMPLETE tries 2/3\n")


def test_requests_to_the_aws_api_are_signed_for_execute_api() -> None:
    session = boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    sign = sigv4_signer(session, "eu-west-1")
    headers = sign("POST", "https://abc.execute-api.eu-west-1.amazonaws.com/api/jobs", {"Accept": "x"}, b"{}")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers


def test_local_requests_carry_the_bearer_token() -> None:
    assert bearer("t0k")("GET", "http://x/jobs", {}, None) == {"Authorization": "Bearer t0k"}
