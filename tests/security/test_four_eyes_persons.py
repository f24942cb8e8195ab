"""Four eyes per person, not per principal (issue 21): each attack of the review, now refused.

- an admin creating ``approver1-alt`` approved approver1's step (two principals, one person);
- an SSO user ``approver2`` acted as the token principal ``approver2`` (its row's role and name);
- an approval kept counting after its approver was disabled;
- an approval was given on whatever the step had become, not on the version the approver saw;
- re-planning a changed step kept the old requester, so the person who changed it could approve it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.config import ApiSettings
from api.principals.service import create_principal, disable_principal
from core.audit import Actor, Channel
from core.models import ActionStatus, Approval, AuditRecord, Incident, RemediationAction, Role
from remediation import Outcome, approve, execute, get_plan, plan_for_incident
from remediation.errors import NotAllowed, SelfApproval, StaleStep
from remediation.principals import SsoActor
from tests.api.test_oidc import token
from tests.factories import T0, TEST_PEPPER, MadePrincipal
from tests.remediation.conftest import VICTIM

STEP = "m365.remove_auth_method"  # its parameters follow the incident's start: a re-plan can change it


def _step(db, incident: int):  # type: ignore[no-untyped-def]
    return get_plan(db, incident).step(STEP, VICTIM)


def _refusals(db, code: str) -> list[AuditRecord]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        rows = s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.refused")).all()
    return [r for r in rows if r.details.get("code") == code]


def _move_start(db, incident: int, start) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        row = s.get(Incident, incident)
        row.first_seen = start
        s.add(row)


def test_a_second_principal_of_the_same_person_cannot_approve(db, ato_incident, make_principal):
    requester = make_principal(Role.APPROVER, name="approver1").actor
    admin = make_principal(Role.ADMIN, name="root").actor
    step = plan_for_incident(db, ato_incident, requester).step(STEP, VICTIM)
    create_principal(
        db, TEST_PEPPER.encode(), name="approver1-alt", role=Role.APPROVER, actor=admin, person="approver1"
    )

    with pytest.raises(SelfApproval, match="approver1"):
        approve(db, step.id, Actor("principal:approver1-alt", Channel.API))

    assert _step(db, ato_incident).status == ActionStatus.PROPOSED
    assert len(_refusals(db, "self_approval")) == 1


def test_a_principal_the_requester_created_is_not_a_second_pair_of_eyes(db, ato_incident, make_principal):
    """The admin who made `approver1-alt` saw its token: its approval is theirs, whatever person it names."""
    admin = make_principal(Role.ADMIN, name="approver1").actor
    step = plan_for_incident(db, ato_incident, admin).step(STEP, VICTIM)
    create_principal(db, TEST_PEPPER.encode(), name="approver1-alt", role=Role.APPROVER, actor=admin)

    with pytest.raises(SelfApproval, match="created"):
        approve(db, step.id, Actor("principal:approver1-alt", Channel.API))

    assert _step(db, ato_incident).status == ActionStatus.PROPOSED
    with db.session() as s:
        assert s.exec(select(Approval)).all() == []


def test_the_requester_cannot_approve_through_a_principal_that_created_theirs(
    db, ato_incident, make_principal
):
    boss = make_principal(Role.ADMIN, name="boss").actor
    _, _ = create_principal(db, TEST_PEPPER.encode(), name="puppet", role=Role.ANALYST, actor=boss)
    step = plan_for_incident(db, ato_incident, Actor("principal:puppet", Channel.API)).step(STEP, VICTIM)

    with pytest.raises(SelfApproval):
        approve(db, step.id, boss)


def test_an_sso_user_and_the_token_principal_of_that_person_are_one_approver(
    db, ato_incident, make_principal
):
    make_principal(Role.APPROVER, name="approver2")
    sso = SsoActor("sso:approver2", Channel.API, roles=frozenset({Role.ANALYST}))
    step = plan_for_incident(db, ato_incident, sso).step(STEP, VICTIM)
    assert step.requested_by == "sso:approver2"

    with pytest.raises(SelfApproval):
        approve(db, step.id, Actor("principal:approver2", Channel.API))

    assert _step(db, ato_incident).status == ActionStatus.PROPOSED


def test_an_sso_user_does_not_take_the_role_of_the_token_principal_of_its_name(
    db,
    ato_incident,
    make_principal,
):
    """Before: `approver2` signed in with a viewer role from the identity provider and approved as the
    token principal `approver2` (its row's approver role). The SSO user's roles are the IdP's."""
    analyst = make_principal(Role.ANALYST, name="ana").actor
    make_principal(Role.APPROVER, name="approver2")
    step = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)

    with pytest.raises(NotAllowed, match="viewer"):
        approve(db, step.id, SsoActor("sso:approver2", Channel.API, roles=frozenset({Role.VIEWER})))
    approved = approve(db, step.id, SsoActor("sso:approver2", Channel.API, roles=frozenset({Role.APPROVER})))

    assert approved.status == ActionStatus.APPROVED and approved.approved_by == ("sso:approver2",)


def test_an_approval_stops_counting_when_its_approver_is_disabled(db, settings, ato_incident, make_principal):
    analyst = make_principal(Role.ANALYST, name="ana").actor
    make_principal(Role.APPROVER, name="bob")
    step = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)
    assert approve(db, step.id, Actor("principal:bob", Channel.API)).status == ActionStatus.APPROVED

    disable_principal(db, name="bob", actor=Actor("principal:root", Channel.API))

    assert _step(db, ato_incident).approved_by == ()
    [result] = execute(db, settings, action_ids=[step.id], actor=Actor.system("remediation")).results
    assert result.outcome == Outcome.REFUSED and "no longer count" in result.message
    assert _step(db, ato_incident).status == ActionStatus.PROPOSED


def test_an_approval_is_refused_when_the_step_changed_after_the_approver_saw_it(
    db, ato_incident, make_principal
):
    analyst = make_principal(Role.ANALYST, name="ana").actor
    bob = make_principal(Role.APPROVER, name="bob").actor
    seen = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)
    _move_start(db, ato_incident, T0 - timedelta(days=3))  # meanwhile the step is re-planned wider
    changed = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)
    assert changed.fingerprint != seen.fingerprint and changed.version == seen.version + 1

    with pytest.raises(StaleStep, match="not the version you saw"):
        approve(db, seen.id, bob, seen=seen.fingerprint[:16])

    with db.session() as s:
        assert s.exec(select(Approval)).all() == []
    assert len(_refusals(db, "stale_step")) == 1
    assert approve(db, seen.id, bob, seen=changed.fingerprint).status == ActionStatus.APPROVED


def test_an_approval_of_one_version_does_not_count_when_the_step_changes_back(
    db, ato_incident, make_principal
):
    analyst = make_principal(Role.ANALYST, name="ana").actor
    bob = make_principal(Role.APPROVER, name="bob").actor
    first = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)
    approve(db, first.id, bob, seen=first.fingerprint)
    with db.session() as s:
        start = s.get(Incident, ato_incident).first_seen

    _move_start(db, ato_incident, T0 - timedelta(days=3))
    plan_for_incident(db, ato_incident, analyst)
    _move_start(db, ato_incident, start)
    back = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)

    assert back.fingerprint == first.fingerprint and back.version == first.version + 2
    assert back.status == ActionStatus.PROPOSED and back.approved_by == ()


def test_replanning_a_changed_step_makes_the_replanner_its_requester(db, ato_incident, make_principal):
    """Before: ana asked, bob changed the step by re-planning and then approved his own version."""
    analyst = make_principal(Role.ANALYST, name="ana").actor
    bob = make_principal(Role.APPROVER, name="bob").actor
    carol = make_principal(Role.APPROVER, name="carol").actor
    step = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)
    approve(db, step.id, bob)

    _move_start(db, ato_incident, T0 - timedelta(days=3))
    replanned = plan_for_incident(db, ato_incident, bob).step(STEP, VICTIM)

    assert (replanned.requested_by, replanned.status, replanned.approved_by) == (
        "principal:bob",
        ActionStatus.PROPOSED,
        (),
    )
    with pytest.raises(SelfApproval):
        approve(db, step.id, bob)
    assert approve(db, step.id, carol).status == ActionStatus.APPROVED
    with db.session() as s:
        record = s.exec(select(AuditRecord).where(AuditRecord.action == "remediation.replanned")).one()
    assert record.details["previous_requester"] == "principal:ana" and record.actor == "principal:bob"


def test_replanning_an_unchanged_step_keeps_requester_and_approvals(db, ato_incident, make_principal):
    analyst = make_principal(Role.ANALYST, name="ana").actor
    bob = make_principal(Role.APPROVER, name="bob").actor
    step = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)
    approve(db, step.id, bob)

    again = plan_for_incident(db, ato_incident, bob).step(STEP, VICTIM)

    assert (again.requested_by, again.status, again.approved_by, again.version) == (
        "principal:ana",
        ActionStatus.APPROVED,
        ("principal:bob",),
        step.version,
    )


def test_a_local_operator_never_approves(db, ato_incident, make_principal):
    analyst = make_principal(Role.ANALYST, name="ana").actor
    step = plan_for_incident(db, ato_incident, analyst).step(STEP, VICTIM)

    with pytest.raises(NotAllowed, match="never counts as an approver"):
        approve(db, step.id, Actor("local:root", Channel.CLI))

    with db.session() as s:
        assert s.exec(select(Approval)).all() == []


# --------------------------------------------------------------------------- through the API


@pytest.fixture
def sso_api(settings, db, identity_provider: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    api_settings = ApiSettings(
        token_pepper=TEST_PEPPER,
        oidc_issuer=identity_provider,
        oidc_audience="tenantguard",
        oidc_role_prefix="tenantguard.",
    )
    with TestClient(create_app(settings, db, api_settings=api_settings)) as client:
        yield client


def test_through_the_api_an_sso_user_cannot_approve_what_their_token_principal_asked(
    db,
    ato_incident,
    sso_api: TestClient,
    signing_key,
    identity_provider: str,
    make_principal: Callable[..., MadePrincipal],
):
    approver2 = make_principal(Role.APPROVER, name="approver2")
    planned = sso_api.post(f"/incidents/{ato_incident}/plan", headers=approver2.headers)
    assert planned.status_code == 200, planned.text
    step = next(s for s in planned.json()["steps"] if s["action"] == STEP)
    jwt_of_approver2 = token(
        signing_key, identity_provider, preferred_username="approver2", roles=["tenantguard.approver"]
    )

    refused = sso_api.post(
        f"/actions/{step['id']}/approve",
        headers={"Authorization": f"Bearer {jwt_of_approver2}"},
        json={"fingerprint": step["fingerprint"]},
    )

    assert refused.status_code == 409 and refused.json()["code"] == "self_approval", refused.text
    with db.session() as s:
        assert s.get(RemediationAction, step["id"]).status == ActionStatus.PROPOSED


def test_through_the_api_a_stale_fingerprint_is_refused(
    db,
    ato_incident,
    sso_api: TestClient,
    make_principal: Callable[..., MadePrincipal],
):
    ana, bob = make_principal(Role.ANALYST, name="ana"), make_principal(Role.APPROVER, name="bob")
    step = next(
        s
        for s in sso_api.post(f"/incidents/{ato_incident}/plan", headers=ana.headers).json()["steps"]
        if s["action"] == STEP
    )
    _move_start(db, ato_incident, T0 - timedelta(days=3))
    sso_api.post(f"/incidents/{ato_incident}/plan", headers=ana.headers)

    stale = sso_api.post(
        f"/actions/{step['id']}/approve", headers=bob.headers, json={"fingerprint": step["fingerprint"]}
    )
    bad = sso_api.post(f"/actions/{step['id']}/approve", headers=bob.headers, json={"fingerprint": "xyz"})

    assert stale.status_code == 409 and stale.json()["code"] == "stale_step", stale.text
    assert bad.status_code == 422 and "fingerprint" in bad.text
    current = sso_api.get(f"/actions/{step['id']}", headers=bob.headers).json()
    assert current["version"] == step["version"] + 1 and current["approved_by"] == []


def test_the_console_binds_a_decision_to_the_version_its_page_showed(
    settings,
    db,
    ato_incident,
    make_principal: Callable[..., MadePrincipal],
):
    """The step page carries the fingerprint it shows; a form posted after the step changed is refused."""
    import re

    from console.app import install_console

    ana, bob = make_principal(Role.ANALYST, name="ana"), make_principal(Role.APPROVER, name="bob")
    step = plan_for_incident(db, ato_incident, ana.actor).step(STEP, VICTIM)
    app = create_app(
        settings,
        db,
        api_settings=ApiSettings(
            token_pepper=TEST_PEPPER, rate_limit_per_second=0, auth_failures_per_minute=1000
        ),
    )
    install_console(app)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as browser:
        assert browser.post("/console/login", data={"token": bob.token}).status_code == 303
        page = browser.get(f"/console/approvals/{step.id}").text
        shown = re.search(r'name="fingerprint" value="([0-9a-f]{64})"', page)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert shown and csrf and shown.group(1) == step.fingerprint
        _move_start(db, ato_incident, T0 - timedelta(days=3))
        plan_for_incident(db, ato_incident, ana.actor)  # the step changes while the page is open

        posted = browser.post(
            f"/console/approvals/{step.id}/approve",
            data={"csrf": csrf.group(1), "fingerprint": shown.group(1)},
            follow_redirects=True,
        )

    assert "not the version you saw" in posted.text
    with db.session() as s:
        assert s.exec(select(Approval)).all() == []
