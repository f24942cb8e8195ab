"""The postmortem's customer impact score, its PDF export, and its review and sign-off (the API).

Given a resolved incident (high severity, 10 people, 6 hours), when its postmortem is drafted,
then it states the timeline's customer impact score (`timeline.impact`, 52/100) in Markdown,
HTML and PDF; when the named reviewers review it, then it is signed off only after the
last of them, each review on the timeline and the audit chain, and a stranger or a second review
by the same person is refused."""

from __future__ import annotations

import re
import zlib
from datetime import timedelta

from sqlmodel import select

from core.models import AuditRecord, TimelineEntry
from response.postmortem import customer_impact
from tests.factories import T0
from tests.response.conftest import response_document

PEOPLE = [f"user{i}@northwind.example" for i in range(10)]


def _pdf_text(data: bytes) -> str:
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S)
    out = []
    for raw in streams:
        try:
            out.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            out.append(raw.decode("latin-1"))
    return "".join(out)


def test_the_postmortem_takes_the_timelines_customer_impact_score(db, make_incident) -> None:
    from timeline.impact import customer_impact as timeline_score

    stored = timeline_score(
        people=40,
        files=2,
        apps=1,
        providers=2,
        sensitive=True,
        exposed=True,
        severity="critical",
        started=T0,
        ended=T0 + timedelta(hours=30),
    )
    built = make_incident(severity="critical", people=PEOPLE, priority_factors={"impact": stored})
    # the builder's, as stored (recomputed from what the incident names it would be 16 + 40 + 6 = 62)
    assert customer_impact(built, [])["score"] == stored["score"] == 96
    # An incident the builder never scored: the same formula from what it names (1 h, 10 people, high).
    hand_made = make_incident(severity="high", people=PEOPLE)
    computed = customer_impact(hand_made, [])
    assert (computed["score"], computed["band"]) == (52, "medium")  # scope 16 + severity 30 + duration 6
    assert computed["line"].startswith("impact 52 (medium): scope 16 — 10 people")


def test_postmortem_score_pdf_and_sign_off(
    api, db, make_incident, make_principal, configure_response
) -> None:
    document = response_document(None, jira=False) | {
        "postmortem_reviewers": ["principal:lead1", "principal:lead2"]
    }
    configure_response(document)
    incident = make_incident(
        "Mailbox rule forwarding to outside",
        priority="P2",
        severity="high",
        people=PEOPLE,
        status="resolved",
        resolved_at=T0 + timedelta(hours=6),
    )  # scored by timeline.impact: scope 16 (10 people) + severity 30 (high) + duration 6 (1 h) = 52
    auth = {
        name: {"Authorization": f"Bearer {make_principal('analyst', name=name).token}"}
        for name in ("lead1", "lead2", "stranger")
    }
    url = f"/response/incidents/{incident.id}/postmortem"
    missing = api.post("/response/incidents/999999/postmortem/review", json={}, headers=auth["lead1"])
    assert missing.status_code == 404, missing.text  # was a 500 (a response row for no incident)
    early = api.post(f"{url}/review", json={}, headers=auth["lead1"])
    assert early.status_code == 422 and "no postmortem draft" in early.text
    assert api.post(url, headers=auth["lead1"]).status_code == 200
    markdown = api.get(url, headers=auth["lead1"]).text
    assert "Customer impact score: **52/100** (medium) — impact 52 (medium): scope 16" in markdown
    assert "Not signed off yet: waiting for principal:lead1, principal:lead2." in markdown
    html = api.get(url, params={"format": "html"}, headers=auth["lead1"]).text
    assert "Customer impact score: <strong>52/100</strong> (medium)" in html
    pdf = api.get(url, params={"format": "pdf"}, headers=auth["lead1"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    text = _pdf_text(pdf.content)
    assert r"Customer impact score: 52/100 \(medium\)" in text  # PDF strings escape parentheses
    assert "Mailbox rule forwarding to outside" in text

    stranger = api.post(f"{url}/review", json={}, headers=auth["stranger"])
    assert stranger.status_code == 422 and "not a reviewer" in stranger.text
    first = api.post(f"{url}/review", json={"comment": "Timeline is right."}, headers=auth["lead1"])
    assert first.status_code == 200 and first.json()["signed_off_at"] is None
    again = api.post(f"{url}/review", json={}, headers=auth["lead1"])
    assert again.status_code == 422 and "already reviewed" in again.text
    last = api.post(f"{url}/review", json={}, headers=auth["lead2"])
    assert last.json()["signed_off_at"] is not None
    assert [r["reviewer"] for r in last.json()["reviews"]] == ["principal:lead1", "principal:lead2"]
    signed = api.get(url, headers=auth["lead1"]).text
    assert "Signed off " in signed and "Reviewed by principal:lead1 at" in signed
    assert "Timeline is right." in signed
    with db.session(readonly=True) as session:
        actions = [
            r.action
            for r in session.exec(select(AuditRecord).where(AuditRecord.object_id == str(incident.id))).all()
            if r.action.startswith("response.postmortem")
        ]
        lines = session.exec(
            select(TimelineEntry.title).where(
                TimelineEntry.incident_id == incident.id, TimelineEntry.kind == "response"
            )
        ).all()
    assert actions == [
        "response.postmortem.drafted",
        "response.postmortem.reviewed",
        "response.postmortem.reviewed",
        "response.postmortem.signed_off",
    ]
    assert "Postmortem signed off by principal:lead1, principal:lead2" in lines
