"""The jobpoll CLI: user mistakes are one line on stderr and exit 1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from jobpoll.cli import main


@pytest.mark.parametrize("which", ["aws", "api", "console"])
def test_local_up_on_a_port_in_use_names_the_port_and_exits_1(
    which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken, socket.socket() as one, socket.socket() as two:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        one.bind(("127.0.0.1", 0))  # free ports for the other servers (held so that they stay distinct)
        two.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        free = [one.getsockname()[1], two.getsockname()[1]]
        one.close()
        two.close()
        ports = {name: port if name == which else free.pop() for name in ("aws", "api", "console")}
        code = main(
            ["local", "up", *(arg for name, p in ports.items() for arg in (f"--{name}-port", str(p)))]
        )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert f"port {port}" in err and f"--{which}-port" in err
    assert "Traceback" not in err


def test_the_web_console_on_a_port_in_use_names_the_port_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["console", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"jobpoll: port {port} is already in use; pick another with --port\n"


def test_destroy_of_a_missing_profile_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["destroy", "--stage", "dev", "--profile", "no-such-profile-jobpoll"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "no-such-profile-jobpoll" in err


def test_speed_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["local", "up", "--speed", "0"])
    assert exited.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def test_an_unreachable_endpoint_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    code = main(["destroy", "--stage", "dev", "--endpoint-url", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and f"127.0.0.1:{port}" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "No such file"),
        ("{not json", "not JSON"),
        ('{"svc": {"base_url": "ftp://x", "headers": {"Authorization": "Bearer s3cr3t"}}}', "http(s) URL"),
    ],
)
def test_unusable_http_profiles_stop_local_up_before_it_starts_in_one_line(
    tmp_path: Path, content: str | None, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = tmp_path / "profiles.json"
    if content is not None:
        profiles.write_text(content)

    code = main(["local", "up", "--http-profiles", str(profiles)])

    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and expected in err and "--http-profiles" in err
    assert "s3cr3t" not in err
