"""E-mail intake: reports mailed to an intake mailbox, read over IMAP (``imaplib``) each cycle.

Every unseen mail in the folder becomes an alert (source ``email``): the subject (``Re:``/``Fwd:``
stripped) is the title, the text body the summary, the sender a person; the dedup key is the
thread's first Message-ID (``References``, else ``In-Reply-To``, else its own), so replies fold
into the report's finding and the incident builder groups it with related findings. Subject and
body are redacted before storage (``core.redaction``). A mail is flagged ``\\Seen`` once its
finding committed; a run lost between the two reads it again, and the repeat folds into the same
finding (its count grows by one).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from core.audit import Actor, Channel
from core.clock import as_utc, utcnow
from core.db import Database
from response.config import MailboxConfig, ResponseConfig
from response.errors import AlertRefused
from response.intake import TRIGGER, Alert, clean_text, ingest

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 30
REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg)\s*:\s*)+", re.IGNORECASE)


@dataclass
class MailboxReport:
    read: int = 0
    findings: list[int] = field(default_factory=list)
    skipped: int = 0
    error: str = ""


def _connect(box: MailboxConfig) -> imaplib.IMAP4:
    from providers.credentials import resolve_reference

    client: imaplib.IMAP4 = (
        imaplib.IMAP4_SSL(box.host, box.port, timeout=TIMEOUT_SECONDS)
        if box.ssl
        else imaplib.IMAP4(box.host, box.port, timeout=TIMEOUT_SECONDS)
    )
    client.login(box.user, resolve_reference("intake mailbox password", box.password_ref))
    status, _ = client.select(box.folder)
    if status != "OK":
        raise AlertRefused(f"the intake mailbox has no folder {box.folder!r}")
    return client


def _thread_key(message: EmailMessage) -> str:
    references = str(message.get("References") or "").split()
    root = references[0] if references else str(message.get("In-Reply-To") or message.get("Message-ID") or "")
    return root.strip().strip("<>")[:200]


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = str(part.get_content())
    if part.get_content_type() == "text/html":
        text = re.sub(r"<[^>]+>", " ", text)
    return text.strip()


def alert_from_mail(raw: bytes, severity: Any) -> Alert:
    """The report a mail makes; AlertRefused when it has neither subject nor sender."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    sender = parseaddr(str(message.get("From") or ""))[1].lower()
    subject = REPLY_PREFIX.sub("", str(message.get("Subject") or "")).strip()
    if not sender or not subject:
        raise AlertRefused("a mail without a sender or a subject is not a report")
    key = _thread_key(message) or f"{sender}:{subject}"
    return Alert(
        source="email",
        dedup_key=clean_text(key, 200),
        title=clean_text(f"Reported by e-mail: {subject}", 300),
        severity=severity,
        action=TRIGGER,
        summary=clean_text(_body(message), 2000),
        entities={"people": [sender], "apps": ["declared:email"]},
        context={"reported_by": sender, "message_id": clean_text(message.get("Message-ID"), 200)},
    )


def poll_mailbox(db: Database, config: ResponseConfig, now: datetime | None = None) -> MailboxReport:
    """Read the intake mailbox's unseen mails into findings (each committed, then flagged seen)."""
    report = MailboxReport()
    box = config.intake.mailbox
    if box is None:
        return report
    when = as_utc(now or utcnow())
    try:
        client = _connect(box)
    except (OSError, imaplib.IMAP4.error, AlertRefused) as exc:
        report.error = f"intake mailbox {box.host}:{box.port}: {type(exc).__name__}: {exc}"[:300]
        log.warning("%s", report.error)
        return report
    try:
        status, data = client.uid("SEARCH", "UNSEEN")
        uids = [u.decode() for u in (data[0] or b"").split()] if status == "OK" and data else []
        for uid in uids[: box.max_per_run]:
            status, parts = client.uid("FETCH", uid, "(RFC822)")
            raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
            if status != "OK" or not isinstance(raw, bytes):
                continue
            report.read += 1
            try:
                alert = alert_from_mail(raw, box.severity)
            except AlertRefused:
                report.skipped += 1
            else:
                actor = Actor(f"email:{alert.context['reported_by']}"[:200], Channel.API, uid[:100])
                with db.session() as session:
                    result = ingest(
                        session, alert, actor=actor, dedup_hours=config.intake.dedup_hours, now=when
                    )
                if result.finding_id is not None:
                    report.findings.append(result.finding_id)
            client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    except (OSError, imaplib.IMAP4.error) as exc:
        report.error = f"intake mailbox {box.host}:{box.port}: {type(exc).__name__}: {exc}"[:300]
        log.warning("%s", report.error)
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()
    return report
