"""Run streams: claim, read pages, commit each page with its checkpoint, record health and runs.

The contract that keeps collection exact: a page's events (or messages, or snapshot changes)
and the checkpoint that follows them commit in one transaction, fenced on the run's claim (`collectors.fencing`). A crash
before the commit re-reads the page; a crash after it resumes from the next one. Failures are
contained: a malformed page is quarantined and fails its stream loudly (checkpoint unmoved);
a refused permission marks the stream unhealthy naming what to grant; rejected credentials
mark the connection unhealthy; nothing one connection does stops the others.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from collectors.errors import CollectorError, RunSuperseded
from collectors.fencing import claim_stream, finish_claim, release, run_token
from collectors.inventory import plan_inventory
from collectors.options import CollectorOptions
from collectors.progress import ProgressSink
from collectors.report import CollectionReport, RunStatus, StreamResult
from collectors.retry import RetryPolicy
from collectors.store import (
    insert_events,
    insert_messages,
    save_checkpoint,
    store_snapshots,
    touch_run,
)
from collectors.streams.base import Page, StreamContext, StreamKind, StreamSpec, configured_streams, open_api
from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.db import Database
from core.models import Connection, Health
from core.models.connection import Checkpoint, CollectionRun
from core.normalise import NormaliseError, normalise
from core.quarantine import quarantine
from core.settings import Settings
from providers.credentials import Secrets
from providers.errors import (
    AuthenticationFailed,
    ConnectionConfigError,
    MalformedResponse,
    PermissionMissing,
    ProviderError,
)

log = logging.getLogger("tenantguard.collectors")
ACTOR = Actor.system("collector")
PageHook = Callable[[Session, Connection], None]
"""Called inside a page's transaction when the page stored something new."""


@dataclass
class _Counters:
    pages: int = 0
    read: int = 0
    new: int = 0
    snapshot_rows: int = 0
    quarantined: int = 0


# ---- health (audited state changes) --------------------------------------------------------------


def set_stream_health(
    db: Database, connection: Connection, stream: str, health: Health, reason: str | None
) -> None:
    """Record a stream's health; an actual change goes through the audit chain."""
    with db.session() as session:
        _stream_health(session, connection, stream, health, reason)


def _stream_health(
    session: Session, connection: Connection, stream: str, health: Health, reason: str | None
) -> None:
    where = (col(Checkpoint.connection_id) == connection.id, col(Checkpoint.stream) == stream)
    current = session.exec(select(Checkpoint.health, Checkpoint.health_reason).where(*where)).first()
    if current is None or (current[0] == health and current[1] == reason):
        return
    session.execute(update(Checkpoint).where(*where).values(health=health, health_reason=reason))
    record(
        session,
        actor=ACTOR,
        action=AuditAction.COLLECTOR_STREAM_HEALTH_CHANGED,
        object_type="connection",
        object_id=f"{connection.id}:{stream}",
        details={
            "connection": connection.name,
            "stream": stream,
            "from": current[0],
            "to": health,
            "reason": reason,
        },
    )


def refresh_connection_health(db: Database, connection: Connection, *, succeeded: bool = False) -> None:
    """A connection is as healthy as its streams: unhealthy while any stream is, naming them.

    Derived from the streams' current state, so one failing stream never makes the connection
    flip between healthy and unhealthy as its other streams come and go.
    """
    with db.session() as session:
        _connection_health(session, connection, succeeded=succeeded)


def _lock_connection(session: Session, connection_id: int) -> tuple[str, str | None] | None:
    """The connection's (health, reason), its row locked for this transaction on PostgreSQL
    (``FOR NO KEY UPDATE``: the foreign-key checks of page commits still pass). Taken before any
    audit record, in the order every writer of a connection takes them (row, then the audit
    chain's lock). Only these columns: the row's config is encrypted, and reading it costs."""
    row = session.exec(
        select(Connection.health, Connection.health_reason)
        .where(Connection.id == connection_id)
        .with_for_update(key_share=True)
    ).first()
    return (str(row[0]), row[1]) if row is not None else None


def _connection_health(session: Session, connection: Connection, *, succeeded: bool = False) -> None:
    assert connection.id is not None
    current = _lock_connection(session, connection.id)
    if current is None:
        return
    sick = session.exec(
        select(Checkpoint.stream, Checkpoint.health_reason)
        .where(Checkpoint.connection_id == connection.id, Checkpoint.health == Health.UNHEALTHY)
        .order_by(col(Checkpoint.stream))
    ).all()
    health = Health.UNHEALTHY if sick else Health.OK
    reason = "; ".join(f"{stream}: {why}" for stream, why in sick)[:2000] if sick else None
    now = utcnow()
    values: dict[str, Any] = {"last_run_at": now}
    if succeeded:
        values["last_success_at"] = now
    if current != (health, reason):
        record(
            session,
            actor=ACTOR,
            action=AuditAction.CONNECTION_HEALTH_CHANGED,
            object_type="connection",
            object_id=str(connection.id),
            details={
                "connection": connection.name,
                "from": current[0],
                "to": health,
                "reason": reason,
            },
        )
        values.update(health=health, health_reason=reason)
    session.execute(update(Connection).where(col(Connection.id) == connection.id).values(**values))


# ---- one page ---------------------------------------------------------------------------------


def _normalise_page(
    connection: Connection, spec: StreamSpec, page: Page
) -> tuple[list[Any], list[tuple[str, str, Any]]]:
    events: list[Any] = []
    bad: list[tuple[str, str, Any]] = []
    for position, raw in enumerate(page.records):
        try:
            events.extend(normalise(connection.provider, spec.name, raw))
        except NormaliseError as exc:
            bad.append((f"{page.source}#{position}", str(exc), raw))
    return events, bad


def commit_page(
    db: Database,
    connection: Connection,
    spec: StreamSpec,
    page: Page,
    *,
    checkpoint_id: int,
    token: str,
    run_id: int,
    counters: _Counters,
    in_transaction: PageHook | None = None,
) -> int:
    """Store one page and the checkpoint after it, in one transaction; returns new records.

    `in_transaction` runs inside that transaction when the page stored something new (a task
    engine on the same database enqueues the detection it calls for there, so the page and
    its job commit together)."""
    assert connection.id is not None
    new = read = rows = 0
    with db.session() as session:
        quarantined = list(page.quarantined)
        if page.objects is not None and page.object_type:
            changes = store_snapshots(
                session,
                connection_id=connection.id,
                provider=connection.provider,
                object_type=page.object_type,
                objects=page.objects,
                partial=page.partial,
                removed=page.removed,
                covers_field=page.covers_field,
                covers=page.covers,
                merge=page.merge,
            )
            read, rows = len(page.objects), changes.rows_written
        elif spec.kind is StreamKind.CONVERSATION:
            read = len(page.records)
            new = insert_messages(
                session,
                connection_id=connection.id,
                provider=connection.provider,
                stream=spec.name,
                messages=page.records,
                redaction=connection.config.get("redaction"),
            )
        else:
            events, bad = _normalise_page(connection, spec, page)
            quarantined.extend(bad)
            read = len(events)
            new = insert_events(
                session,
                connection_id=connection.id,
                provider=connection.provider,
                stream=spec.name,
                events=events,
            )
        for source, reason, raw in quarantined:
            quarantine(
                session,
                connection_id=connection.id,
                provider=connection.provider,
                stream=spec.name,
                source=source,
                reason=reason,
                raw=raw,
            )
        save_checkpoint(
            session,
            checkpoint_id=checkpoint_id,
            token=token,
            cursor=page.cursor if page.cursor is not None else _current_cursor(session, checkpoint_id),
        )
        if in_transaction is not None and new + rows:
            in_transaction(session, connection)
        touch_run(session, run_id, pages=1, read=read, new=new + rows)
    counters.pages += 1
    counters.read += read
    counters.new += new
    counters.snapshot_rows += rows
    counters.quarantined += len(quarantined)
    return new + rows


def _current_cursor(session: Any, checkpoint_id: int) -> dict[str, Any]:
    return dict(session.exec(select(Checkpoint.cursor).where(Checkpoint.id == checkpoint_id)).one() or {})


def _quarantine_page(db: Database, connection: Connection, spec: StreamSpec, exc: MalformedResponse) -> None:
    with db.session() as session:
        quarantine(
            session,
            connection_id=connection.id,
            provider=connection.provider,
            stream=spec.name,
            source=exc.source,
            reason=str(exc),
            raw=exc.body,
        )
        record(
            session,
            actor=ACTOR,
            action=AuditAction.COLLECTOR_PAGE_QUARANTINED,
            object_type="connection",
            object_id=f"{connection.id}:{spec.name}",
            details={
                "connection": connection.name,
                "stream": spec.name,
                "source": exc.source,
                "reason": str(exc),
            },
        )


# ---- one stream -------------------------------------------------------------------------------


def _start_run(session: Session, connection_id: int, stream: str, owner: str) -> int:
    run = CollectionRun(connection_id=connection_id, stream=stream, worker=owner)
    session.add(run)
    session.flush()
    assert run.id is not None
    return run.id


def _finish_run(session: Session, run_id: int, status: RunStatus, error: str | None) -> None:
    session.execute(
        update(CollectionRun)
        .where(col(CollectionRun.id) == run_id)
        .values(status=status, error=error, finished_at=utcnow())
    )


def _begin(
    db: Database, connection: Connection, spec: StreamSpec, owner: str, token: str
) -> tuple[int, dict[str, Any], int]:
    """One transaction: the checkpoint claimed for this run (made on first use) and the run
    recorded as started; returns (checkpoint id, cursor, run id)."""
    assert connection.id is not None
    with db.session() as session:
        checkpoint_id, cursor = claim_stream(session, connection.id, spec.name, token)
        run_id = _start_run(session, connection.id, spec.name, owner)
    return checkpoint_id, cursor, run_id


def _succeed(
    db: Database,
    connection: Connection,
    spec: StreamSpec,
    *,
    checkpoint_id: int,
    token: str,
    run_id: int,
    marks: dict[str, Any],
) -> None:
    """One transaction, fenced on the run's claim: the inventory marks and the success stored and
    the claim cleared, the stream and its connection healthy, the run recorded as succeeded.
    `RunSuperseded` (nothing of it kept) when a later run claimed the stream."""
    assert connection.id is not None
    with db.session() as session:
        _lock_connection(session, connection.id)  # before any audit record: see _lock_connection
        finish_claim(session, checkpoint_id, token, marks=marks)
        _stream_health(session, connection, spec.name, Health.OK, None)
        _connection_health(session, connection, succeeded=True)
        _finish_run(session, run_id, RunStatus.SUCCEEDED, None)


def _end_run(db: Database, run_id: int, status: RunStatus, error: str | None) -> None:
    with db.session() as session:
        _finish_run(session, run_id, status, error)


def run_stream(
    db: Database,
    connection: Connection,
    spec: StreamSpec,
    *,
    options: CollectorOptions | None = None,
    owner: str | None = None,
    progress: ProgressSink | None = None,
    in_transaction: PageHook | None = None,
) -> StreamResult:
    """One run of one stream of one connection; never raises for provider or data problems.

    The caller's engine keeps a stream to one run at a time; this run claims the checkpoint, so
    any earlier run still alive can no longer commit (`collectors.fencing`)."""
    options = options or db.settings.collector
    owner = owner or options.worker()
    assert connection.id is not None
    key = f"{connection.name}/{spec.name}"
    token = run_token(owner)
    checkpoint_id, cursor, run_id = _begin(db, connection, spec, owner, token)
    started = time.monotonic()
    counters = _Counters()
    finished = False  # the run's record and claim closed in the success transaction
    if progress:
        progress.started(key)

    def result(status: RunStatus, error: str | None = None) -> StreamResult:
        if not finished:
            _end_run(db, run_id, status, error)
        if status is RunStatus.FAILED:
            try:
                refresh_connection_health(db, connection)
            except Exception:
                log.exception("%s: could not record connection health", key)
        if progress:
            progress.finished(key, status if error is None else f"{status}: {error[:80]}")
        return StreamResult(
            connection.name,
            connection.provider,
            spec.name,
            status,
            pages=counters.pages,
            records_read=counters.read,
            records_new=counters.new,
            snapshot_rows=counters.snapshot_rows,
            quarantined=counters.quarantined,
            seconds=time.monotonic() - started,
            error=error,
        )

    try:
        ctx = _context(connection, spec, cursor, options, progress, key)
        plan = plan_inventory(db, connection, spec, ctx.cursor, options, ctx.now)
        ctx.full_read, ctx.changed = plan.full_read, plan.changed
        for page in () if plan.skip else spec.read(ctx):
            new = commit_page(
                db,
                connection,
                spec,
                page,
                checkpoint_id=checkpoint_id,
                token=token,
                run_id=run_id,
                counters=counters,
                in_transaction=in_transaction,
            )
            if progress:
                progress.page(
                    key, records=len(page.records) or len(page.objects or {}), new=new, window=page.window
                )
        _succeed(
            db, connection, spec, checkpoint_id=checkpoint_id, token=token, run_id=run_id, marks=plan.marks
        )
        finished = True
        return result(RunStatus.SUCCEEDED)
    except RunSuperseded as exc:
        return result(RunStatus.LOST, str(exc))
    except Exception as exc:  # contained: nothing a stream does may stop the others
        return result(RunStatus.FAILED, _record_failure(db, connection, spec, exc))
    finally:
        if not finished:
            try:
                release(db, checkpoint_id, token)
            except Exception:  # harmless: the next run claims the checkpoint anyway
                log.exception("%s: could not clear the run's claim", key)


def _record_failure(db: Database, connection: Connection, spec: StreamSpec, exc: Exception) -> str:
    """Mark the stream unhealthy with a reason an operator can act on; quarantine a bad page."""
    key = f"{connection.name}/{spec.name}"
    if isinstance(exc, MalformedResponse):
        try:
            _quarantine_page(db, connection, spec, exc)
        except Exception:
            log.exception("%s: could not quarantine the malformed page", key)
        reason = (
            f"malformed page quarantined ({exc}); the checkpoint stays before it — inspect the quarantine"
        )
        log.error("%s: %s", key, reason)
    elif isinstance(exc, PermissionMissing | AuthenticationFailed | ConnectionConfigError):
        reason = str(exc)
    elif isinstance(
        exc, CollectorError | ProviderError
    ):  # transient errors that outlasted the retries, rejected requests
        reason = f"gave up for this run: {exc}"
    else:  # a bug: keep the traceback in the log
        log.error("%s: unexpected error\n%s", key, traceback.format_exc())
        reason = f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    try:
        set_stream_health(db, connection, spec.name, Health.UNHEALTHY, reason)
    except Exception:
        log.exception("%s: could not record stream health", key)
    return reason


def _context(
    connection: Connection,
    spec: StreamSpec,
    cursor: dict[str, Any],
    options: CollectorOptions,
    progress: ProgressSink | None,
    key: str,
) -> StreamContext:
    secrets = Secrets(connection.secret_refs or {})
    policy = RetryPolicy.from_options(options)

    def on_wait(seconds: float, why: str) -> None:
        if progress:
            progress.waiting(key, seconds, why)

    ctx = StreamContext(
        connection=connection,
        secrets=secrets,
        cursor=dict(cursor or {}),
        options=options,
        policy=policy,
        now=utcnow().replace(microsecond=0),  # whole seconds: every API takes them in its time filters
        on_wait=on_wait,
    )
    ctx.api = open_api(ctx)
    return ctx


# ---- a pass over connections --------------------------------------------------------------------


def select_connections(db: Database, wanted: Iterable[Any] | None = None) -> list[Connection]:
    """Enabled connections, optionally only those named (by name, id or Connection)."""
    with db.session(readonly=True) as session:
        rows = list(
            session.exec(select(Connection).where(col(Connection.enabled)).order_by(col(Connection.id))).all()
        )
    if wanted is None:
        return rows
    keys = {w.name if isinstance(w, Connection) else w for w in wanted}
    return [c for c in rows if c.name in keys or c.id in keys]


def collect_once(
    db: Database,
    settings: Settings,
    *,
    connections: Sequence[Any] | None = None,
    streams: Sequence[str] | None = None,
    options: CollectorOptions | None = None,
    progress: ProgressSink | None = None,
) -> CollectionReport:
    """Every enabled stream of every enabled connection, once; one bad connection never stops others."""
    from collectors.connections import sync_connections_file

    options = options or settings.collector
    owner = options.worker()
    connection_errors: dict[str, str] = {}
    if settings.connections_file:
        try:
            sync_connections_file(db, settings.connections_file)
        except (CollectorError, ProviderError) as exc:  # keep collecting what the database already knows
            connection_errors[str(settings.connections_file)] = str(exc)
    jobs: list[tuple[Connection, StreamSpec]] = []
    for connection in select_connections(db, connections):
        try:
            specs = configured_streams(connection)
        except (KeyError, CollectorError, ProviderError) as exc:
            connection_errors[connection.name] = str(exc)
            continue
        jobs.extend((connection, s) for s in specs if not streams or s.name in streams)

    def run(job: tuple[Connection, StreamSpec]) -> StreamResult:
        return run_stream(db, job[0], job[1], options=options, owner=owner, progress=progress)

    # Inventory that re-reads what audit events named runs after the events streams, so a change
    # seen in this pass is read in this pass (not one pass later).
    then = [j for j in jobs if j[1].kind is StreamKind.SNAPSHOT and j[1].watch is not None]
    first = [j for j in jobs if not (j[1].kind is StreamKind.SNAPSHOT and j[1].watch is not None)]
    with ThreadPoolExecutor(max_workers=max(1, options.threads), thread_name_prefix="collect") as pool:
        results = tuple(pool.map(run, first)) + tuple(pool.map(run, then))
    return CollectionReport(results=results, connection_errors=connection_errors)
