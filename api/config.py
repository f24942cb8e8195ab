"""API settings (environment prefix ``TENANTGUARD_API_``): limits, rate limits, token pepper, OIDC."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Everything the HTTP edge needs beyond the core settings; safe defaults for one machine."""

    model_config = SettingsConfigDict(env_prefix="TENANTGUARD_API_", env_file=None, extra="ignore")

    # Secret mixed into every token hash (HMAC key). Unset: a random one is kept in
    # `<data_dir>/api-token-pepper`; set it explicitly when several hosts share one database.
    token_pepper: SecretStr | None = None

    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    # Audit exports uploaded for verification can be much larger than ordinary bodies.
    max_upload_bytes: int = Field(default=64 << 20, ge=1024)

    # Token bucket per caller: sustained requests per second and burst size. 0 disables.
    rate_limit_per_second: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    # Failed authentications allowed per client address per minute.
    auth_failures_per_minute: int = Field(default=30, ge=1)

    # Single sign-on: bearer JWTs signed by this issuer (keys from its JWKS) are accepted too.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    oidc_role_claim: str = "roles"
    oidc_name_claim: str = "preferred_username"
    # Prefix that role claim values carry in the identity provider, e.g. "tenantguard." .
    oidc_role_prefix: str = ""
    oidc_leeway_seconds: int = Field(default=30, ge=0)

    # Whether Prometheus `/metrics` needs a token (scrapers usually run inside the network).
    metrics_require_auth: bool = False

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)
