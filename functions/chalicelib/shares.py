"""Share links: an expiring, revocable, signed token through which anyone reads one job's result.

A token is `<share id>.<job id>.<expires, epoch seconds>.<signature>`, the signature a hex HMAC-SHA256 of
those three fields with the share key (held like the callback signing key: an SSM SecureString deployed).
The owner revokes a link by its share id, which is then marked on the job (`Job.revoked_shares`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import ShareLinkExpired, ShareLinkInvalid

SHARE_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
_TOKEN = re.compile(r"^([0-9a-f]{16})\.([A-Za-z0-9_-]{1,64})\.([0-9]{1,12})\.([0-9a-f]{64})$")


@dataclass(frozen=True)
class Share:
    """One share link of a job's result, valid until `expires_at`."""

    share_id: str
    job_id: str
    expires_at: datetime

    def token(self, key: str) -> str:
        expires = int(self.expires_at.timestamp())
        return (
            f"{self.share_id}.{self.job_id}.{expires}.{_signature(key, self.share_id, self.job_id, expires)}"
        )


def _signature(key: str, share_id: str, job_id: str, expires: int) -> str:
    message = f"jobpoll-share-v1\n{share_id}\n{job_id}\n{expires}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def new_share(job_id: str, expires_at: datetime) -> Share:
    """A new share link of `job_id`'s result (a fresh random id)."""
    return Share(secrets.token_hex(8), job_id, expires_at.replace(microsecond=0))


def verified_share(token: str, key: str, now: datetime) -> Share:
    """The share a token stands for; ShareLinkInvalid when it is malformed or not signed with `key`,
    ShareLinkExpired when it is signed but past its time. Revocation is the job's to say (see jobs_api)."""
    match = _TOKEN.match(token)
    if not key or match is None:
        raise ShareLinkInvalid("this is not a share link this API issued")
    share_id, job_id, expires_text, signature = match.groups()
    expires = int(expires_text)
    if not hmac.compare_digest(signature, _signature(key, share_id, job_id, expires)):
        raise ShareLinkInvalid("this is not a share link this API issued")
    share = Share(share_id, job_id, datetime.fromtimestamp(expires, UTC))
    if share.expires_at <= now:
        raise ShareLinkExpired(f"this share link expired at {share.expires_at.isoformat()}")
    return share
