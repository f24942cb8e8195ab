"""`tenantguard doctor`: is this installation ready? Configuration, database and migrations, each
connection's credentials and permissions (naming the missing permission and how to grant it),
clock skew, disk — one screen, exit 1 when anything fails (warnings alone exit 0), `--json` for
scripts."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from cli.context import console
from cli.output import JsonOption, print_json

MAX_SKEW = timedelta(seconds=30)  # JWT leeway and Slack's replay window are tighter than minutes
MIN_FREE_BYTES = 1 << 30
MIN_FREE_FRACTION = 0.05


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    area: str
    status: Status
    detail: str
    fix: str = ""


def _configuration() -> Iterator[Check]:
    from core.errors import TenantguardError
    from core.settings import Settings

    try:
        current = Settings()
    except (TenantguardError, ValueError) as exc:
        yield Check("configuration", Status.FAIL, str(exc).splitlines()[0], "fix the variable named above")
        return
    named = sorted(k for k in os.environ if k.upper().startswith("TENANTGUARD_"))
    yield Check("configuration", Status.OK, f"settings load ({len(named)} TENANTGUARD_* variables set)")
    if current.connections_file is not None:
        from collectors.connections import load_connections_file

        try:
            definitions = load_connections_file(current.connections_file)
        except (TenantguardError, OSError, ValueError) as exc:
            yield Check(
                "connections file",
                Status.FAIL,
                f"{current.connections_file}: {str(exc).splitlines()[0]}",
                "see docs/connections.md (or `tenantguard schema connections`)",
            )
        else:
            yield Check(
                "connections file", Status.OK, f"{current.connections_file}: {len(definitions)} connection(s)"
            )


def _database() -> Iterator[Check]:
    from cli.context import database, settings
    from core.errors import TenantguardError
    from core.migrations.runner import alembic_config, current_revision, is_up_to_date

    try:
        db = database(migrate=False)
    except TenantguardError as exc:
        yield Check("database", Status.FAIL, str(exc))
        return
    where = db.url.render_as_string(hide_password=True)
    yield Check("database", Status.OK, f"{db.dialect} at {where} reachable")
    try:
        if is_up_to_date(db):
            yield Check("migrations", Status.OK, f"schema at the newest revision ({current_revision(db)})")
        else:
            from alembic.script import ScriptDirectory

            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            yield Check(
                "migrations",
                Status.FAIL,
                f"schema at {current_revision(db)}, this tenantguard needs {head}",
                "back up the database, then run `tenantguard db upgrade` (serve and worker also do at start)",
            )
        yield from _clock(db)
        yield from _connections(db)
    finally:
        db.dispose()
    yield from _disk(settings().data_dir)


def _clock(db: Any) -> Iterator[Check]:
    from sqlalchemy import text

    from core.clock import as_utc, utcnow

    if db.is_sqlite:
        yield Check("clock", Status.OK, "SQLite shares this host's clock (keep it synchronised with NTP)")
        return
    with db.engine.connect() as conn:
        server = as_utc(conn.execute(text("SELECT now()")).scalar_one())
    skew = abs(server - utcnow())
    status = Status.OK if skew <= MAX_SKEW else Status.FAIL
    yield Check(
        "clock",
        status,
        f"this host and the database differ by {skew.total_seconds():.1f} s",
        ""
        if status is Status.OK
        else "synchronise both clocks (chrony/systemd-timesyncd): tokens and "
        "Slack signatures are refused beyond their skew",
    )


def _connections(db: Any) -> Iterator[Check]:
    from collectors.connections import check_connection
    from collectors.runner import select_connections
    from providers.grants import how_to_grant

    connections = select_connections(db, None)
    if not connections:
        yield Check(
            "connections",
            Status.WARN,
            "no enabled connection: nothing is collected",
            "write a connections file (docs/getting-started.md) and run `tenantguard connections sync FILE`",
        )
        return
    for connection in connections:
        check = check_connection(connection)
        area = f"connection {connection.name}"
        if check.ok:
            yield Check(area, Status.OK, f"{connection.provider}: {len(check.streams)} stream(s) readable")
            continue
        for name, problem in check.secrets_missing.items():
            yield Check(
                area, Status.FAIL, problem, f"set the reference of secret {name!r} (docs/connections.md)"
            )
        if check.secrets_missing:
            continue
        for stream in check.streams:
            if stream.ok:
                continue
            fix = how_to_grant(connection.provider, stream.permission) if stream.permission else ""
            yield Check(area, Status.FAIL, f"{stream.stream}: {stream.problem}", fix)


def _disk(data_dir: Path) -> Iterator[Check]:
    existing = data_dir.resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    usage = shutil.disk_usage(existing)
    free_gib = usage.free / (1 << 30)
    low = usage.free < MIN_FREE_BYTES or usage.free < usage.total * MIN_FREE_FRACTION
    yield Check(
        "disk",
        Status.WARN if low else Status.OK,
        f"{free_gib:.1f} GiB free of {usage.total / (1 << 30):.1f} GiB at {existing}",
        "free space or move TENANTGUARD_DATA_DIR: SQLite needs room to grow "
        "(~2.5 GB per million events, bench/README.md)"
        if low
        else "",
    )


_MARK = {Status.OK: ("✓", "green"), Status.WARN: ("!", "yellow"), Status.FAIL: ("✗", "red")}


def doctor(as_json: JsonOption = False) -> None:
    """Check configuration, database and migrations, each connection's credentials and permissions,
    clock skew and disk; exit 1 when anything fails."""
    from rich.text import Text

    checks = [*_configuration()]
    if all(c.status is not Status.FAIL for c in checks):
        checks += [*_database()]
    failed = any(c.status is Status.FAIL for c in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        for check in checks:
            mark, style = _MARK[check.status]
            console.print(
                Text.assemble((f"{mark} {check.area}", style), f"  {check.detail}"), highlight=False
            )
            if check.fix:
                console.print(Text(f"    → {check.fix}", style="dim"), highlight=False)
        console.print(
            Text("not ready: fix what is marked ✗" if failed else "ready", style="red" if failed else "green")
        )
    if failed:
        raise typer.Exit(1)


COMMANDS: dict[str, Callable[..., Any]] = {"doctor": doctor}
