"""The cycle's stages on their own: each does what database state calls for, and nothing twice."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.models import Finding
from tests.detectors.test_pipeline import T0, _spray


def test_posture_stage_evaluates_once_when_new_snapshots_arrive(db, settings) -> None:
    from core.models import ConfigSnapshot, Connection
    from pipeline import run_cycle

    # given a tenant whose security defaults are off, collected once
    with db.session() as session:
        connection = Connection(name="m365-tenant", provider="m365", tenant="contoso.test")
        session.add(connection)
        session.flush()
        session.add(
            ConfigSnapshot(
                connection_id=connection.id,
                provider="m365",
                object_type="security_defaults",
                object_id="00000000-0000-0000-0000-000000000005",
                content_hash="off",
                data={"isEnabled": False},
                collected_at=T0,
            )
        )
    # when the cycle runs, its posture stage evaluates the new snapshot
    first = run_cycle(db, settings, only=("detect", "posture"))
    assert first.count("posture", "failing") >= 1
    with db.session(readonly=True) as session:
        posture = session.exec(select(Finding).where(Finding.kind == "posture")).all()
    assert "m365.mfa_all_users" in {f.rule_id for f in posture}
    # and a second cycle with no new snapshot does not evaluate again
    again = run_cycle(db, settings, only=("detect", "posture")).of("posture")
    assert again is not None and again.skipped and not again.counts


def test_identity_stage_rescores_people_when_findings_change(db, settings) -> None:
    from core.clock import utcnow
    from core.models import Account, Person
    from pipeline import run_cycle

    # given a resolved person who is then the target of a password spray
    with db.session() as session:
        person = Person(primary_email="user3@northwind.example")
        session.add(person)
        session.flush()
        session.add(
            Account(person_id=person.id, provider="m365", provider_user_id="u3", email=person.primary_email)
        )
    _spray(db, range(12), utcnow() - timedelta(hours=1))  # recent: the score looks back 30 days
    # when the cycle runs, its identity stage re-scores the person with the new findings
    result = run_cycle(db, settings, only=("detect", "identity"))
    assert result.count("detect", "findings") >= 1 and result.count("identity", "scored") == 1
    with db.session(readonly=True) as session:
        scored = session.exec(select(Person)).one()
    assert "recent_findings" in {f["factor"] for f in scored.risk_factors}


def test_incident_stage_builds_when_its_inputs_change_and_skips_when_settled(db, settings) -> None:
    from core.models import Incident
    from pipeline import run_cycle

    # given a password spray, detected and built into an incident
    _spray(db, range(12), T0)
    first = run_cycle(db, settings, only=("detect", "incidents"))
    assert first.count("incidents", "incidents") >= 1
    with db.session(readonly=True) as session:
        incidents = len(session.exec(select(Incident)).all())
    # when nothing new arrives: one more build settles what the first changed (and changes
    # nothing), then the stage does not build at all
    settling = run_cycle(db, settings, only=("detect", "incidents")).of("incidents")
    assert settling is not None and settling.counts == {"builds": 1}
    settled = run_cycle(db, settings, only=("detect", "incidents")).of("incidents")
    assert settled is not None and settled.skipped and settled.counts == {}
    # and a second spray three days later changes the inputs: the stage builds again
    _spray(db, range(20, 32), T0 + timedelta(days=3))
    after = run_cycle(db, settings, only=("detect", "incidents"))
    assert after.count("detect", "findings") >= 1
    built = after.of("incidents")
    assert built is not None and built.counts.get("builds") == 1 and built.counts.get("incidents", 0) >= 1
    with db.session(readonly=True) as session:
        assert len(session.exec(select(Incident)).all()) >= incidents
