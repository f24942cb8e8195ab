"""Remediation settings: the ``remediation`` section of :class:`core.settings.Settings`
(``TENANTGUARD_REMEDIATION_*``), and where the shipped defaults live."""

from __future__ import annotations

from pathlib import Path

from core.settings import RemediationSettings, Settings

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "policy.yaml"

__all__ = ["DEFAULT_POLICY_FILE", "RemediationSettings", "policy_file"]


def policy_file(settings: Settings | RemediationSettings) -> Path:
    """The approval policy file the settings name, else the shipped one."""
    section = settings.remediation if isinstance(settings, Settings) else settings
    return section.policy_file or DEFAULT_POLICY_FILE
