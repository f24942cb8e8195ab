"""Anomaly settings (env prefix ``TENANTGUARD_ANOMALY_``): thresholds, allow-lists, GeoIP database."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from detectors.anomaly.errors import AnomalyConfigError


class AnomalyConfig(BaseSettings):
    """Defaults tuned on the simulator's quiet week (≤ 1 medium+ finding per 1,000 users per day)."""

    model_config = SettingsConfigDict(
        env_prefix="TENANTGUARD_ANOMALY_", env_file=None, extra="ignore", frozen=True
    )

    geoip_database: Path | None = None
    geoip_asn_database: Path | None = None
    # VPN and corporate egress networks: sign-ins from them never count as travel or a new network.
    allowed_networks: list[str] = Field(default_factory=list)
    baseline_days: int = 30
    min_baseline_days: int = 5
    min_baseline_signins: int = 5
    impossible_speed_kmh: float = 1000.0
    min_travel_km: float = 500.0
    spray_window_minutes: int = 60
    spray_min_accounts: int = 8
    spray_min_failure_ratio: float = 0.6
    mfa_window_minutes: int = 15
    mfa_min_denials: int = 3
    volume_min_count: int = 40
    volume_user_sigmas: float = 4.0
    volume_peer_factor: float = 2.0
    unusual_hour_max_share: float = 0.01
    model_trees: int = 64
    model_sample: int = 256
    model_alert_quantile: float = 0.9995
    model_max_age_hours: int = 24

    @cached_property
    def allowed(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        networks = []
        for text in self.allowed_networks:
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise AnomalyConfigError(
                    f"TENANTGUARD_ANOMALY_ALLOWED_NETWORKS: {text!r} is not a network (use CIDR like 203.0.113.0/24)"
                ) from None
        return tuple(networks)

    def is_allowed(self, ip: str | None) -> bool:
        if not ip or not self.allowed:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.allowed)
