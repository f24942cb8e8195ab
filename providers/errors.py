"""What a provider call can end in, as one hierarchy every caller (collectors, remediation,
notifications) branches on by type, never by text.

Each provider module maps its client's exceptions and error bodies onto these classes in ONE
place (its ``classify``/``error_for`` function): throttled with the wait the provider asked for,
credentials refused, a permission missing (named), not found, a server error, a malformed answer.
Messages name the connection and call at fault and what to do; they never contain a secret.
"""

from __future__ import annotations

from core.errors import TenantguardError


class ProviderError(TenantguardError):
    """Base of every error a provider call raises on purpose."""


class ConnectionConfigError(ProviderError):
    """A connection definition is incomplete or wrong (missing key, bad secret reference)."""


class SecretUnavailable(ConnectionConfigError):
    """A secret reference cannot be resolved (unset variable, unreadable file)."""


class AuthenticationFailed(ProviderError):
    """The provider rejected the connection's credentials (after one token refresh)."""


class PermissionMissing(ProviderError):
    """The credentials work but lack the permission/scope a call needs (HTTP 403 and friends)."""

    def __init__(self, message: str, *, permission: str) -> None:
        super().__init__(message)
        self.permission = permission


class TransientError(ProviderError):
    """A 5xx, a timeout or a dropped connection: worth retrying after a back-off."""


class Throttled(TransientError):
    """HTTP 429 (or a provider's rate-limit error): wait exactly `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MalformedResponse(ProviderError):
    """An answer that is not what the API promises (truncated or invalid JSON, missing keys)."""

    def __init__(self, message: str, *, source: str, body: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.body = body


class RequestRejected(ProviderError):
    """The provider refused a request for a reason other than auth, permission or throttling (4xx)."""

    def __init__(self, message: str, *, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class StalePageToken(ProviderError):
    """A stored page token / next link is no longer accepted: restart the window from its start."""


class NotFound(RequestRejected):
    """The object a call names does not exist (HTTP 404, Slack's `user_not_found`, ...)."""


def retry_after_seconds(value: object, default: float = 1.0) -> float:
    """A `Retry-After` header value in seconds (never negative); `default` when absent or unparsable."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else default  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
