"""Reading and changing connections; every change is audited with its before and after."""

from __future__ import annotations

import queue
import threading
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from api.connections.schemas import (
    ConnectionCheckOut,
    ConnectionCreate,
    ConnectionOut,
    ConnectionUpdate,
    LastRun,
    StreamCheckOut,
    StreamHealth,
)
from api.context import RequestContext
from api.errors import Conflict, GatewayTimeout, NotFound, Unprocessable
from collectors.connections import ConnectionCheck, ConnectionDefinition, check_connection, upsert_connection
from core.models import Checkpoint, Connection
from core.models.connection import CollectionRun
from providers.credentials import CREDENTIAL_DESTINATION_KEYS, SecretAllowList


def _latest_runs(session: Session, connection_ids: list[int]) -> dict[tuple[int, str], CollectionRun]:
    """The newest run of every (connection, stream), one indexed query."""
    if not connection_ids:
        return {}
    newest = (
        select(CollectionRun.connection_id, CollectionRun.stream, func.max(CollectionRun.id).label("run_id"))
        .where(col(CollectionRun.connection_id).in_(connection_ids))
        .group_by(col(CollectionRun.connection_id), col(CollectionRun.stream))
        .subquery()
    )
    runs = session.exec(select(CollectionRun).join(newest, col(CollectionRun.id) == newest.c.run_id)).all()
    return {(run.connection_id, run.stream): run for run in runs}


def _describe(session: Session, connections: list[Connection]) -> list[ConnectionOut]:
    ids = [c.id for c in connections if c.id is not None]
    checkpoints: dict[int, list[Checkpoint]] = {}
    if ids:
        for checkpoint in session.exec(
            select(Checkpoint).where(col(Checkpoint.connection_id).in_(ids))
        ).all():
            checkpoints.setdefault(checkpoint.connection_id, []).append(checkpoint)
    runs = _latest_runs(session, ids)
    described = []
    for connection in connections:
        out = ConnectionOut.model_validate(connection)
        for checkpoint in sorted(checkpoints.get(connection.id or 0, []), key=lambda c: c.stream):
            stream = StreamHealth.model_validate(checkpoint)
            run = runs.get((checkpoint.connection_id, checkpoint.stream))
            stream.last_run = LastRun.model_validate(run) if run is not None else None
            out.streams.append(stream)
        described.append(out)
    return described


def list_connections(session: Session) -> list[ConnectionOut]:
    return _describe(session, list(session.exec(select(Connection).order_by(col(Connection.name))).all()))


def _load(session: Session, connection_id: int) -> Connection:
    connection = session.get(Connection, connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id} does not exist")
    return connection


def get_connection(session: Session, connection_id: int) -> ConnectionOut:
    return _describe(session, [_load(session, connection_id)])[0]


def _definition(values: dict[str, Any]) -> ConnectionDefinition:
    return ConnectionDefinition(
        name=values["name"],
        provider=values["provider"],
        tenant=values["tenant"],
        config=dict(values.get("config") or {}),
        secrets=dict(values.get("secret_refs") or {}),
        enabled=values.get("enabled", True),
        streams=tuple(values["streams"]) if values.get("streams") is not None else None,
        intervals=dict(values.get("intervals") or {}),
    )


def secret_allow_list(ctx: RequestContext) -> SecretAllowList:
    api = ctx.state.api_settings
    dirs = tuple(api.secret_dirs) or (ctx.settings.data_dir / "secrets",)
    return SecretAllowList(dirs, tuple(api.secret_env_prefixes))


def _refuse_unlisted_secrets(ctx: RequestContext, refs: dict[str, str]) -> None:
    """The API names secrets only where the operator keeps them: never any file or variable of the server."""
    allow = secret_allow_list(ctx)
    refusals = [reason for name, ref in sorted(refs.items()) if (reason := allow.refusal(name, ref))]
    if refusals:
        raise Unprocessable(
            "; ".join(refusals) + ". Put the secret there (TENANTGUARD_API_SECRET_DIRS, "
            "TENANTGUARD_API_SECRET_ENV_PREFIXES) or define the connection in the connections file"
        )


def _destinations(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config[key] for key in sorted(CREDENTIAL_DESTINATION_KEYS & config.keys())}


def _refuse_endpoint_overrides(ctx: RequestContext, config: dict[str, Any]) -> None:
    if ctx.state.api_settings.allow_endpoint_overrides:
        return
    overridden = list(_destinations(config))
    if overridden:
        raise Unprocessable(
            f"config {', '.join(overridden)}: a connection made through the API talks to its provider's own "
            "addresses; the operator can allow other ones with TENANTGUARD_API_ALLOW_ENDPOINT_OVERRIDES=true "
            "(or define the connection in the connections file)"
        )


def create_connection(ctx: RequestContext, body: ConnectionCreate) -> ConnectionOut:
    """Validated and stored by the collectors' own definition path (the same as the connections file)."""
    _refuse_unlisted_secrets(ctx, body.secret_refs)
    _refuse_endpoint_overrides(ctx, body.config)
    with ctx.db.session(readonly=True) as session:
        if session.exec(select(Connection).where(Connection.name == body.name)).first() is not None:
            raise Conflict(f"a connection named {body.name!r} already exists; choose another name")
    row, _ = upsert_connection(
        ctx.db, _definition(body.model_dump(mode="json")), actor=ctx.actor, source="api"
    )
    assert row.id is not None
    with ctx.db.session(readonly=True) as session:
        return get_connection(session, row.id)


def update_connection(ctx: RequestContext, connection_id: int, body: ConnectionUpdate) -> ConnectionOut:
    changes = body.model_dump(mode="json", exclude_unset=True)
    cleared = [name for name in ("tenant", "enabled", "config") if name in changes and changes[name] is None]
    if cleared:
        raise Unprocessable(f"{', '.join(cleared)} cannot be null; leave a field out to keep its value")
    with ctx.db.session(readonly=True) as session:
        row = _load(session, connection_id)
        if row.source == "file":
            raise Conflict(
                f"connection {row.name!r} is defined in the connections file; change it there "
                "(the next file sync would undo a change made here)"
            )
        stored = {
            name: getattr(row, name) for name in ("name", "provider", "tenant", "enabled", "secret_refs")
        }
        stored_config = dict(row.config or {})
    config = {k: v for k, v in stored_config.items() if k not in ("streams", "intervals")}
    current = {
        **stored,
        "config": config,
        "streams": stored_config.get("streams"),
        "intervals": stored_config.get("intervals") or {},
    }
    current.update({k: v for k, v in changes.items() if v is not None or k in ("secret_refs", "streams")})
    if "config" in changes:
        moved = [
            key
            for key in sorted(CREDENTIAL_DESTINATION_KEYS & (config.keys() | current["config"].keys()))
            if config.get(key) != current["config"].get(key)
        ]
        if moved:
            _refuse_endpoint_overrides(ctx, {k: True for k in moved if current["config"].get(k) is not None})
            if "secret_refs" not in changes:
                raise Unprocessable(
                    f"config {', '.join(moved)} changes where connection {stored['name']!r} sends its "
                    "credentials: give its secret_refs again in the same request"
                )
    _refuse_unlisted_secrets(ctx, dict(current.get("secret_refs") or {}))
    upsert_connection(ctx.db, _definition(current), actor=ctx.actor, source="api")
    with ctx.db.session(readonly=True) as session:
        return get_connection(session, connection_id)


def check(ctx: RequestContext, connection_id: int) -> ConnectionCheckOut:
    with ctx.db.session(readonly=True) as session:
        row = _load(session, connection_id)
    if row.source == "api":  # a row stored before the allow-list existed is not probed with a free path
        _refuse_unlisted_secrets(ctx, dict(row.secret_refs or {}))
    result = _check_within(row, ctx.state.api_settings.connection_check_seconds)
    return ConnectionCheckOut(
        connection=result.connection,
        provider=result.provider,
        ok=result.ok,
        secrets_missing=dict(result.secrets_missing),
        streams=[
            StreamCheckOut(stream=s.stream, ok=s.ok, problem=s.problem, permission=s.permission)
            for s in result.streams
        ],
    )


def _check_within(row: Connection, seconds: float) -> ConnectionCheck:
    """The probe in a thread of its own, waited for `seconds`: a provider that accepts the connection
    and never answers cannot hold the request (or, on SIGTERM, the server). The abandoned thread
    ends with its HTTP client's own timeouts."""
    outcome: queue.Queue[ConnectionCheck | BaseException] = queue.Queue(maxsize=1)

    def probe() -> None:
        try:
            outcome.put(check_connection(row))
        except BaseException as exc:  # handed to the request thread, raised there
            outcome.put(exc)

    threading.Thread(target=probe, name=f"check-{row.name}", daemon=True).start()
    try:
        result = outcome.get(timeout=seconds)
    except queue.Empty:
        raise GatewayTimeout(
            f"connection {row.name!r}: the provider did not answer the probe within {seconds:g} s "
            "(TENANTGUARD_API_CONNECTION_CHECK_SECONDS); check its address and that it is reachable"
        ) from None
    if isinstance(result, BaseException):
        raise result
    return result
