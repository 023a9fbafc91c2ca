"""The callback signing key comes from SSM Parameter Store in deployed stages, never from the template."""

from __future__ import annotations

import secrets

import boto3
from moto import mock_aws

from chalicelib.bootstrap import with_callback_secret
from chalicelib.settings import Settings


def test_the_signing_key_is_read_from_the_named_secure_string_parameter() -> None:
    key = secrets.token_hex(16)  # made up per run: no key in the fixtures
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name="/jobpoll/dev/callback-key", Value=key, Type="SecureString")
        settings = Settings.from_env({"JOBPOLL_CALLBACK_SECRET_PARAMETER": "/jobpoll/dev/callback-key"})

        assert with_callback_secret(settings, ssm).callback_secret == key


def test_no_parameter_or_a_key_given_directly_reads_nothing() -> None:
    class NoCalls:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"SSM was called: {name}")

    assert with_callback_secret(Settings(), NoCalls()).callback_secret == ""
    given = Settings(callback_secret="from-env", callback_secret_parameter="/unused")
    assert with_callback_secret(given, NoCalls()).callback_secret == "from-env"
    assert "from-env" not in repr(given)  # the key stays out of logs
