"""The web console `jobpoll local up` serves, in a real browser (headless Chromium): the seed execution
started from the form ends on its drawn path, a job is submitted and canceled. Screenshots of each page are
saved as artefacts (the path is printed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser
from e2e_support import LocalStack

ENTERED = (
    "Object.fromEntries([...document.querySelectorAll('svg.graph [data-state]')]"
    ".map(g => [g.dataset.state, Number(g.dataset.entered)]))"
)
FINISHED = "document.querySelector('.live')?.dataset.done === 'true'"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    page = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("web-console-screenshots")
    print(f"web console screenshots: {directory}")
    return directory


def _start_from_the_form(browser: Browser, console_url: str, execution_input: str | None, name: str) -> None:
    browser.open(f"{console_url}#/start")
    browser.wait_for("!!document.querySelector('#input')")
    if execution_input is not None:
        browser.evaluate(f"document.querySelector('#input').value = {json.dumps(execution_input)}")
    browser.evaluate(f"document.querySelector('#name').value = {json.dumps(name)}")
    browser.evaluate("document.querySelector('form button[type=submit]').click()")
    browser.wait_for(f"location.hash === {json.dumps('#/executions/' + name)}")
    browser.wait_for(f"!!document.querySelector('svg.graph') && {FINISHED}")


def test_the_seed_execution_started_from_the_form_ends_on_its_drawn_path(
    local_stack: LocalStack, browser: Browser, screenshots: Path
) -> None:
    console_url = local_stack.state["console_url"]
    browser.open(f"{console_url}#/start")
    browser.wait_for("!!document.querySelector('#input')")
    assert json.loads(browser.evaluate("document.querySelector('#input').value")) == {"delay": 20}
    browser.evaluate("document.querySelector('#input').value = '{\"delay\": 20'")
    browser.evaluate("document.querySelector('form button[type=submit]').click()")
    assert "not valid JSON" in browser.wait_for("document.querySelector('#input-error').innerText")
    browser.screenshot(screenshots / "start-execution.png")

    seed = f"web-seed-{uuid.uuid4().hex[:8]}"
    _start_from_the_form(browser, console_url, '{"delay": 20}', seed)
    entered = browser.evaluate(ENTERED)
    output = json.loads(browser.evaluate("document.querySelectorAll('pre')[1].innerText"))
    assert browser.evaluate("document.querySelector('.status').innerText") == "SUCCEEDED"
    assert browser.evaluate(
        "document.querySelector('[data-state=JobSucceeded]').classList.contains('visited')"
    )
    # The seed polls every 10 s for 20 s of work: twice, unless the machine's load let scaled time run on
    # past the work's end before the first poll. The graph counts every poll the job counted.
    assert entered["GetJobStatus"] == output["try_count"] in (1, 2), entered
    assert entered["StartJob"] == entered["Init"] == entered["JobSucceeded"] == 1
    assert entered["Wait"] == entered["GetJobStatus"]
    assert entered["JobFailed"] == entered["MaxTriesExceeded"] == 0
    assert browser.evaluate("document.querySelectorAll('svg.graph .edge.taken').length") >= 6
    assert not browser.evaluate("!!document.querySelector('svg.graph .current')")
    polls = browser.evaluate(
        "[...document.querySelectorAll('tr[data-type=TaskStateEntered]')]"
        ".filter(row => row.cells[3].innerText === 'GetJobStatus').length"
    )
    assert polls == entered["GetJobStatus"]
    browser.screenshot(screenshots / "execution-succeeded.png")

    too_long = f"web-too-long-{uuid.uuid4().hex[:8]}"
    _start_from_the_form(browser, console_url, '{"delay": 3600, "max_tries": 3}', too_long)
    entered = browser.evaluate(ENTERED)
    assert entered["MaxTriesExceeded"] == entered["JobFailed"] == 1 and entered["GetJobStatus"] == 3
    assert browser.evaluate("document.querySelector('.status').innerText") == "FAILED"
    browser.screenshot(screenshots / "execution-failed.png")

    browser.open(f"{console_url}#/executions/no-such-execution")
    missing = browser.wait_for("document.querySelector('.problem')?.innerText")
    assert "no such execution" in missing and "no-such-execution" in missing

    browser.open(f"{console_url}#/executions?status=SUCCEEDED")
    assert browser.wait_for(f"[...document.querySelectorAll('td a')].some(a => a.innerText === '{seed}')")
    assert not browser.evaluate(f"document.body.innerText.includes('{too_long}')")
    browser.screenshot(screenshots / "executions.png")


def test_a_streaming_job_submitted_from_the_form_grows_its_output_and_is_canceled(
    local_stack: LocalStack, browser: Browser, screenshots: Path
) -> None:
    console_url = local_stack.state["console_url"]
    browser.resize(1280, 900)
    browser.open(f"{console_url}#/submit")
    providers = browser.wait_for("[...document.querySelectorAll('#provider option')].map(o => o.value)")
    assert {"simulated", "simulated-stream"} <= set(providers)
    assert browser.evaluate("document.querySelector('#provider').value") == "simulated"
    browser.evaluate(
        "document.querySelector('#input').value = '{\"delay\": \"soon\"}';"
        "document.querySelector('form button[type=submit]').click()"
    )
    refused = browser.wait_for("document.querySelector('#input-error .problem')?.innerText")
    assert "HTTP 400" in refused and "delay" in refused, refused  # the API's problem detail
    browser.screenshot(screenshots / "submit-job.png")
    browser.evaluate(
        "document.querySelector('#input').value = '{\"delay\": 20}';"
        "document.querySelector('form button[type=submit]').click()"
    )
    seed_job = browser.wait_for("location.hash.startsWith('#/jobs/') && location.hash.slice(7)")
    browser.wait_for(f"document.querySelector('#job-status')?.innerText === 'COMPLETE' && {FINISHED}")
    assert browser.wait_for("document.body.innerText.includes('Result')")
    browser.screenshot(screenshots / "job-complete.png")
    browser.evaluate(f"document.querySelector('a[href=\"#/executions/{seed_job}\"]').click()")  # its poller
    browser.wait_for(f"!!document.querySelector('svg.graph') && {FINISHED}")
    assert browser.evaluate(f"!!document.querySelector('a[href=\"#/jobs/{seed_job}\"]')")
    assert browser.evaluate(ENTERED)["JobSucceeded"] == 1

    browser.open(f"{console_url}#/submit")
    browser.wait_for("!!document.querySelector('#provider option')")
    browser.evaluate(
        "const select = document.querySelector('#provider'); select.value = 'simulated-stream';"
        "select.dispatchEvent(new Event('change'));"
        "document.querySelector('#input').value = '{\"tokens\": 1000, \"tokens_per_second\": 2}';"
        "document.querySelector('form button[type=submit]').click()"
    )
    job_id = browser.wait_for("location.hash.startsWith('#/jobs/') && location.hash.slice(7)")
    # Queue mode: the output so far grows on the page while the job runs, without a reload.
    output = "document.querySelector('.partial-output')?.innerText.length || 0"
    first = browser.wait_for(output)
    browser.wait_for(f"({output}) > {first}")
    assert browser.evaluate("document.querySelector('#job-status').innerText") == "RUNNING"
    assert browser.evaluate("document.querySelector('progress').value") > 0
    assert not browser.evaluate("document.body.innerText.includes('Execution →')")  # queue mode: none
    browser.screenshot(screenshots / "job-running.png")

    browser.evaluate("document.querySelector('button.danger').click()")
    browser.wait_for(f"document.querySelector('#job-status')?.innerText === 'CANCELED' && {FINISHED}")
    assert not browser.evaluate("!!document.querySelector('button.danger')")
    browser.screenshot(screenshots / "job-canceled.png")

    browser.open(f"{console_url}#/jobs")
    assert browser.wait_for(f"document.body.innerText.includes('{job_id}')")
    browser.screenshot(screenshots / "jobs.png")
    browser.resize(390, 844, mobile=True)
    browser.open(f"{console_url}#/jobs/{job_id}")
    browser.wait_for("document.querySelector('#job-status')?.innerText === 'CANCELED'")
    browser.screenshot(screenshots / "job-phone.png")
