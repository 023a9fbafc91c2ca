"""Callback signing, the SSRF guard and delivery with retries, without a network (fake sender and DNS)."""

from __future__ import annotations

import secrets

import pytest

from chalicelib.callbacks import (
    CallbackSettings,
    check_callback_target,
    deliver,
    parse_callback_url,
    sign,
    verify_signature,
)
from chalicelib.errors import InvalidCallbackUrl
from jobpoll.clocks import VirtualClock

SECRET = secrets.token_hex(16)


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_recent_time() -> None:
    header = sign(SECRET, 1_700_000_000, b'{"id":"x"}')
    assert verify_signature(SECRET, header, b'{"id":"x"}', now_epoch=1_700_000_010)
    assert not verify_signature(SECRET, header, b'{"id":"y"}', now_epoch=1_700_000_010)
    assert not verify_signature("another-secret", header, b'{"id":"x"}', now_epoch=1_700_000_010)
    assert not verify_signature(SECRET, header, b'{"id":"x"}', now_epoch=1_700_000_000 + 301)
    assert not verify_signature(SECRET, "garbage", b"", now_epoch=0)


def dns(host: str) -> list[str]:
    table = {
        "public.example": ["93.184.216.34"],
        "internal.example": ["10.0.0.5"],
        "mixed.example": ["93.184.216.34", "192.168.1.1"],
        "localhost": ["127.0.0.1", "::1"],
    }
    if host not in table:
        raise OSError("NXDOMAIN")
    return table[host]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x",
        "http://10.0.0.1/x",
        "http://172.16.0.1/x",
        "http://192.168.0.1/x",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://internal.example/x",
        "http://mixed.example/x",
        "http://unknown.example/x",
    ],
)
def test_deployed_mode_refuses_callbacks_to_internal_addresses(url: str) -> None:
    with pytest.raises(InvalidCallbackUrl):
        check_callback_target(url, allow_loopback=False, resolve=dns)


def test_local_mode_allows_loopback_but_still_refuses_link_local_and_private() -> None:
    check_callback_target("http://127.0.0.1:9000/hook", allow_loopback=True, resolve=dns)
    check_callback_target("http://localhost/hook", allow_loopback=True, resolve=dns)
    for url in ("http://169.254.169.254/", "http://10.0.0.1/"):
        with pytest.raises(InvalidCallbackUrl):
            check_callback_target(url, allow_loopback=True, resolve=dns)


def test_public_https_and_http_targets_are_allowed() -> None:
    check_callback_target("https://public.example/hook?x=1", allow_loopback=False, resolve=dns)
    check_callback_target("http://93.184.216.34:8443/", allow_loopback=False, resolve=dns)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        3,
        "ftp://public.example/",
        "file:///etc/passwd",
        "https://",
        "https://u:p@public.example/",
        "https://public.example/a b",
        "http://public.example:99999/",
        "x" * 3000,
    ],
)
def test_malformed_callback_urls_are_refused(value: object) -> None:
    with pytest.raises(InvalidCallbackUrl):
        parse_callback_url(value)


class FakeSender:
    def __init__(self, *outcomes: int | OSError) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[dict[str, str]] = []

    def __call__(self, url: str, body: bytes, headers: object, timeout: float) -> int:
        self.calls.append(dict(headers))  # type: ignore[call-overload]
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, OSError):
            raise outcome
        return outcome


CONFIG = CallbackSettings(
    secret=SECRET, max_attempts=5, backoff_seconds=1.0, timeout_seconds=2.0, allow_loopback=False
)


def run(sender: FakeSender, clock: VirtualClock | None = None) -> tuple[object, list[float]]:
    clock = clock or VirtualClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    record = deliver(
        "https://public.example/hook",
        b"{}",
        config=CONFIG,
        clock=clock,
        sleep=sleep,
        sender=sender,
        resolve=dns,
    )
    return record, slept


def test_delivery_retries_5xx_and_timeouts_with_exponential_backoff() -> None:
    sender = FakeSender(500, TimeoutError("timed out"), 502, 200)
    record, slept = run(sender)
    assert record.attempts == 4  # type: ignore[attr-defined]
    assert record.last_status == 200  # type: ignore[attr-defined]
    assert record.delivered_at is not None  # type: ignore[attr-defined]
    assert slept == [1.0, 2.0, 4.0]


def test_delivery_gives_up_after_max_attempts_and_records_the_last_answer() -> None:
    record, slept = run(FakeSender(*[503] * 5))
    assert (record.attempts, record.last_status, record.delivered_at) == (5, 503, None)  # type: ignore[attr-defined]
    assert slept == [1.0, 2.0, 4.0, 8.0]


@pytest.mark.parametrize("status", [400, 404, 302])
def test_delivery_does_not_retry_a_client_error_or_a_redirect(status: int) -> None:
    record, slept = run(FakeSender(status))
    assert (record.attempts, record.last_status) == (1, status)  # type: ignore[attr-defined]
    assert slept == []


def test_a_garbled_answer_counts_as_a_failed_attempt_not_a_crash() -> None:
    import http.client

    class Garbled(FakeSender):
        def __call__(self, url: str, body: bytes, headers: object, timeout: float) -> int:
            if not self.calls:
                self.calls.append({})
                raise http.client.BadStatusLine("HTTP/9 ???")
            return super().__call__(url, body, headers, timeout)

    record, _ = run(Garbled(200))
    assert (record.attempts, record.last_status) == (2, 200)  # type: ignore[attr-defined]


def test_each_attempt_is_signed_at_its_own_time() -> None:
    sender = FakeSender(500, 200)
    clock = VirtualClock()
    run(sender, clock)
    first, second = (call["X-Jobpoll-Signature"] for call in sender.calls)
    assert first != second
    assert verify_signature(SECRET, second, b"{}", now_epoch=clock.now().timestamp())
