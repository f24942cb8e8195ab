"""Reports by e-mail: sent with `smtplib` to a loopback SMTP server, read by the response stage
from the intake mailbox with `imaplib` over loopback IMAP.

Given an intake mailbox, when a user mails a report and then replies to their own thread, then the
response stage makes one finding (count 2, the sender a person, the body redacted), flags both mails
seen so the next run reads nothing, and the incident builder opens an incident for it; a wrong
password is an error the stage reports, not a crash."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest
from sqlmodel import select

from core.models import AuditRecord, Finding, Incident
from pipeline.cycle import run_cycle
from response import run_due
from simulator.mail import running
from tests.response.conftest import response_document

PASSWORD = "intake-mailbox-password"


def _mail(smtp_port: int, subject: str, body: str, message_id: str, reply_to: str | None = None) -> None:
    message = EmailMessage()
    message["From"] = "Dana Reyes <dana.reyes@northwind.example>"
    message["To"] = "security-intake@northwind.example"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if reply_to:
        message["In-Reply-To"] = reply_to
        message["References"] = reply_to
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
        client.send_message(message)


@pytest.fixture
def mailbox(settings, configure_response, monkeypatch):
    monkeypatch.setenv("TG_TEST_MAILBOX_PASSWORD", PASSWORD)
    with running() as mail:
        mail.add_account("intake", PASSWORD)  # a catch-all INBOX
        smtp_port, imap_port = mail.smtp_port, mail.imap_port
        document = response_document(None, jira=False) | {"channels": {"enabled": False}}
        document["intake"]["mailbox"] = {
            "host": "127.0.0.1",
            "port": imap_port,
            "ssl": False,
            "user": "intake",
            "password_ref": "env:TG_TEST_MAILBOX_PASSWORD",
        }
        configure_response(document)
        yield smtp_port, mail


def test_a_mailed_report_and_its_reply_become_one_finding_and_an_incident(db, settings, mailbox) -> None:
    smtp_port, mail = mailbox
    _mail(
        smtp_port,
        "Strange sign-in prompt on my laptop",
        "I got an MFA prompt I did not ask for.",
        "<report-1@northwind.example>",
    )
    _mail(
        smtp_port,
        "Re: Strange sign-in prompt on my laptop",
        "It happened again just now. My password is hunter2-Secret! if that helps.",
        "<report-2@northwind.example>",
        reply_to="<report-1@northwind.example>",
    )
    assert len(mail.delivered()) == 2
    report = run_due(db, settings)
    assert (report.mailbox.read, report.mailbox.error) == (2, "")
    assert all(m.seen for m in mail.inbox("intake"))
    with db.session(readonly=True) as session:
        [finding] = session.exec(select(Finding)).all()
        received = session.exec(
            select(AuditRecord).where(AuditRecord.action == "response.alert.received")
        ).all()
    assert finding.dedup_key == "alert:email:report-1@northwind.example"
    assert finding.title == "Reported by e-mail: Strange sign-in prompt on my laptop"
    assert finding.count == 2 and finding.severity == "high"
    assert finding.entities["people"] == ["dana.reyes@northwind.example"]
    # The thread's newest mail describes it now (as any repeat does), redacted before storage.
    assert finding.description.startswith("It happened again just now. My password is [REDACTED:secret]")
    assert "hunter2" not in finding.description
    assert [r.actor for r in received] == ["email:dana.reyes@northwind.example"] * 2
    again = run_due(db, settings)
    assert again.mailbox.read == 0 and mail.logins("intake") == 2
    run_cycle(db, settings, only=["incidents"], notify=False)
    with db.session(readonly=True) as session:
        incident = session.exec(select(Incident)).one()
    assert "Strange sign-in prompt" in incident.title and incident.finding_count == 1


def test_a_wrong_mailbox_password_is_a_reported_error(db, settings, mailbox, monkeypatch) -> None:
    smtp_port, mail = mailbox
    _mail(smtp_port, "Phishing mail", "Look at this.", "<p-1@northwind.example>")
    monkeypatch.setenv("TG_TEST_MAILBOX_PASSWORD", "wrong")
    report = run_due(db, settings)
    assert "intake mailbox 127.0.0.1" in report.mailbox.error and report.mailbox.read == 0
    assert report.mailbox.error in report.errors
    assert not mail.inbox("intake")[0].seen
    with db.session(readonly=True) as session:
        assert session.exec(select(Finding)).first() is None
