"""What can go wrong while collecting, besides a provider call (see :mod:`providers.errors`).

The runner decides per class: retry (`TransientError`, `Throttled`), quarantine and stop the
stream (`MalformedResponse`), mark the stream unhealthy (`PermissionMissing`), mark the whole
connection unhealthy (`AuthenticationFailed`, `ConnectionConfigError`) — those come from the
providers; the classes here are the collectors' own (page tokens, fencing, ingest).
"""

from __future__ import annotations

from core.errors import TenantguardError


class CollectorError(TenantguardError):
    """Base of every error raised on purpose by the collectors."""


class RunSuperseded(CollectorError):
    """A later run claimed this stream's checkpoint (`collectors.fencing`); this run must stop
    without committing."""


class IngestError(CollectorError):
    """An exported log file cannot be ingested at all (unreadable, unknown provider/stream)."""
