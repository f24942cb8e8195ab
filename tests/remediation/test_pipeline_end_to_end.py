"""The whole product on the account-takeover scenario: collect → detect → incidents → plan →
approval by a second principal → execution; the simulated attacker is evicted (slow: a full
collection of the simulated tenant)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.audit import Actor, Channel
from core.clock import parse_time
from core.models import Incident
from remediation import demo_flow

pytestmark = pytest.mark.slow


def test_detected_takeover_is_planned_approved_and_the_attacker_evicted(
    db, settings, make_simulator, analyst, approver
):
    from collectors import collect_once, connections_from_simulator
    from collectors.connections import sync_connections
    from detectors.pipeline import detect_new
    from identity.resolve import resolve_people
    from timeline import build_incidents

    sim = make_simulator("account_takeover", start="2026-03-02T00:00:00Z")
    story = next(s for s in sim.truth["stories"] if s["kind"] == "account_takeover")
    victim = next(r["target"]["user"] for r in story["remediation"] if r["action"] == "revoke_sessions")
    sync_connections(
        db,
        connections_from_simulator(sim.info, name_prefix="ato"),
        actor=Actor("system:test", Channel.CLI),
        source="test",
    )
    collect_once(db, settings)
    resolve_people(db)
    detect_new(db, settings)
    build_incidents(db, settings, notify=False)
    with db.session() as s:
        incidents = [
            i for i in s.exec(select(Incident)).all() if victim in (i.entities or {}).get("people", [])
        ]
    incident = max(incidents, key=lambda i: (i.priority <= "P2", i.finding_count))

    result = demo_flow(db, settings, incident.id, requested_by=analyst, approve_as=approver)

    assert {s.subject for s in result.plan.steps if "@" in s.subject} == {victim}
    assert result.report is not None and result.report.ok
    done = {(c["action"], c["target"].get("user")) for c in sim.changes}
    assert {
        ("revoke_sessions", victim),
        ("remove_inbox_rule", victim),
        ("delete_auth_method", victim),
    } <= done
    rules = [c for c in sim.changes if c["action"] == "remove_inbox_rule"]
    truth_rule = next(
        r["target"]["rule_id"] for r in story["remediation"] if r["action"] == "remove_inbox_rule"
    )
    assert truth_rule in {c["target"]["rule_id"] for c in rules}
    revoked = next(c for c in sim.changes if c["action"] == "revoke_sessions")
    assert (
        revoked["at"]
        > parse_time(next(s["at"] for s in story["steps"] if s["id"] == "initial_access")).timestamp()
    )
