"""Stakeholder updates and the status page: given an incident, when updates are written for each
audience, then internal ones never reach the status page, a customer update shows only once a
second person approved it, drills never show, and a late update is reminded once per due time."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.models import AuditRecord, IncidentResponse
from core.models.enums import Role
from response.updates import remind_due
from tests.factories import T0
from tests.response.conftest import response_document


def test_only_approved_public_wording_reaches_the_status_page(api, make_incident, make_principal) -> None:
    incident = make_incident("Mailbox takeover of the CFO", priority="P1")
    writer = make_principal(Role.ANALYST, name="writer")
    approver = make_principal(Role.APPROVER, name="approver")
    url = f"/response/incidents/{incident.id}/updates"
    internal = api.post(
        url,
        json={"audience": "executives", "text": "CFO mailbox hijacked; contained."},
        headers=writer.headers,
    )
    assert internal.status_code == 201 and internal.json()["status"] == "published"
    public = api.post(
        url,
        json={"audience": "customers", "text": "Some users cannot sign in.", "components": ["Sign-in"]},
        headers=writer.headers,
    )
    assert public.status_code == 201 and public.json()["status"] == "draft"
    summary = api.get("/status/api/v2/summary.json").json()
    assert summary["incidents"] == [] and summary["status"]["indicator"] == "none"
    # An analyst may not publish at all; an approver other than the author may.
    assert (
        api.post(f"/response/updates/{public.json()['id']}/publish", headers=writer.headers).status_code
        == 403
    )
    published = api.post(f"/response/updates/{public.json()['id']}/publish", headers=approver.headers)
    assert published.status_code == 200 and published.json()["approved_by"] == "principal:approver"
    summary = api.get("/status/api/v2/summary.json").json()
    [shown] = summary["incidents"]
    assert shown["name"] == "Some users cannot sign in." and shown["impact"] == "critical"
    assert {c["name"]: c["status"] for c in summary["components"]}["Sign-in"] == "major_outage"
    feed = api.get("/status/history.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    import xml.etree.ElementTree as ElementTree

    [entry] = ElementTree.fromstring(feed.text).findall("{http://www.w3.org/2005/Atom}entry")
    assert "Some users cannot sign in." in ElementTree.tostring(entry, encoding="unicode")
    assert "CFO" not in feed.text
    page = api.get("/status").text
    assert "Some users cannot sign in." in page and "CFO" not in page and "Mailbox takeover" not in page


def test_the_author_cannot_approve_their_own_public_update(api, make_incident, make_principal) -> None:
    incident = make_incident(priority="P2")
    approver = make_principal(Role.APPROVER, name="solo")
    made = api.post(
        f"/response/incidents/{incident.id}/updates",
        json={"audience": "customers", "text": "Investigating."},
        headers=approver.headers,
    ).json()
    refused = api.post(f"/response/updates/{made['id']}/publish", headers=approver.headers)
    assert refused.status_code == 422 and "someone else" in refused.json()["detail"]


def test_a_late_update_is_reminded_once_per_due_time(db, configure_response, make_incident) -> None:
    config = configure_response(response_document(None, jira=False))
    incident = make_incident(priority="P1", created_at=T0)
    assert remind_due(db, config, T0 + timedelta(minutes=10)).reminders == []
    assert remind_due(db, config, T0 + timedelta(minutes=31)).reminders == [incident.id]
    assert remind_due(db, config, T0 + timedelta(minutes=40)).reminders == []
    with db.session(readonly=True) as session:
        state = session.exec(
            select(IncidentResponse).where(IncidentResponse.incident_id == incident.id)
        ).one()
        [due] = session.exec(select(AuditRecord).where(AuditRecord.action == "response.update.due")).all()
    assert state.reminded_at is not None and due.details["late_minutes"] == 1
