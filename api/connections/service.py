"""Reading and changing connections; every change is audited with its before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.connections.schemas import ConnectionCreate, ConnectionOut, ConnectionUpdate, LastRun, StreamHealth
from api.context import RequestContext
from api.errors import Conflict, NotFound, Unprocessable
from core.clock import utcnow
from core.models import Checkpoint, Connection
from core.models.connection import CollectionRun

_AUDITED_FIELDS = ("name", "provider", "tenant", "enabled", "config", "secret_refs", "source")


def _snapshot(connection: Connection) -> dict[str, Any]:
    return {name: getattr(connection, name) for name in _AUDITED_FIELDS}


def _latest_runs(session: Session, connection_ids: list[int]) -> dict[tuple[int, str], CollectionRun]:
    """The newest run of every (connection, stream), one indexed query."""
    if not connection_ids:
        return {}
    newest = (
        select(CollectionRun.connection_id, CollectionRun.stream, func.max(CollectionRun.id).label("run_id"))
        .where(col(CollectionRun.connection_id).in_(connection_ids))
        .group_by(CollectionRun.connection_id, CollectionRun.stream)
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


def create_connection(ctx: RequestContext, body: ConnectionCreate) -> ConnectionOut:
    with ctx.db.session() as session:
        if session.exec(select(Connection).where(Connection.name == body.name)).first() is not None:
            raise Conflict(f"a connection named {body.name!r} already exists; choose another name")
        connection = Connection(**body.model_dump(mode="json"), source="api")
        session.add(connection)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(f"a connection named {body.name!r} already exists; choose another name")
        assert connection.id is not None
        ctx.audit(
            session,
            action="connection.create",
            object_type="connection",
            object_id=connection.id,
            after=_snapshot(connection),
        )
        return _describe(session, [connection])[0]


def update_connection(ctx: RequestContext, connection_id: int, body: ConnectionUpdate) -> ConnectionOut:
    changes = body.model_dump(mode="json", exclude_unset=True)
    cleared = [name for name in ("tenant", "enabled", "config") if name in changes and changes[name] is None]
    if cleared:
        raise Unprocessable(f"{', '.join(cleared)} cannot be null; leave a field out to keep its value")
    with ctx.db.session() as session:
        connection = _load(session, connection_id)
        if connection.source == "file":
            raise Conflict(
                f"connection {connection.name!r} is defined in the connections file; change it there "
                "(the next file sync would undo a change made here)"
            )
        before = _snapshot(connection)
        for name, value in changes.items():
            setattr(connection, name, value)
        connection.updated_at = utcnow()
        session.add(connection)
        session.flush()
        after = _snapshot(connection)
        if after != before:
            ctx.audit(
                session,
                action="connection.update",
                object_type="connection",
                object_id=connection_id,
                before={k: before[k] for k in changes},
                after={k: after[k] for k in changes},
            )
        return _describe(session, [connection])[0]
