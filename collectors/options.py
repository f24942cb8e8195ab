"""Collector tuning: the ``collector`` section of :class:`core.settings.Settings`
(``TENANTGUARD_COLLECTOR_*``); per-connection overrides live in ``Connection.config``."""

from __future__ import annotations

from core.settings import CollectorOptions

__all__ = ["CollectorOptions"]
