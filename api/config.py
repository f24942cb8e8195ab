"""API settings: the ``api`` section of :class:`core.settings.Settings` (``TENANTGUARD_API_*``)."""

from __future__ import annotations

from core.settings import ApiSettings

__all__ = ["ApiSettings"]
