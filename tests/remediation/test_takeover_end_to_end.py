"""Done when: on the account-takeover scenario, the plan approved by a second principal leaves the
attacker with no session, no forwarding rule, no OAuth grant and no new MFA method.

The incident and its findings are written as the timeline and detection stages write them (the
rule names, severities, MITRE tags and entities the shipped Sigma rules produce for this story);
everything after that is the product: plan, four-eyes approval, execution through the official
clients against the simulator, and reads of the tenant afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from core.clock import parse_time
from core.db import Database
from core.models import ActionStatus, AuditRecord, Connection, Finding, Incident, TimelineEntry
from providers.credentials import Secrets
from providers.m365 import m365_clients
from remediation import Outcome, demo_flow, get_plan
from remediation.errors import SelfApproval

START = "2026-03-02T00:00:00Z"


def _story(sim) -> dict[str, Any]:
    return next(s for s in sim.truth["stories"] if s["kind"] == "account_takeover")


def _at(story: dict[str, Any], step: str):
    return parse_time(next(s["at"] for s in story["steps"] if s["id"] == step))


def _incident_from_detections(db: Database, story: dict[str, Any]) -> tuple[int, str]:
    """The incident the pipeline builds for this story: the victim's findings plus the spray."""
    victim = next(r["target"]["user"] for r in story["remediation"] if r["action"] == "revoke_sessions")
    sprayed = [p for p in story["people"] if p != victim] + [victim]
    findings = [
        ("m365_password_spray", "correlation", "high", ["attack.t1110.003"], sprayed, "spray"),
        ("m365_mfa_fatigue", "correlation", "high", ["attack.t1621"], [victim], "mfa_fatigue"),
        ("m365_risky_signin_high", "detection", "high", ["attack.t1078.004"], [victim], "initial_access"),
        (
            "m365_mfa_registered_after_risky_signin",
            "correlation",
            "high",
            ["attack.t1098.005"],
            [victim],
            "persistence_mfa",
        ),
        ("m365_inbox_rule_forwarding", "detection", "high", ["attack.t1114.003"], [victim], "inbox_rule"),
    ]
    with db.session() as s:
        incident = Incident(
            title=f"Account takeover of {victim}",
            priority="P1",
            severity="high",
            first_seen=_at(story, "spray"),
            last_seen=_at(story, "mass_download"),
        )
        s.add(incident)
        s.flush()
        for rule_id, kind, severity, mitre, people, step in findings:
            s.add(
                Finding(
                    rule_id=rule_id,
                    kind=kind,
                    severity=severity,
                    title=rule_id,
                    provider="m365",
                    entities={"people": people, "ips": story["attacker_ips"]},
                    mitre=mitre,
                    first_seen=_at(story, step),
                    last_seen=_at(story, step),
                    dedup_key=f"{rule_id}:{victim}",
                    incident_id=incident.id,
                )
            )
        return incident.id or 0, victim


class Graph:
    def __init__(self, db: Database) -> None:
        with db.session() as s:
            connection = s.exec(select(Connection).where(Connection.provider == "m365")).one()
        self.clients = m365_clients(connection, Secrets(connection.secret_refs))

    def get(self, path: str) -> Any:
        response = self.clients.graph.get(self.clients.graph_base_url + path)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def takeover(db, settings, make_simulator, connect, analyst, approver):
    sim = make_simulator("account_takeover", start=START)
    connect(sim)
    story = _story(sim)
    incident_id, victim = _incident_from_detections(db, story)
    return sim, story, incident_id, victim


def test_the_approved_plan_evicts_the_attacker(db, settings, takeover, analyst, approver):
    sim, story, incident_id, victim = takeover
    graph = Graph(db)
    attacker_signed_in = _at(story, "initial_access")

    result = demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)

    assert result.report is not None and result.report.ok, [r.message for r in result.report.results]
    # no session: every token issued before the revocation is invalid, and the password alone is useless
    user = graph.get(f"/users/{victim}?$select=accountEnabled,signInSessionsValidFromDateTime")
    assert parse_time(user["signInSessionsValidFromDateTime"]) > attacker_signed_in
    assert user["accountEnabled"] is False
    # no forwarding rule
    rules = graph.get(f"/users/{victim}/mailFolders/inbox/messageRules")["value"]
    assert not [
        r
        for r in rules
        if any(r["actions"].get(k) for k in ("forwardTo", "redirectTo", "forwardAsAttachmentTo"))
    ]
    # no new MFA method
    methods = graph.get(f"/users/{victim}/authentication/methods")["value"]
    assert not [
        m
        for m in methods
        if "password" not in m["@odata.type"] and parse_time(m["createdDateTime"]) >= _at(story, "spray")
    ]
    # no OAuth grant to an unverified (attacker-controlled) app
    victim_id = graph.get(f"/users/{victim}?$select=id")["id"]
    grants = graph.get(f"/oauth2PermissionGrants?$filter=principalId eq '{victim_id}'")["value"]
    for grant in grants:
        publisher = graph.get(f"/servicePrincipals/{grant['clientId']}")["verifiedPublisher"]
        assert publisher["verifiedPublisherId"], f"grant {grant['id']} to an unverified app survived"


def test_the_plan_covers_the_ground_truth_and_spares_the_sprayed_accounts(
    db, settings, takeover, analyst, approver
):
    sim, story, incident_id, victim = takeover

    demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)

    truth = {(r["action"], r["target"]["user"]) for r in story["remediation"]}
    done = {(c["action"], c["target"].get("user")) for c in sim.changes}
    covered = {
        ("revoke_sessions", victim),
        ("confirm_compromised", victim),
        ("remove_inbox_rule", victim),
        ("delete_auth_method", victim),
    }
    assert covered <= truth and covered <= done
    assert {c["target"].get("user") for c in sim.changes} == {victim}  # the spray's other targets untouched
    plan = get_plan(db, incident_id)
    assert {s.subject for s in plan.steps} == {victim}
    enable = plan.step("m365.enable_account", victim)
    assert enable.status == ActionStatus.PROPOSED  # recovery waits for a person who has talked to the owner


def test_the_requester_cannot_push_the_plan_through_alone(db, settings, takeover, approver):
    sim, _, incident_id, _ = takeover

    result = demo_flow(db, settings, incident_id, requested_by=approver, approve_as=approver)

    assert result.approved == () and all("cannot approve" in r for r in result.refused)
    assert result.report is not None and not result.report.by_outcome(Outcome.SUCCEEDED)
    assert sim.changes == []
    with db.session() as s:
        refusals = s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.refused")).all()
    assert refusals and {r.details["code"] for r in refusals} == {SelfApproval.code}


def test_the_incident_timeline_tells_the_remediation_story(db, settings, takeover, analyst, approver):
    _, _, incident_id, victim = takeover

    demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)

    with db.session() as s:
        entries = s.exec(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "remediation"
            )
        ).all()
    events = [e.body["event"] for e in entries]
    for event in ("proposed", "approved", "execution_started", "succeeded"):
        assert event in events
    done = [
        e for e in entries if e.body["event"] == "succeeded" and e.body["action"] == "m365.remove_inbox_rule"
    ]
    assert done and "DELETE" in done[0].body["calls"][0] and done[0].actor == "system:remediation"


def test_a_step_that_could_not_run_for_a_missing_secret_stays_approved_and_runs_once_it_is_back(
    db, settings, takeover, analyst, approver, monkeypatch
):
    from core.models import RemediationAction
    from remediation import execute

    sim, _story, incident_id, _victim = takeover
    port = sim.info["admin_url"].rsplit(":", 1)[1].split("/")[0]
    secret = sim.info["m365.client_secret"]
    # Given the M365 secret is unset when the approved plan is executed
    monkeypatch.delenv(f"TG_TEST_M365_SECRET_{port}")
    result = demo_flow(db, settings, incident_id, requested_by=analyst, approve_as=approver)
    assert result.report is not None and not result.report.ok
    assert any("still approved" in r.message for r in result.report.results)
    with db.session(readonly=True) as session:
        steps = session.exec(
            select(RemediationAction).where(RemediationAction.incident_id == incident_id)
        ).all()
    m365 = [s for s in steps if s.provider == "m365" and s.phase in ("contain", "eradicate")]
    # Then no M365 step failed for good, and none was skipped because of one
    assert m365 and all(s.status == ActionStatus.APPROVED for s in m365), [(s.id, s.status) for s in m365]
    assert not [s for s in steps if s.status in (ActionStatus.FAILED, ActionStatus.SKIPPED)]
    # When the secret is back, executing again runs them
    monkeypatch.setenv(f"TG_TEST_M365_SECRET_{port}", secret)
    again = execute(db, settings, incident_id)
    assert again.ok, [r.message for r in again.results]
    with db.session(readonly=True) as session:
        after = {s.id: s.status for s in session.exec(select(RemediationAction)).all()}
    assert all(after[s.id] == ActionStatus.SUCCEEDED for s in m365)


def test_the_cycle_executes_the_approved_containment_and_the_incident_is_contained(
    db, settings, takeover, analyst, approver
):
    """The serve cycle's remediation stage runs what a second principal approved; once every
    containment step has executed and verified, the incident is contained without anyone moving it."""
    from pipeline.cycle import Cycle
    from pipeline.stages import REMEDIATION
    from remediation import approve, plan_for_incident

    sim, story, incident_id, victim = takeover
    plan = plan_for_incident(db, incident_id, analyst)
    contain = [s for s in plan.steps if s.phase == "contain"]
    assert contain and all(s.approvals_required == 1 for s in contain)
    first, *rest = contain
    approve(db, first.id, approver, comment="contain now")
    cycle = Cycle(db, settings)
    result = cycle.run_stage(REMEDIATION)
    assert result.counts.get("succeeded") == 1 and "contained" not in result.counts
    with db.session() as s:
        assert s.get(Incident, incident_id).status == "new"  # one containment step is not all of them
    for step in rest:
        approve(db, step.id, approver, comment="contain now")
    result = cycle.run_stage(REMEDIATION)
    assert result.counts.get("contained") == 1, result
    with db.session() as s:
        incident = s.get(Incident, incident_id)
        assert incident.status == "contained" and incident.contained_at is not None
        entry = s.exec(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident_id, TimelineEntry.title == "status new → contained"
            )
        ).one()
    assert entry.actor == "system:containment"
    assert f"revoke_sessions {victim}" in entry.body["note"]
    assert ("revoke_sessions", victim) in {(c["action"], c["target"].get("user")) for c in sim.changes}
