"""Errors of the anomaly package: each names the setting or file at fault and what to do."""

from __future__ import annotations

from core.errors import TenantguardError


class AnomalyError(TenantguardError):
    """Base of every anomaly error."""


class AnomalyConfigError(AnomalyError):
    """An anomaly setting (GeoIP database, allow-listed networks, thresholds) is wrong."""


class ModelIntegrityError(AnomalyError):
    """A stored model file does not match the SHA-256 recorded when it was trained."""
