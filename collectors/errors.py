"""What can go wrong while collecting, as one hierarchy the runner can act on.

The runner decides per class: retry (`TransientError`, `Throttled`), quarantine and stop the
stream (`MalformedResponse`), mark the stream unhealthy (`PermissionMissing`), mark the whole
connection unhealthy (`AuthenticationFailed`, `ConnectionConfigError`). Messages name the
connection/stream at fault and what the operator should do; they never contain a secret.
"""

from __future__ import annotations

from core.errors import TenantguardError


class CollectorError(TenantguardError):
    """Base of every error raised on purpose by the collectors."""


class ConnectionConfigError(CollectorError):
    """A connection definition is incomplete or wrong (missing key, bad secret reference)."""


class SecretUnavailable(ConnectionConfigError):
    """A secret reference cannot be resolved (unset variable, unreadable file)."""


class AuthenticationFailed(CollectorError):
    """The provider rejected the connection's credentials (after one token refresh)."""


class PermissionMissing(CollectorError):
    """The credentials work but lack the permission/scope a stream needs (HTTP 403 and friends)."""

    def __init__(self, message: str, *, permission: str) -> None:
        super().__init__(message)
        self.permission = permission


class TransientError(CollectorError):
    """A 5xx, a timeout or a dropped connection: worth retrying after a back-off."""


class Throttled(TransientError):
    """HTTP 429 (or a provider's rate-limit error): wait exactly `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MalformedResponse(CollectorError):
    """A page that is not what the API promises (truncated or invalid JSON, missing keys)."""

    def __init__(self, message: str, *, source: str, body: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.body = body


class StalePageToken(CollectorError):
    """A stored page token / next link is no longer accepted: restart the window from its start."""


class LeaseLost(CollectorError):
    """Another worker took over this stream's lease; this worker must stop without committing."""


class IngestError(CollectorError):
    """An exported log file cannot be ingested at all (unreadable, unknown provider/stream)."""


class RequestRejected(CollectorError):
    """The provider refused a request for a reason other than auth, permission or throttling (4xx)."""

    def __init__(self, message: str, *, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
