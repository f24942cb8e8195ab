"""Request and response shapes for connections. Secrets appear only as references (env:/file:)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from core.models import Provider
from core.redaction import RedactionKind, RedactionPolicy, redact

SECRET_REF_PATTERN = r"^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|file:/[^\x00-\x1f]{1,490})$"
_SECRET_LOOKING_KEY = re.compile(
    r"secret|passw|token|private.?key|api.?key|credential|authorization|cookie", re.IGNORECASE
)


def _holds_a_secret(value: str) -> bool:
    """Found by value, whatever the key is called: a password in a proxy URL, a bearer header, a token."""
    return bool(
        redact(value, RedactionPolicy(frozenset({RedactionKind.SECRET}))).counts.get(RedactionKind.SECRET)
    )


_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"


def _reject_inline_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """Secrets belong in `secret_refs`; a config key that looks like one must hold a reference."""
    stack: list[tuple[str, Any]] = list(config.items())
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{key}[{i}]", v) for i, v in enumerate(value))
        elif (
            _SECRET_LOOKING_KEY.search(key.rsplit(".", 1)[-1])
            and not (isinstance(value, str) and re.match(SECRET_REF_PATTERN, value))
        ) or (isinstance(value, str) and _holds_a_secret(value)):
            raise ValueError(
                f"config key {key!r} looks like a secret: store it outside tenantguard and give a "
                "reference instead ('env:VARIABLE' or 'file:/path') in secret_refs"
            )
    if len(repr(config)) > 16_384:
        raise ValueError("config is larger than 16 KiB; it is meant for a few non-secret settings")
    return config


SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
SecretRef = Annotated[str, StringConstraints(pattern=SECRET_REF_PATTERN, max_length=500)]
StreamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,99}$")]


class LastRun(BaseModel):
    """The most recent collection run of one stream."""

    model_config = ConfigDict(from_attributes=True)

    status: str
    worker: str
    started_at: datetime
    finished_at: datetime | None
    pages: int
    records_read: int
    records_new: int
    error: str | None


class StreamHealth(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    stream: str
    health: str
    health_reason: str | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    updated_at: datetime
    last_run: LastRun | None = None


class ConnectionOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "contoso-m365",
                    "provider": "m365",
                    "tenant": "contoso.onmicrosoft.com",
                    "enabled": True,
                    "config": {"client_id": "7d1c…"},
                    "secret_refs": {"client_secret": "env:CONTOSO_M365_SECRET"},
                    "source": "api",
                    "health": "unhealthy",
                    "health_reason": "signins: 401 from Graph (invalid_client); check the client secret",
                    "last_run_at": "2025-03-02T08:15:00Z",
                    "last_success_at": "2025-03-02T07:15:00Z",
                    "created_at": "2025-01-10T12:00:00Z",
                    "updated_at": "2025-03-02T08:15:00Z",
                    "streams": [],
                }
            ]
        },
    )

    id: int
    name: str
    provider: str
    tenant: str
    enabled: bool
    config: dict[str, Any]
    secret_refs: dict[str, str] = Field(
        description="Where each credential is read from; never the credential."
    )
    source: str = Field(description="`file` (the connections file) or `api`.")
    health: str
    health_reason: str | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime
    streams: list[StreamHealth] = Field(default_factory=list)


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "contoso-m365",
                    "provider": "m365",
                    "tenant": "contoso.onmicrosoft.com",
                    "config": {"client_id": "7d1c0c52-0000-4000-8000-000000000000"},
                    "secret_refs": {"client_secret": "env:CONTOSO_M365_SECRET"},
                }
            ]
        },
    )

    name: str = Field(pattern=_NAME_PATTERN)
    provider: Provider
    tenant: str = Field(min_length=1, max_length=300)
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)
    secret_refs: dict[SecretName, SecretRef] = Field(default_factory=dict, max_length=20)
    streams: list[StreamName] | None = Field(
        default=None, max_length=30, description="Default: every configured stream."
    )
    intervals: dict[StreamName, Annotated[int, Field(ge=10, le=86_400)]] = Field(
        default_factory=dict, max_length=30, description="Seconds between runs, per stream."
    )

    @field_validator("config")
    @classmethod
    def _config_has_no_secrets(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _reject_inline_secrets(value)


class ConnectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})

    tenant: str | None = Field(default=None, min_length=1, max_length=300)
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    secret_refs: dict[SecretName, SecretRef] | None = Field(default=None, max_length=20)
    streams: list[StreamName] | None = Field(default=None, max_length=30)
    intervals: dict[StreamName, Annotated[int, Field(ge=10, le=86_400)]] | None = Field(
        default=None, max_length=30
    )

    @field_validator("config")
    @classmethod
    def _config_has_no_secrets(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _reject_inline_secrets(value)


class StreamCheckOut(BaseModel):
    stream: str
    ok: bool
    problem: str | None
    permission: str | None


class ConnectionCheckOut(BaseModel):
    """What a live probe of the connection found: missing secrets, and each stream's first page."""

    connection: str
    provider: str
    ok: bool
    secrets_missing: dict[str, str]
    streams: list[StreamCheckOut]
