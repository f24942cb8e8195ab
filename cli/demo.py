"""`tenantguard demo`: the whole product against the simulator, on an embedded SQLite database."""

from __future__ import annotations

from cli.context import console, database, settings
from core.audit import record


def run_demo() -> None:
    db = database()
    with db.session() as session:
        record(
            session,
            actor="system:demo",
            action="demo.run",
            object_type="demo",
            object_id="demo",
            details={"database": db.dialect},
        )
    console.print(f"[bold]tenantguard demo[/bold]: database ready at {settings().effective_database_url}")
