"""Remediation settings from the environment (prefix ``TENANTGUARD_REMEDIATION_``).

Kept here rather than in core.settings so that the remediation area owns its knobs; every
value has a default that works out of the box.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "policy.yaml"


class RemediationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTGUARD_REMEDIATION_", env_file=None, extra="ignore")

    # The approval policy (YAML); see remediation/policy.yaml for the format and the defaults.
    policy_file: Path = DEFAULT_POLICY_FILE
    # Where playbooks live (default: rules/playbooks/ of the source tree).
    playbooks_dir: Path | None = None
    # Reference (env:VAR or file:/path) to the Slack app's signing secret, for interactive approvals.
    slack_signing_secret_ref: str | None = None
    # How far a Slack request's timestamp may be from now before it is refused as a replay.
    slack_max_skew_seconds: int = 300
