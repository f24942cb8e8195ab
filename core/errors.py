"""The core error hierarchy: each message names what was wrong and what to do about it."""

from __future__ import annotations


class TenantguardError(Exception):
    """Base of every error tenantguard raises on purpose."""


class ConfigurationError(TenantguardError):
    """A setting or configuration file is wrong."""


class RedactionPolicyError(ConfigurationError):
    """A tenant's redaction policy names an unknown kind or tries to switch secrets off."""


class CursorError(TenantguardError):
    """A page cursor was not given out by this server for this list and sort."""


class IncidentNotFoundError(TenantguardError):
    """No incident has the id the caller gave (timeline, remediation and the API alike)."""


class TimeOutOfRange(TenantguardError, ValueError):
    """A date or time that cannot be expressed in UTC (outside years 1 to 9999 once converted)."""


class DatabaseError(TenantguardError):
    """The database cannot be used: unreachable, corrupt, locked or at the wrong schema version."""


class AuditChainError(TenantguardError):
    """The audit chain or an export of it does not verify."""
