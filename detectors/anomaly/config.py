"""Anomaly settings: the ``anomaly`` section of :class:`core.settings.Settings`
(``TENANTGUARD_ANOMALY_*``): thresholds, allow-lists, GeoIP databases."""

from __future__ import annotations

from core.settings import AnomalyConfig

__all__ = ["AnomalyConfig"]
