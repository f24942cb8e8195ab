"""Slack's request signing (v0): verified on the raw bytes before anything reads the body.

``X-Slack-Signature`` is ``v0=`` and the hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` under the
app's signing secret; ``X-Slack-Request-Timestamp`` is Unix seconds, refused when further from now
than the replay window. Any header or body (non-UTF-8, odd digits, megabytes of timestamp) gives
a `SlackSignatureInvalid` saying why, never another exception.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class SlackSignatureInvalid(ValueError):
    """The request is not one Slack signed with a configured secret (or it is too old)."""


def verify_slack_signature(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str],
    *,
    now: float | None = None,
    max_skew: int = 300,
) -> None:
    """Return when one of `secrets` signed this request recently; raise SlackSignatureInvalid otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp", "")
    signature = lowered.get("x-slack-signature", "")
    if not timestamp or not signature:
        raise SlackSignatureInvalid(
            "the request has no X-Slack-Signature / X-Slack-Request-Timestamp: not from Slack"
        )
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SlackSignatureInvalid("X-Slack-Request-Timestamp is not a Unix time in seconds")
    skew = abs((now if now is not None else time.time()) - int(timestamp))
    if skew > max_skew:
        raise SlackSignatureInvalid(
            f"the request is {int(skew)} s away from now (more than {max_skew} s): refused as a possible replay"
        )
    if not _SIGNATURE.fullmatch(signature):
        raise SlackSignatureInvalid("X-Slack-Signature is not a v0 signature")
    signed = b"v0:" + timestamp.encode("ascii") + b":" + body
    for secret in secrets:
        expected = "v0=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature):
            return
    raise SlackSignatureInvalid("the request signature does not match the signing secret: forged or altered")
