"""Large results: a result over the threshold is kept as an object in the stack's S3 bucket, not on the job.

The job record then holds a `StoredResult` (the object's key and size) and stays small; the API answers the
result with a redirect to a short-lived presigned URL. `ResultStore` is the port, `S3ResultStore` its adapter
(the S3 client is an argument), `InMemoryResultStore` the fake for tests without moto.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class StoredResult:
    """Where a job's large result is: the object's key in the results bucket, and its size."""

    key: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "size_bytes": self.size_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredResult:
        return cls(key=str(data["key"]), size_bytes=int(data["size_bytes"]))


class ResultStore(Protocol):
    """Objects holding large results."""

    def put(self, key: str, body: bytes) -> None:
        """Store `body` (JSON) under `key`."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (no error when it is gone already)."""
        ...

    def url(self, key: str, expires_seconds: int) -> str:
        """A URL any client can GET the object from, for `expires_seconds`."""
        ...


def encoded(result: Any) -> bytes:
    """A result as the JSON bytes that are measured and stored."""
    return json.dumps(result, separators=(",", ":")).encode()


def new_key(job_id: str) -> str:
    """A fresh object key for a job's result: a write that loses its conditional check never overwrites
    the object of the write that won."""
    return f"results/{job_id}/{uuid.uuid4().hex}.json"


def discard(results: ResultStore, stored: StoredResult | None) -> None:
    """Remove a result's object, best effort (the bucket's lifecycle rule is the backstop)."""
    if stored is not None:
        with contextlib.suppress(ClientError, BotoCoreError, OSError):
            results.delete(stored.key)


class S3ResultStore:
    """Result objects in one S3 bucket (encrypted and private: the template's ResultsBucket)."""

    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self.s3 = s3

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)

    def get(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def url(self, key: str, expires_seconds: int) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
            )
        )


class InMemoryResultStore:
    """Result objects in a dict (unit tests); URLs are `memory://<key>`."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            self.objects[key] = body

    def get(self, key: str) -> bytes:
        with self._lock:
            return self.objects[key]

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)

    def url(self, key: str, expires_seconds: int) -> str:
        return f"memory://{key}?expires={expires_seconds}"
