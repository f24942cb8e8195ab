"""Connections: defined in a TOML/YAML file or through the API, checked, and stored without secrets.

File format (TOML; YAML takes the same keys under a top-level ``connections:`` list)::

    [[connections]]
    name = "contoso"
    provider = "m365"                      # m365 | google | slack
    tenant = "00000000-0000-0000-0000-000000000000"
    streams = ["signins", "directory_audits"]   # optional: default = every stream that is configured
    [connections.config]                   # non-secret settings (see providers/)
    client_id = "..."
    [connections.secrets]                  # references only: env:VARIABLE or file:/path
    client_secret = "env:CONTOSO_CLIENT_SECRET"
    [connections.intervals]                # optional, seconds per stream
    signins = 300

Every create, update or disable writes an audit record (names of what changed; never a secret).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import select

import providers
from collectors.errors import CollectorError
from collectors.options import CollectorOptions
from collectors.retry import RetryPolicy
from collectors.streams.base import (
    StreamContext,
    configured_streams,
    missing_requirements,
    open_api,
    streams_for,
)
from core import loading
from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.db import Database
from core.models import Connection, Provider
from providers.credentials import Secrets, check_reference
from providers.errors import ConnectionConfigError, ProviderError

ACTOR = Actor.system("collector")


@dataclass(frozen=True)
class ConnectionDefinition:
    """A connection as an operator writes it: settings plus secret *references*."""

    name: str
    provider: str
    tenant: str
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    streams: tuple[str, ...] | None = None
    intervals: dict[str, int] = field(default_factory=dict)

    def stored_config(self) -> dict[str, Any]:
        config = dict(self.config)
        if self.streams is not None:
            config["streams"] = list(self.streams)
        if self.intervals:
            config["intervals"] = dict(self.intervals)
        return config


def validate(definition: ConnectionDefinition, *, where: str = "") -> ConnectionDefinition:
    """Refuse a definition that could never work, naming the connection and the key at fault."""
    prefix = f"{where}connection {definition.name!r}"
    if not definition.name or len(definition.name) > 200:
        raise ConnectionConfigError(f"{where}every connection needs a name (at most 200 characters)")
    try:
        spec = providers.get(definition.provider)
    except KeyError:
        raise ConnectionConfigError(
            f"{prefix}: provider {definition.provider!r} is not one of {', '.join(providers.names())}"
        ) from None
    if not definition.tenant:
        raise ConnectionConfigError(f"{prefix}: set 'tenant' (Entra tenant id, Google domain or Slack org)")
    for key in spec.required_config:
        if not definition.config.get(key):
            raise ConnectionConfigError(f"{prefix}: config needs {key!r}")
    for name, ref in definition.secrets.items():
        if name in definition.config:
            raise ConnectionConfigError(
                f"{prefix}: {name!r} is a secret; put a reference under [secrets], not config"
            )
        check_reference(f"{definition.name}.{name}", ref)
    for group in spec.required_secrets:
        if not any(name in definition.secrets for name in group):
            raise ConnectionConfigError(
                f"{prefix}: [secrets] needs {' or '.join(group)} (as env:VAR or file:/path)"
            )
    known = {s.name for s in streams_for(definition.provider)}
    for stream in list(definition.streams or ()) + list(definition.intervals):
        if stream not in known:
            raise ConnectionConfigError(
                f"{prefix}: unknown stream {stream!r} for {definition.provider}; known: {', '.join(sorted(known))}"
            )
    for stream, seconds in definition.intervals.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 1:
            raise ConnectionConfigError(f"{prefix}: interval for {stream!r} must be a number of seconds ≥ 1")
    return definition


_ENTRY_KEYS = ("name", "provider", "tenant", "config", "secrets", "enabled", "streams", "intervals")


class ConnectionEntry(BaseModel):
    """One connection in a connections file; `tenantguard schema connections` prints the file's schema."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    name: str = Field(description="Unique name, at most 200 characters.")
    provider: Provider
    tenant: str = Field(description="Entra tenant id, Google domain or Slack org.")
    config: dict[str, Any] = Field(default_factory=dict, description="Non-secret settings (see providers/).")
    secrets: dict[str, str] = Field(
        default_factory=dict, description="Secret references only: env:VARIABLE or file:/path."
    )
    enabled: bool = True
    streams: list[str] | None = Field(default=None, description="Default: every stream that is configured.")
    intervals: dict[str, int | float] = Field(
        default_factory=dict, description="Seconds between runs, per stream."
    )

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("each connection must be a table/mapping")
        unknown = set(data) - set(_ENTRY_KEYS)
        if unknown:
            raise ValueError(
                f"connection {data.get('name')!r}: unknown keys {sorted(map(str, unknown))} (secrets go under 'secrets')"
            )
        return data

    @model_validator(mode="after")
    def _works(self) -> ConnectionEntry:
        try:
            validate(self.definition())
        except ConnectionConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def definition(self) -> ConnectionDefinition:
        return ConnectionDefinition(
            name=self.name,
            provider=self.provider,
            tenant=self.tenant,
            config=dict(self.config),
            secrets=dict(self.secrets),
            enabled=self.enabled,
            streams=tuple(self.streams) if self.streams is not None else None,
            intervals=dict(self.intervals),  # type: ignore[arg-type]  # whole seconds or fractions
        )


class ConnectionsFile(BaseModel):
    """A connections file (TOML ``[[connections]]`` tables, or YAML under ``connections:``)."""

    model_config = ConfigDict(extra="forbid")

    connections: list[ConnectionEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ConnectionsFile:
        names = [c.name for c in self.connections]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"connection names must be unique; repeated: {', '.join(duplicates)}")
        return self


def load_connections_file(path: Path) -> list[ConnectionDefinition]:
    """Parse and validate a TOML or YAML connections file (bounded; errors name file and line)."""
    path = Path(path)
    kind = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "toml"
    try:
        loaded = loading.load_path(path, kind=kind)
    except loading.LoadError as exc:
        raise ConnectionConfigError(str(exc)) from None
    if loaded.data is None:
        loaded.documents[:] = [{}]
    if not isinstance(loaded.data, Mapping) or not isinstance(loaded.data.get("connections", []), list):
        raise ConnectionConfigError(f"{path}: expected a list of connections under 'connections'")
    parsed = loading.validate(ConnectionsFile, loaded, error=ConnectionConfigError)
    return [entry.definition() for entry in parsed.connections]


# ---- storing definitions (audited) ------------------------------------------------------------


_AUDITED_FIELDS = ("name", "provider", "tenant", "enabled", "config", "secret_refs", "source")


def _digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _snapshot(row: Connection) -> dict[str, Any]:
    """What the audit record keeps of a connection (secret *references*, never a secret). The config
    is encrypted at rest (core.crypto) and the audit chain is not: it keeps each config key with a
    digest of its value, enough to see what changed and to check a value against it."""
    snapshot = {name: getattr(row, name) for name in _AUDITED_FIELDS}
    snapshot["config"] = {key: _digest(value) for key, value in sorted((row.config or {}).items())}
    return snapshot


def _changes(row: Connection, definition: ConnectionDefinition) -> list[str]:
    wanted = {
        "provider": definition.provider,
        "tenant": definition.tenant,
        "enabled": definition.enabled,
        "config": definition.stored_config(),
        "secret_refs": dict(definition.secrets),
    }
    return [key for key, value in wanted.items() if getattr(row, key) != value]


def upsert_connection(
    db: Database, definition: ConnectionDefinition, *, actor: Actor, source: str = "api"
) -> tuple[Connection, str]:
    """Create or update one connection and audit it (before/after) in the same transaction.

    Returns (row, "created"|"updated"|"unchanged").
    """
    validate(definition)
    with db.session() as session:
        row = session.exec(select(Connection).where(Connection.name == definition.name)).first()
        if row is None:
            row = Connection(
                name=definition.name,
                provider=definition.provider,
                tenant=definition.tenant,
                enabled=definition.enabled,
                config=definition.stored_config(),
                secret_refs=dict(definition.secrets),
                source=source,
            )
            session.add(row)
            session.flush()
            record(
                session,
                actor=actor,
                action=AuditAction.CONNECTION_CREATED,
                object_type="connection",
                object_id=str(row.id),
                details={
                    "name": row.name,
                    "provider": row.provider,
                    "source": source,
                    "streams": definition.streams,
                    "secrets": sorted(definition.secrets),
                },
                before=None,
                after=_snapshot(row),
            )
            return row, "created"
        changed = _changes(row, definition)
        if row.source != source:
            changed.append("source")
        if not changed:
            return row, "unchanged"
        before = _snapshot(row)
        row.provider = definition.provider
        row.tenant = definition.tenant
        row.enabled = definition.enabled
        row.config = definition.stored_config()
        row.secret_refs = dict(definition.secrets)
        row.source = source
        row.updated_at = utcnow()
        session.add(row)
        after = _snapshot(row)
        moved = sorted(k for k in after if after[k] != before[k])
        record(
            session,
            actor=actor,
            action=AuditAction.CONNECTION_UPDATED,
            object_type="connection",
            object_id=str(row.id),
            details={"name": row.name, "changed": sorted(changed), "source": source},
            before={k: before[k] for k in moved},
            after={k: after[k] for k in moved},
        )
        return row, "updated"


def set_enabled(db: Database, name: str, enabled: bool, *, actor: Actor) -> Connection:
    with db.session() as session:
        row = session.exec(select(Connection).where(Connection.name == name)).first()
        if row is None:
            raise ConnectionConfigError(f"no connection named {name!r}")
        if row.enabled != enabled:
            row.enabled = enabled
            row.updated_at = utcnow()
            session.add(row)
            record(
                session,
                actor=actor,
                action=AuditAction.CONNECTION_ENABLED if enabled else AuditAction.CONNECTION_DISABLED,
                object_type="connection",
                object_id=str(row.id),
                details={"name": name},
                before={"enabled": not enabled},
                after={"enabled": enabled},
            )
        return row


def sync_connections(
    db: Database, definitions: Iterable[ConnectionDefinition], *, actor: Actor = ACTOR, source: str = "file"
) -> dict[str, str]:
    """Make the stored connections from `source` match `definitions`; name -> what happened.

    Connections from the same source that are no longer defined are disabled (their history
    stays); connections made through the API are never touched by a file sync.
    """
    outcome: dict[str, str] = {}
    seen = set()
    for definition in definitions:
        _, what = upsert_connection(db, definition, actor=actor, source=source)
        outcome[definition.name] = what
        seen.add(definition.name)
    with db.session(readonly=True) as session:
        stale = session.exec(
            select(Connection.name).where(Connection.source == source, Connection.enabled == True)  # noqa: E712
        ).all()
    for name in stale:
        if name not in seen:
            set_enabled(db, name, False, actor=actor)
            outcome[name] = "disabled"
    return outcome


def sync_connections_file(db: Database, path: Path, *, actor: Actor = ACTOR) -> dict[str, str]:
    return sync_connections(db, load_connections_file(path), actor=actor, source="file")


def describe(connection: Connection) -> dict[str, Any]:
    """A connection for display or the API: settings, secret *names*, health — never a secret."""
    return {
        "id": connection.id,
        "name": connection.name,
        "provider": connection.provider,
        "tenant": connection.tenant,
        "enabled": connection.enabled,
        "source": connection.source,
        "config": connection.config,
        "secrets": sorted(connection.secret_refs or {}),
        "health": connection.health,
        "health_reason": connection.health_reason,
        "last_run_at": connection.last_run_at,
        "last_success_at": connection.last_success_at,
    }


# ---- checking credentials and permissions -----------------------------------------------------


@dataclass(frozen=True)
class StreamCheck:
    stream: str
    ok: bool
    problem: str | None = None
    permission: str | None = None


@dataclass(frozen=True)
class ConnectionCheck:
    connection: str
    provider: str
    secrets_missing: dict[str, str]
    streams: tuple[StreamCheck, ...]

    @property
    def ok(self) -> bool:
        return not self.secrets_missing and all(s.ok for s in self.streams)

    def missing(self) -> list[str]:
        """Plain sentences: what the operator must add or grant."""
        lines = list(self.secrets_missing.values())
        lines += [f"{s.stream}: {s.problem}" for s in self.streams if not s.ok]
        return lines


def check_connection(connection: Connection, *, options: CollectorOptions | None = None) -> ConnectionCheck:
    """Read one page (or less) of every configured stream and report what fails and why."""
    from providers.errors import AuthenticationFailed, PermissionMissing

    options = options or CollectorOptions()
    secrets = Secrets(connection.secret_refs or {})
    missing = secrets.missing()
    checks: list[StreamCheck] = []
    for spec in streams_for(connection.provider):
        if spec not in configured_streams(connection):
            continue
        if missing:
            checks.append(StreamCheck(spec.name, False, "not checked: secrets are missing", spec.permission))
            continue
        ctx = StreamContext(
            connection=connection,
            secrets=secrets,
            cursor={},
            options=options,
            policy=RetryPolicy(max_attempts=3, malformed_attempts=2, backoff_max=2.0, max_retry_after=30.0),
            now=utcnow().replace(microsecond=0),
            probe=True,
        )
        try:
            ctx.api = open_api(ctx)
            next(iter(spec.read(ctx)), None)
        except PermissionMissing as exc:
            checks.append(
                StreamCheck(spec.name, False, f"missing permission {exc.permission}: {exc}", exc.permission)
            )
        except AuthenticationFailed as exc:
            checks.append(StreamCheck(spec.name, False, f"credentials rejected: {exc}", spec.permission))
        except (CollectorError, ProviderError, KeyError) as exc:
            checks.append(StreamCheck(spec.name, False, str(exc), spec.permission))
        except Exception as exc:  # report, do not crash the whole check
            checks.append(StreamCheck(spec.name, False, f"{type(exc).__name__}: {exc}", spec.permission))
        else:
            checks.append(StreamCheck(spec.name, True, None, spec.permission))
    if not connection.config.get("streams"):
        configured = configured_streams(connection)
        for spec in streams_for(connection.provider):
            needs = missing_requirements(connection, spec)
            if spec not in configured and needs:
                checks.append(
                    StreamCheck(spec.name, True, f"not collected: set {' and '.join(needs)} to read it")
                )
    return ConnectionCheck(connection.name, connection.provider, missing, tuple(checks))


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    return json.dumps(str(value))


def definitions_to_toml(definitions: Sequence[ConnectionDefinition]) -> str:
    """Render definitions as a connections file (secret references only)."""
    lines: list[str] = []
    for d in definitions:
        lines += [
            "[[connections]]",
            f"name = {_toml_value(d.name)}",
            f"provider = {_toml_value(d.provider)}",
            f"tenant = {_toml_value(d.tenant)}",
            f"enabled = {_toml_value(d.enabled)}",
        ]
        if d.streams is not None:
            lines.append(f"streams = {_toml_value(list(d.streams))}")
        for table, content in (("config", d.config), ("secrets", d.secrets), ("intervals", d.intervals)):
            if content:
                lines.append(f"[connections.{table}]")
                lines += [f"{_toml_value(k)} = {_toml_value(v)}" for k, v in content.items() if v is not None]
        lines.append("")
    return "\n".join(lines)
