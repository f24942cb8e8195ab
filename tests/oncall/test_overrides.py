"""Overrides and swaps on a stored schedule: a new version of its spec, audited; the on-call answer
follows them; a swap covers only the giver's stretches; bad input is refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.audit import Actor
from core.models import AuditRecord
from oncall.errors import OncallInputError
from oncall.schedules import on_call_at
from oncall.spec import Override
from oncall.store import add_overrides, get_schedule, swap_overrides

LEAD = Actor.cli("principal:lead")
DOCUMENT = {
    "responders": [{"name": n, "email": f"{n}@example.com"} for n in ("alice", "bob", "chen")],
    "schedules": [
        {
            "name": "primary",
            "timezone": "UTC",
            "layers": [
                {
                    "name": "daily",
                    "users": ["alice", "bob"],
                    "rotation": "daily",
                    "start": "2026-03-02T09:00:00",
                }
            ],
        }
    ],
}
MON_10 = datetime(2026, 3, 2, 10, tzinfo=UTC)  # alice's day; Tuesday is bob's


def test_a_swap_hands_only_the_givers_stretches_to_the_taker(db, configure):
    configure(DOCUMENT)
    with db.session() as session:
        schedule = get_schedule(session, "primary")
        wanted = swap_overrides(schedule, "alice", "chen", MON_10, MON_10 + timedelta(days=2))
        updated = add_overrides(session, "primary", wanted, actor=LEAD, reason="alice at the dentist")
    # alice's Monday (from 10:00) and Wednesday 09:00-10:00 go to chen; bob's Tuesday stays his
    assert on_call_at(updated, MON_10 + timedelta(hours=1)) == "chen"
    assert on_call_at(updated, MON_10 + timedelta(days=1)) == "bob"
    assert on_call_at(updated, MON_10 + timedelta(days=2, minutes=-30)) == "chen"
    assert on_call_at(updated, MON_10 + timedelta(days=2, hours=1)) == "alice"
    with db.session(readonly=True) as session:
        assert on_call_at(get_schedule(session, "primary"), MON_10 + timedelta(hours=1)) == "chen"
        [audit] = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "oncall.definition.updated", AuditRecord.object_id == "primary"
            )
        ).all()
    assert audit.actor == "principal:lead" and audit.details["reason"] == "alice at the dentist"
    assert [a["user"] for a in audit.details["added"]] == ["chen", "chen"]


def test_bad_overrides_are_refused_by_name_and_change_nothing(db, configure):
    configure(DOCUMENT)
    with db.session() as session:
        schedule = get_schedule(session, "primary")
        with pytest.raises(OncallInputError, match="unknown responder 'zoe'"):
            add_overrides(
                session,
                "primary",
                [Override(user="zoe", start=MON_10, end=MON_10 + timedelta(hours=1))],
                actor=LEAD,
                reason="",
            )
        with pytest.raises(OncallInputError, match="chen is not on call"):
            swap_overrides(schedule, "chen", "bob", MON_10, MON_10 + timedelta(hours=3))
    with db.session(readonly=True) as session:
        assert list(get_schedule(session, "primary").overrides) == []
