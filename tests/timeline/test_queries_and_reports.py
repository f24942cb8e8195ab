"""Reading timelines page by page, metrics over a period, and the incident report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.audit import Actor, Channel
from core.models.incident import Incident
from core.models.remediation import Approval, RemediationAction
from tests.factories import T0, at
from timeline import build_incidents
from timeline.errors import TimelineError
from timeline.lifecycle import add_note, assign, set_postmortem, transition
from timeline.metrics import compute_metrics
from timeline.queries import get_timeline
from timeline.reports import build_report, render_html, render_markdown

OPENED = T0 + timedelta(minutes=30)
# longer than any table cell used to keep: the approver reads all of it
REASON = (
    "Tokens issued while the attacker held the password stay valid until they expire, so every "
    "session of the account is revoked now; the owner signs in again with a new password and MFA "
    "[playbook m365_account_takeover; findings #1 m365_success_after_brute_force, #2 m365_inbox_rule_forwarding]"
)
COMMENT = "Checked with Alice by phone at 09:20: she did not sign in from 203.0.113.7; go ahead and revoke."


@pytest.fixture
def incident_id(db, settings, make_events, make_finding, make_message) -> int:
    logins = make_events(
        25, action="UserLoginFailed", outcome="failure", ip="203.0.113.7", start=T0 - timedelta(minutes=20)
    )
    rule = make_events(1, action="New-InboxRule", provider="m365", stream="unified_audit", start=at(12))
    make_finding(
        "Brute force then success", people=["alice@northwind.example"], ips=["203.0.113.7"], evidence=logins
    )
    make_finding(
        "Inbox rule forwards to external address",
        people=["alice@northwind.example"],
        first_seen=at(12),
        evidence=rule,
    )
    make_message("Alice says the MFA prompt at 9am was not her; 203.0.113.7", sent_at=at(15))
    [found] = build_incidents(db, settings, notify=False, now=OPENED)
    return found


def add_action(db, incident_id: int) -> None:
    """A step proposed, approved and executed, journalled the way remediation does it."""
    from remediation.journal import note

    with db.session() as session:
        action = RemediationAction(
            incident_id=incident_id,
            action="revoke_sessions",
            provider="m365",
            target={"email": "alice@northwind.example"},
            phase="contain",
            status="succeeded",
            requested_by="principal:erin",
            idempotency_key="k-1",
            reason=REASON,
            created_at=OPENED + timedelta(minutes=20),
            executed_at=OPENED + timedelta(minutes=35),
        )
        session.add(action)
        session.flush()
        session.add(
            Approval(
                action_id=action.id,
                principal="principal:gus",
                decision="approve",
                at=OPENED + timedelta(minutes=30),
                comment=COMMENT,
            )
        )
        what = "revoke_sessions alice@northwind.example"
        for event, actor, minutes, title, details in (
            ("proposed", "principal:erin", 20, f"proposed: {what}", {"reason": REASON}),
            ("approved", "principal:gus", 30, f"approved by principal:gus: {what}", {"comment": COMMENT}),
            ("succeeded", "system:executor", 35, f"executed (succeeded): {what}", {}),
        ):
            note(
                session,
                action,
                event,
                Actor(actor, Channel.API),
                title,
                details,
                at=OPENED + timedelta(minutes=minutes),
            )


def test_pages_walk_the_whole_timeline_in_time_order_without_repeats(db, incident_id) -> None:
    add_action(db, incident_id)
    for n in range(7):
        add_note(
            db,
            incident_id,
            f"note {n}",
            actor=Actor("principal:erin", Channel.CLI),
            at=OPENED + timedelta(minutes=n),
        )
    seen, cursor = [], None
    while True:
        page = get_timeline(db, incident_id, cursor=cursor, limit=3, include_excerpts=True)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len({i.id for i in seen}) == page.total
    assert [i.at for i in seen] == sorted(i.at for i in seen)
    kinds = {i.kind for i in seen}
    assert kinds == {"evidence", "finding", "message", "status", "note", "remediation"}
    remediation = [i.title for i in seen if i.kind == "remediation"]
    assert remediation == [
        "proposed: revoke_sessions alice@northwind.example",
        "approved by principal:gus: revoke_sessions alice@northwind.example",
        "executed (succeeded): revoke_sessions alice@northwind.example",
    ]


def test_a_page_can_be_filtered_by_kind_and_a_bad_cursor_is_refused(db, incident_id) -> None:
    page = get_timeline(db, incident_id, kinds=["evidence"])
    assert [(i.count, i.body["action"]) for i in page.items] == [
        (25, "UserLoginFailed"),
        (1, "New-InboxRule"),
    ]
    with pytest.raises(TimelineError, match="not one this server gave out"):
        get_timeline(db, incident_id, cursor="garbage")


def test_metrics_measure_detection_and_response_times(db, settings, incident_id, make_finding) -> None:
    transition(
        db,
        incident_id,
        "triaged",
        actor=Actor("principal:erin", Channel.CLI),
        at=OPENED + timedelta(minutes=10),
    )
    transition(
        db,
        incident_id,
        "contained",
        actor=Actor("principal:erin", Channel.CLI),
        at=OPENED + timedelta(hours=1),
    )
    transition(
        db,
        incident_id,
        "resolved",
        actor=Actor("principal:erin", Channel.CLI),
        at=OPENED + timedelta(hours=3),
    )
    make_finding("Medium noise", people=["zoe@northwind.example"], severity="medium", first_seen=at(days=1))
    [other] = build_incidents(db, settings, notify=False, now=OPENED + timedelta(days=1))
    transition(
        db,
        other,
        "false_positive",
        actor=Actor("principal:erin", Channel.CLI),
        at=OPENED + timedelta(days=1, hours=2),
    )
    report = compute_metrics(db, T0 - timedelta(days=1), now=OPENED + timedelta(days=2))
    assert report.incidents == 2
    # first malicious event 08:40, first finding written 09:05 (25 min); the other finding has no
    # evidence, so its own time counts as the first sign (5 min)
    assert (report.mttd.count, report.mttd.mean_seconds) == (2, 15 * 60)
    assert report.mtta.count == 2
    assert (report.mttc.mean_seconds, report.mttr.mean_seconds) == (3600, 3 * 3600)
    assert report.sla_resolve.met == 1 and report.sla_resolve.compliance == 1.0
    assert report.false_positive_rate == 0.5
    assert report.by_type["brute_force_then_success"].count == 1
    body = report.as_dict()
    assert body["sla_acknowledge"]["compliance"] is not None
    # per priority: the contained and resolved incident's times sit under its own priority only
    with db.session(readonly=True) as session:
        worked = session.get(Incident, incident_id).priority
        noise = session.get(Incident, other).priority
    assert worked != noise
    times = report.by_priority_times
    assert (times[worked]["mttc"].mean_seconds, times[worked]["mttr"].mean_seconds) == (3600, 3 * 3600)
    assert times[worked]["mtta"].mean_seconds == 10 * 60
    assert times[worked]["mttd"].mean_seconds == 25 * 60
    # the false positive counts for acknowledgement and detection, not for containment
    assert (times[noise]["mtta"].count, times[noise]["mttc"].count, times[noise]["mttd"].count) == (1, 0, 1)
    assert all(t["mttr"].count == 0 for p, t in times.items() if p not in (worked, noise))
    assert body["by_priority_times"][worked]["mttc"]["mean_seconds"] == 3600


def test_the_report_tells_the_story_in_plain_words(db, incident_id) -> None:
    add_action(db, incident_id)
    assign(
        db,
        incident_id,
        "principal:erin",
        actor=Actor("principal:erin", Channel.CLI),
        at=OPENED + timedelta(minutes=5),
    )
    transition(
        db,
        incident_id,
        "contained",
        actor=Actor("principal:erin", Channel.CLI),
        at=OPENED + timedelta(minutes=40),
    )
    set_postmortem(
        db,
        incident_id,
        actor=Actor("principal:erin", Channel.CLI),
        root_cause="Password reuse; no MFA",
        lessons="Roll out phishing-resistant MFA",
    )
    report = build_report(db, incident_id, include_excerpts=True, now=OPENED + timedelta(hours=1))
    assert report.summary.startswith(
        "On 10 March 2025 at 08:40 UTC, the first recorded sign of this incident was "
        "25 × UserLoginFailed by alice@northwind.example from 203.0.113.7 (failure) (m365/signins)."
    )
    assert (
        "2 findings followed over 12 min: Brute force then success and Inbox rule forwards to external address."
        in report.summary
    )
    assert "1 related message was found in slack/messages." in report.summary
    assert "acknowledged after 5 min and contained after 40 min" in report.summary
    assert "1 remediation action was planned (1 carried out, approved by principal:gus)." in report.summary
    markdown = render_markdown(report)
    assert "## Root cause\n\nPassword reuse; no MFA" in markdown
    assert "| revoke_sessions |" in markdown and "approve by principal:gus" in markdown
    assert "Alice says the MFA prompt" in markdown
    # the approver's whole comment and the step's whole reason, in the actions table and the timeline
    actions = markdown.split("## Actions taken")[1]
    assert COMMENT in actions and REASON.replace("[", "\\[").replace("]", "\\]") in actions
    timeline = markdown.split("## Timeline")[1].split("## Root cause")[0]
    assert f"comment: {COMMENT}" in timeline
    html = render_html(report)
    assert "<h2>Actions taken</h2>" in html and "principal:gus" in html
    assert "go ahead and revoke." in html and "the owner signs in again with a new password and MFA" in html
    # same input, same words
    again = build_report(db, incident_id, include_excerpts=True, now=OPENED + timedelta(hours=1))
    assert again.summary == report.summary and render_markdown(again) == markdown


def test_the_report_without_conversation_rights_has_no_excerpts(db, incident_id) -> None:
    report = build_report(db, incident_id, include_excerpts=False)
    assert "MFA prompt at 9am" not in render_markdown(report)
    assert "MFA prompt at 9am" not in render_html(report)


def test_html_escapes_what_attackers_control(db, settings, make_finding) -> None:
    make_finding("<script>alert(1)</script> app consent", apps=["<img src=x onerror=alert(1)>"])
    [incident_id] = build_incidents(db, settings, notify=False)
    html = render_html(build_report(db, incident_id))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_markdown_shows_html_and_links_from_a_note_as_text(db, incident_id) -> None:
    # given a note carrying an image with an onerror handler, a javascript link and a bare URL
    from markdown_it import MarkdownIt

    add_note(
        db,
        incident_id,
        "see <img src=x onerror=alert(1)> and [here](javascript:alert(1)) or <https://evil.example/x>",
        actor=Actor("principal:erin", Channel.CLI),
    )
    # when the report is rendered as Markdown and that Markdown is rendered (raw HTML allowed)
    markdown = render_markdown(build_report(db, incident_id))
    rendered = MarkdownIt("commonmark", {"html": True}).render(markdown)
    # then the reader sees the text, and no element or link comes out of it
    assert "<img" not in rendered and "<a " not in rendered
    assert "onerror=alert(1)" in rendered and "here" in rendered
