"""The one configuration: :class:`Settings`, read from the environment (prefix ``TENANTGUARD_``)
once per process and passed down explicitly (``Database.from_settings`` keeps it as ``db.settings``).

It is nested: the top level holds what every part needs; each area has its section with the
environment prefix it has always had (``TENANTGUARD_API_*``, ``TENANTGUARD_REMEDIATION_*``,
``TENANTGUARD_COLLECTOR_*``, ``TENANTGUARD_ANOMALY_*``, ``TENANTGUARD_TIMELINE_*``), so existing
variable names keep working. A ``TENANTGUARD_*`` variable that names no setting is an error naming
the closest valid name (:class:`UnknownSettingError`), raised when the settings load.

The README's configuration table is generated from these models (``tenantguard config docs``).
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.durations import Duration
from core.errors import ConfigurationError

PREFIX = "TENANTGUARD_"

# TENANTGUARD_* variables that are not settings: tooling and tests, and prefixes under which an
# operator may keep secrets that connections reference (env:TENANTGUARD_SECRET_...).
NOT_SETTINGS: dict[str, str] = {
    "TENANTGUARD_DEBUG": "full tracebacks from the CLI (same as --debug)",
    "TENANTGUARD_PRINCIPAL": "default --as for remediation CLI commands (checked against the credential)",
    "TENANTGUARD_TOKEN": "the API token (or SSO ID token) remediation CLI commands authenticate with",
    "TENANTGUARD_CREDENTIALS_FILE": "where `tenantguard login` stores the credential (default ~/.config/tenantguard/credentials)",
    "TENANTGUARD_LOCAL_OPERATOR": "1: remediation CLI commands act as the unauthenticated local:<os user> (never an approver)",
    "TENANTGUARD_REQUIRE_POSTGRES": "tests: fail instead of skip when PostgreSQL is unreachable",
    "TENANTGUARD_REQUIRE_BROWSER": "tests: fail instead of skip when Chromium (the browser suite) is missing",
}
NOT_SETTINGS_PREFIXES: dict[str, str] = {
    "TENANTGUARD_SECRET_": "secrets that connections reference as env:TENANTGUARD_SECRET_...",
    "TENANTGUARD_SIM_": "simulator credentials the demo and tests put in the environment",
    "TENANTGUARD_TEST_": "test suite options",
    "TENANTGUARD_BENCH_": "benchmark options",
    "TENANTGUARD_FUZZ_": "fuzzing budget",
    "TENANTGUARD_SCHEMATHESIS_": "API fuzzing budget",
}

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class UnknownSettingError(ConfigurationError, ValueError):
    """A ``TENANTGUARD_*`` environment variable that names no setting (a typo, or a removed one)."""


def _explain(model: type[BaseSettings], exc: ValidationError) -> ConfigurationError:
    """A ValidationError as one line per bad value, each naming its environment variable."""
    lines = []
    model = next((m for m in SECTIONS.values() if m.__name__ == exc.title), model)
    for error in exc.errors():
        path = [str(p) for p in error["loc"]]
        if path and path[0] in SECTIONS and model is Settings:
            name = env_name(SECTIONS[path[0]], path[1]) if len(path) > 1 else env_name(Settings, path[0])
        elif path:
            name = env_name(model, path[0])
        else:
            name = model.__name__
        lines.append(f"{name}: {error['msg']}")
    return ConfigurationError("invalid settings: " + "; ".join(lines))


def _section(prefix: str, **extra: Any) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=None, extra="ignore", **extra)  # type: ignore[typeddict-item]


class ApiSettings(BaseSettings):
    """The HTTP edge: limits, rate limits, token pepper, single sign-on."""

    model_config = _section("TENANTGUARD_API_")

    token_pepper: SecretStr | None = Field(
        default=None,
        description="Secret mixed into every token hash. Unset: a random one kept in `<data_dir>/api-token-pepper`; "
        "set it when several hosts share one database.",
    )
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="Largest request body accepted.")
    max_upload_bytes: int = Field(
        default=64 << 20, ge=1024, description="Largest audit export uploaded for verification."
    )
    rate_limit_per_second: float = Field(
        default=50.0, ge=0, description="Sustained requests per second per caller (0 disables)."
    )
    rate_limit_burst: int = Field(default=200, ge=1, description="Burst size of the per-caller token bucket.")
    auth_failures_per_minute: int = Field(
        default=30, ge=1, description="Failed authentications allowed per client address per minute."
    )
    oidc_issuer: str | None = Field(
        default=None, description="OIDC issuer whose signed JWTs are accepted too."
    )
    oidc_audience: str | None = Field(default=None, description="Audience the JWTs must carry.")
    oidc_jwks_url: str | None = Field(
        default=None, description="JWKS URL (default: from the issuer's discovery)."
    )
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"], description="Accepted JWT algorithms (JSON list)."
    )
    oidc_role_claim: str = Field(default="roles", description="Claim holding the roles.")
    oidc_name_claim: str = Field(default="preferred_username", description="Claim holding the person's name.")
    oidc_role_prefix: str = Field(default="", description='Prefix role values carry, e.g. "tenantguard.".')
    oidc_leeway_seconds: int = Field(default=30, ge=0, description="Clock skew allowed on JWT times.")
    oidc_client_id: str | None = Field(
        default=None,
        description="Client id the web console signs people in with (OIDC authorization code + PKCE, "
        "redirect URI `<console URL>/console/oidc/callback`); unset: console sign-in with API tokens only.",
    )
    oidc_client_secret_ref: str | None = Field(
        default=None,
        description="Reference (env:VAR or file:/path) to the console client's secret (confidential clients).",
    )
    metrics_require_auth: bool = Field(default=False, description="Whether /metrics needs a token.")
    secret_dirs: list[Path] = Field(
        default_factory=list,
        description="Directories whose files connections made through the API may name as `file:` secrets "
        "(JSON list; unset: `<data_dir>/secrets`).",
    )
    secret_env_prefixes: list[str] = Field(
        default_factory=lambda: ["TENANTGUARD_SECRET_"],
        description="Prefixes of the environment variables connections made through the API may name as "
        "`env:` secrets (JSON list).",
    )
    allow_endpoint_overrides: bool = Field(
        default=False,
        description="Whether connections made through the API may set provider URLs (base URLs, authority, "
        "proxy, CA bundle); off: each provider's own.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of the reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed "
        "(JSON list of IPs or networks); unset: none, every client is the address that connected.",
    )
    request_time_limit_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A request not answered within this many seconds gets a 503 (0 disables; streamed "
        "answers that have started are left to finish).",
    )
    connection_check_seconds: float = Field(
        default=20.0, gt=0, description="Longest a POST /connections/{id}/check probe may take before a 504."
    )
    shutdown_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        description="On SIGTERM `serve` stops accepting requests, lets those in flight finish for this "
        "long, then exits whatever still runs.",
    )

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)


class RemediationSettings(BaseSettings):
    """The write side: approval policy, playbooks, Slack approvals."""

    model_config = _section("TENANTGUARD_REMEDIATION_")

    policy_file: Path | None = Field(
        default=None, description="Approval policy (YAML). Unset: the shipped remediation/policy.yaml."
    )
    playbooks_dir: Path | None = Field(
        default=None, description="Where playbooks live. Unset: the shipped rules/playbooks/."
    )
    slack_signing_secret_ref: str | None = Field(
        default=None, description="Reference (env:VAR or file:/path) to the Slack app's signing secret."
    )
    slack_team_ids: list[str] = Field(
        default_factory=list,
        description="Slack teams whose button clicks are accepted besides those of the Slack connections (JSON list).",
    )
    slack_max_skew_seconds: int = Field(
        default=300, ge=1, description="How old a Slack request may be before it is refused as a replay."
    )


class CollectorOptions(BaseSettings):
    """How hard and how often the collectors work (connections may override some per connection)."""

    model_config = _section("TENANTGUARD_COLLECTOR_")

    threads: int = Field(default=4, ge=1, description="(connection, stream) jobs run at once in one process.")
    max_attempts: int = Field(default=8, ge=1, description="Attempts for 5xx/timeouts and 429s.")
    malformed_attempts: int = Field(
        default=3, ge=1, description="Re-reads of a malformed page before it is quarantined."
    )
    backoff_base: float = Field(default=0.5, ge=0, description="First retry delay (seconds).")
    backoff_max: float = Field(default=30.0, ge=0, description="Longest retry delay (seconds).")
    max_retry_after: float = Field(
        default=900.0, ge=0, description="A longer Retry-After fails the run (tried again next interval)."
    )
    backfill_days: float = Field(
        default=7.0, ge=0, description="How far back a stream with no checkpoint starts."
    )
    overlap_minutes: float = Field(
        default=120.0, ge=0, description="Re-read this much before the high-water mark (late data)."
    )
    window_hours: float = Field(default=24.0, gt=0, description="Longest time window read in one piece.")
    page_size: int = Field(default=500, ge=1, description="Records asked for per page.")
    reconcile_hours: float = Field(
        default=24.0, gt=0, description="Snapshot streams read everything this often; deltas in between."
    )
    run_history_days: float = Field(
        default=30.0, ge=0, description="Finished run records older than this are pruned."
    )
    worker_id: str | None = Field(default=None, description="This worker's name. Unset: host:pid:nonce.")

    def worker(self) -> str:
        """`host:pid:nonce` — names the process in run records (who ran what)."""
        return self.worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class AnomalyConfig(BaseSettings):
    """Anomaly thresholds, allow-lists, GeoIP databases. Defaults tuned on the simulator's quiet
    week (≤ 1 medium+ finding per 1,000 users per day)."""

    model_config = _section("TENANTGUARD_ANOMALY_", frozen=True)

    geoip_database: Path | None = Field(
        default=None, description="MaxMind City database (default: built-in data)."
    )
    geoip_asn_database: Path | None = Field(default=None, description="MaxMind ASN database.")
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="VPN/corporate egress networks (JSON list of CIDRs): never travel or a new network.",
    )
    baseline_days: int = Field(default=30, description="Days of history a baseline covers.")
    min_baseline_days: int = Field(default=5, description="Days of history before a person is scored.")
    min_baseline_signins: int = Field(default=5, description="Sign-ins before a person is scored.")
    impossible_speed_kmh: float = Field(default=1000.0, description="Travel faster than this is impossible.")
    min_travel_km: float = Field(default=500.0, description="Shorter hops never count as travel.")
    spray_window_minutes: int = Field(default=60, description="Password-spray window.")
    spray_min_accounts: int = Field(default=8, description="Accounts one source must try to be a spray.")
    spray_min_failure_ratio: float = Field(default=0.6, description="Failure share of a spray.")
    mfa_window_minutes: int = Field(default=15, description="MFA-fatigue window.")
    mfa_min_denials: int = Field(default=3, description="Denied MFA prompts in the window.")
    volume_min_count: int = Field(default=40, description="Least downloads a volume anomaly needs.")
    volume_user_sigmas: float = Field(default=4.0, description="Deviation from the person's own baseline.")
    volume_peer_factor: float = Field(default=2.0, description="Factor above the peer group.")
    unusual_hour_max_share: float = Field(
        default=0.01, description="An hour this rare in the baseline is unusual."
    )
    model_trees: int = Field(default=64, description="Isolation-forest trees.")
    model_sample: int = Field(default=256, description="Isolation-forest sample size.")
    model_alert_quantile: float = Field(default=0.9995, description="Score quantile that raises a finding.")
    model_max_age_hours: int = Field(default=24, description="A model older than this is retrained.")

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not a network (use CIDR like 203.0.113.0/24)") from None
        return value

    @cached_property
    def allowed(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in self.allowed_networks)

    def is_allowed(self, ip: str | None) -> bool:
        if not ip or not self.allowed:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.allowed)


class TimelineSettings(BaseSettings):
    """Findings into incidents: grouping and conversation windows, SLAs, where announcements go."""

    model_config = _section("TENANTGUARD_TIMELINE_")

    group_window: Duration = Field(
        default=timedelta(hours=24),
        description="A finding joins an incident that shares a key and was active no longer ago than this.",
    )
    conversation_before: Duration = Field(
        default=timedelta(hours=48),
        description="Conversations are linked from this long before the first finding",
    )
    conversation_after: Duration = Field(
        default=timedelta(hours=72), description="... to this long after the last one."
    )
    sla_p1_acknowledge: Duration = Field(default=timedelta(minutes=15), description="P1: acknowledge within.")
    sla_p1_resolve: Duration = Field(default=timedelta(hours=4), description="P1: resolve within.")
    sla_p2_acknowledge: Duration = Field(default=timedelta(hours=1), description="P2: acknowledge within.")
    sla_p2_resolve: Duration = Field(default=timedelta(hours=24), description="P2: resolve within.")
    sla_p3_acknowledge: Duration = Field(default=timedelta(hours=8), description="P3: acknowledge within.")
    sla_p3_resolve: Duration = Field(default=timedelta(days=3), description="P3: resolve within.")
    sla_p4_acknowledge: Duration = Field(default=timedelta(hours=24), description="P4: acknowledge within.")
    sla_p4_resolve: Duration = Field(default=timedelta(days=7), description="P4: resolve within.")
    notify_channel: str | None = Field(
        default=None,
        description="Slack channel for incident announcements. Unset: the first enabled Slack connection's "
        "notify_channel.",
    )
    notify_connection: str | None = Field(
        default=None, description="Name of the Slack connection that posts announcements."
    )


class RetentionSettings(BaseSettings):
    """How long each class of data is kept (0 keeps it for ever); raw events are the top-level
    `event_retention_days`. The cycle's retention stage deletes what is due, except what a legal hold
    covers, and records every deletion in the audit chain."""

    model_config = _section("TENANTGUARD_RETENTION_")

    messages: Duration = Field(
        default=timedelta(0),
        description="Chat and mail messages (redacted) older than this are deleted (0 keeps them).",
    )
    findings: Duration = Field(
        default=timedelta(0),
        description="Findings last seen longer ago than this, and not part of an open incident, are deleted (0 keeps them).",
    )
    incidents: Duration = Field(
        default=timedelta(0),
        description="Ended incidents (resolved, closed, false positive, duplicate; with their timeline, plan and "
        "pages) that ended longer ago "
        "than this are deleted (0 keeps them).",
    )
    audit: Duration = Field(
        default=timedelta(0),
        description="Audit records older than this are truncated from the chain, leaving a checkpoint that "
        "keeps it verifiable (0 keeps them).",
    )
    interval: Duration = Field(
        default=timedelta(hours=1), description="How often the retention stage looks for data that is due."
    )


class Settings(BaseSettings):
    """Everything configurable. Secrets are never values here: settings and connections name them
    by reference (env:VAR, file:/path)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=None, extra="ignore")

    # Shown in the README instead of a machine-dependent default.
    DOC_DEFAULTS: ClassVar[dict[str, str]] = {"data_dir": "./.tenantguard"}

    data_dir: Path = Field(
        default_factory=lambda: Path.cwd() / ".tenantguard",
        description="Where the SQLite database, models and logs live.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL (postgresql://...). Unset: SQLite in data_dir."
    )
    log_level: str = Field(
        default="INFO",
        description="Logging level of serve, workers and the CLI (DEBUG, INFO, WARNING, ERROR).",
    )
    connections_file: Path | None = Field(
        default=None,
        description="Connection definitions (TOML or YAML); secrets only as `env:VAR` or `file:/path` references.",
    )
    response_file: Path | None = Field(
        default=None,
        description="Response configuration (incident channels, update cadence, status page, alert intake, Jira; "
        "YAML or TOML). Unset: <data dir>/response.yaml when it exists, else the defaults.",
    )
    rules_dir: Path | None = Field(
        default=None, description="Sigma rule pack. Unset: the shipped rules/detections/."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of this service, for links in notifications."
    )
    event_retention_days: int = Field(
        default=0,
        ge=0,
        description="Events that occurred longer ago than this are deleted by the retention stage (0 keeps "
        "everything). Must cover the collectors' backfill.",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM, mode 0600, made on first use) that signs the audit chain's "
        "checkpoints, its exports and evidence packages. Keep it where the database's users cannot read it. "
        "Unset: <data dir>/signing.key.",
    )
    encryption_key_file: Path | None = Field(
        default=None,
        description="Fernet keys (one per line, the first encrypts; mode 0600, made on first use while the "
        "database holds no encrypted value) that encrypt message texts, timeline bodies, connection config "
        "and comments at rest. Keep it outside the database and its backups. Unset: <data dir>/encryption.key.",
    )
    audit_checkpoint_interval: Duration = Field(
        default=timedelta(minutes=15),
        description="How often serve (or a worker) signs the audit chain's head as a checkpoint, when it has "
        "moved (0 never).",
    )
    pipeline_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often the safety sweep runs every stage."
    )
    pipeline_batch_size: int = Field(default=5000, ge=1, description="Events per detection batch.")
    pipeline_max_batches: int = Field(
        default=4, ge=1, description="Detection batches one job works through before it yields."
    )
    pipeline_partitions: int = Field(
        default=16,
        ge=1,
        description="Detection partitions: each organisation's connections (config `organisation`) hash into "
        "one, each partition is detected by its own job and cursor, so several workers detect several "
        "tenants at once (about 4 x workers; see docs/scaling.md before changing it on a running deployment).",
    )
    pipeline_lag_seconds: float = Field(
        default=600.0, gt=0, description="How far behind a stage may fall before /health says degraded."
    )
    pipeline_engine: Literal["embedded", "procrastinate"] = Field(
        default="embedded",
        description="Who runs the cycle's jobs: embedded (APScheduler inside serve, one process) or "
        "procrastinate (PostgreSQL: serve runs only the API, `tenantguard worker` processes run the jobs).",
    )
    worker_heartbeat_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often a worker heartbeats; one silent for five heartbeats is presumed dead and "
        "its jobs (its streams) move to the other workers.",
    )

    api: ApiSettings = Field(default_factory=ApiSettings)
    remediation: RemediationSettings = Field(default_factory=RemediationSettings)
    collector: CollectorOptions = Field(default_factory=CollectorOptions)
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    timeline: TimelineSettings = Field(default_factory=TimelineSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    def __init__(self, **values: Any) -> None:
        check_environment(os.environ)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _explain(Settings, exc) from None

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return level

    @model_validator(mode="after")
    def _retention_covers_backfill(self) -> Settings:
        days = self.event_retention_days
        if days and days < self.collector.backfill_days:
            raise ValueError(
                f"TENANTGUARD_EVENT_RETENTION_DAYS={days} is shorter than TENANTGUARD_COLLECTOR_BACKFILL_DAYS="
                f"{self.collector.backfill_days:g}: backfilled events would be deleted as soon as they arrive"
            )
        return self

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'tenantguard.db'}"

    @property
    def signing_key_path(self) -> Path:
        """The signing key's file: `signing_key_file`, else <data dir>/signing.key (or the
        evidence-signing.key that evidence packages were signed with before it, when only that exists)."""
        if self.signing_key_file is not None:
            return self.signing_key_file
        default = self.data_dir / "signing.key"
        legacy = self.data_dir / "evidence-signing.key"
        return legacy if legacy.exists() and not default.exists() else default

    @property
    def encryption_key_path(self) -> Path:
        return (
            self.encryption_key_file
            if self.encryption_key_file is not None
            else self.data_dir / "encryption.key"
        )

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.models_dir, self.logs_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)  # new ones private; existing ones as they are

    def configure_logging(self, *, unless_set: str | None = None) -> None:
        """Apply `log_level` to the root and `tenantguard` loggers (and a stderr handler when none is
        set up). `unless_set`: the level to use when TENANTGUARD_LOG_LEVEL was not given (the CLI
        stays quiet by default; serve and workers log at INFO)."""
        name = self.log_level if unless_set is None or "log_level" in self.model_fields_set else unless_set
        level = getattr(logging, name)
        root = logging.getLogger()
        if not root.handlers:
            logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        root.setLevel(level)
        logging.getLogger("tenantguard").setLevel(level)


SECTIONS: dict[str, type[BaseSettings]] = {
    "api": ApiSettings,
    "remediation": RemediationSettings,
    "collector": CollectorOptions,
    "anomaly": AnomalyConfig,
    "timeline": TimelineSettings,
    "retention": RetentionSettings,
}


def env_name(model: type[BaseSettings], field: str) -> str:
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def setting_fields() -> Iterator[tuple[str, type[BaseSettings], str]]:
    """(environment variable, model, field name) of every setting, top level first."""
    for name in Settings.model_fields:
        if name not in SECTIONS:
            yield env_name(Settings, name), Settings, name
    for model in SECTIONS.values():
        for name in model.model_fields:
            yield env_name(model, name), model, name


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse a ``TENANTGUARD_*`` variable that is no setting, naming the closest valid one."""
    valid = [name for name, _, _ in setting_fields()]
    known = set(valid) | set(NOT_SETTINGS)
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(PREFIX) or upper in known or upper.startswith(tuple(NOT_SETTINGS_PREFIXES)):
            continue
        close = difflib.get_close_matches(upper, valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see the configuration table in README.md"
        raise UnknownSettingError(f"environment variable {variable} is not a tenantguard setting; {hint}")


# -- the README's configuration table -----------------------------------------------------------

DOCS_BEGIN = "<!-- settings table: generated by `tenantguard config docs`; do not edit by hand -->"
DOCS_END = "<!-- end of settings table -->"
_SECTION_TITLES = {
    Settings: "general",
    ApiSettings: "API (`api`)",
    RemediationSettings: "remediation (`remediation`)",
    CollectorOptions: "collectors (`collector`)",
    AnomalyConfig: "anomaly detection (`anomaly`)",
    TimelineSettings: "incidents and notifications (`timeline`)",
    RetentionSettings: "retention (`retention`)",
}


def _doc_default(model: type[BaseSettings], name: str) -> str:
    if model is Settings and name in Settings.DOC_DEFAULTS:
        return f"`{Settings.DOC_DEFAULTS[name]}`"
    info = model.model_fields[name]
    value = info.get_default(call_default_factory=True)
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, timedelta):
        from core.durations import format_duration

        return f"`{format_duration(value)}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        import json

        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def settings_table() -> str:
    """The configuration table, in Markdown, from the settings models (the README embeds it)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    current: type[BaseSettings] | None = None
    for variable, model, name in setting_fields():
        if model is not current:
            current = model
            lines.append(f"| **{_SECTION_TITLES[model]}** | | |")
        meaning = (model.model_fields[name].description or "").replace("|", "\\|")
        lines.append(f"| `{variable}` | {_doc_default(model, name)} | {meaning} |")
    lines += ["", "Not settings, and so allowed with the prefix:", ""]
    lines += [f"- `{name}`: {why}" for name, why in NOT_SETTINGS.items()]
    lines += [f"- `{prefix}*`: {why}" for prefix, why in NOT_SETTINGS_PREFIXES.items()]
    return "\n".join(lines)


def with_settings_table(readme: str) -> str:
    """`readme` with the text between the settings-table markers replaced by `settings_table()`."""
    try:
        head, rest = readme.split(DOCS_BEGIN, 1)
        _, tail = rest.split(DOCS_END, 1)
    except ValueError:
        raise ConfigurationError(
            f"README has no settings-table markers ({DOCS_BEGIN} ... {DOCS_END})"
        ) from None
    return f"{head}{DOCS_BEGIN}\n{settings_table()}\n{DOCS_END}{tail}"
