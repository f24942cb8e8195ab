"""The build's bulk writes (core.bulk: orjson JSON, instants converted once) leave what SQLAlchemy's
own insert of the same rows leaves: every column read back equal, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import insert, select

from core.bulk import insert_many, update_many
from core.db import Database
from timeline.assembly import INCIDENT_TABLE
from timeline.build import _NEW_INCIDENT_DEFAULTS

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _awkward(dialect: str) -> dict[Any, Any]:
    """JSON that orjson and the stdlib write differently, or that orjson cannot write."""
    values: dict[Any, Any] = {
        "text": 'é \u2028 "quoted" \\ back',
        "nested": [[1.5, None, 0.1 + 0.2, 1e-7, 1e300], {"t": True, "f": False}],
        "tuple": (1, 2),
        "big": 2**70,
        7: "an integer key",
    }
    if dialect == "sqlite":  # PostgreSQL's JSON refuses NaN and infinities whoever writes them
        values.update({"nan": float("nan"), "inf": float("-inf")})
    return values


def _row(incident_id: int, dialect: str, *, awkward: bool) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(c.name for c in INCIDENT_TABLE.columns)
    row.update(_NEW_INCIDENT_DEFAULTS)
    row.update(
        {
            "id": incident_id,
            "title": f"incident {incident_id}",
            "first_seen": T,
            "last_seen": T.astimezone(timezone(timedelta(hours=2))) + timedelta(microseconds=5),
            "created_at": T.replace(tzinfo=None),  # naive: taken as UTC
            "updated_at": T,
            "keys": ["person:1", "ip:198.51.100.7"],
            "grouping": [{"finding_id": 12, "with_finding_id": None, "text": "opened: …"}],
            "entities": {"people": ["Ünïcode@northwind.example"], "ips": []},
            "priority_factors": _awkward(dialect) if awkward else {"score": 0.5},
        }
    )
    return row


def _read(db: Database, ids: range) -> list[str]:
    with db.session() as session:
        rows = session.execute(
            select(INCIDENT_TABLE).where(INCIDENT_TABLE.c.id.in_(list(ids))).order_by(INCIDENT_TABLE.c.id)
        ).all()
    # repr: NaN equals itself; the id and title differ by construction
    return [repr({k: v for k, v in row._mapping.items() if k not in ("id", "title")}) for row in rows]


def test_bulk_insert_and_update_read_back_as_sqlalchemy_writes(db: Database) -> None:
    dialect = db.dialect
    with db.session() as session:
        session.execute(insert(INCIDENT_TABLE), [_row(i, dialect, awkward=i % 2 == 0) for i in range(1, 5)])
        insert_many(
            session.connection(), INCIDENT_TABLE, [_row(i, dialect, awkward=i % 2 == 0) for i in range(5, 9)]
        )
    assert _read(db, range(1, 5)) == _read(db, range(5, 9))

    changed = {
        "entities": {"people": ["a@northwind.example"], "files": ["Ä.docx"]},
        "updated_at": T + timedelta(hours=1),
    }
    with db.session() as session:
        for incident_id in range(1, 5):
            session.execute(
                INCIDENT_TABLE.update().where(INCIDENT_TABLE.c.id == incident_id).values(**changed)
            )
        update_many(session.connection(), INCIDENT_TABLE, "id", [{**changed, "id": i} for i in range(5, 9)])
    assert _read(db, range(1, 5)) == _read(db, range(5, 9))
