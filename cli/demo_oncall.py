"""The demo's on-call part: who is paged about the P1, on which channel, the escalation when nobody
answers, and the acknowledgement that stops it — through the simulator's Slack, Twilio and SMTP
server (e-mail pages go over STARTTLS, the certificate verified against the simulator's CA, with a
password; the simulator's /_sim/mail says what it delivered).

`configure` applies a small on-call document (two responders, a weekly schedule, a 3-step policy,
a P1 route) before the cycle, so the cycle's escalations stage pages level 1 by itself; `show`
then moves a simulated clock past the step delay (level 2 is paged), acknowledges as the demo
analyst and prints what happened, in order.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from rich.table import Table
from sqlmodel import col, select

from cli.context import console
from core.audit import Actor, Channel
from core.clock import as_utc, utcnow
from core.db import Database
from core.models.oncall import Escalation, Page
from core.settings import Settings

STEP_MINUTES = 5


def configure(db: Database, demo_settings: Settings, info: dict[str, Any], actor: Actor) -> None:
    from oncall.files import validate
    from oncall.store import apply_document

    token_file = _secret_file(demo_settings, "twilio-auth-token", info["twilio.auth_token"])
    members = requests.get(
        info["slack.base_url"] + "users.list",
        headers={"Authorization": f"Bearer {info['slack.bot_token']}"},
        timeout=30,
    ).json()["members"]
    first, second = [m for m in members if not m.get("is_bot")][:2]
    document = {
        "responders": [
            {
                "name": "dana",
                "phone": "+15550100001",
                "slack_user": first["id"],
                "timezone": "Europe/Paris",
                "notify": ["slack", "sms"],
            },
            {
                "name": "omar",
                "phone": "+15550100002",
                "slack_user": second["id"],
                "timezone": "America/New_York",
                "email": f"omar@{info.get('m365.domain') or 'example.com'}",
                "notify": ["slack", "voice", "email"],
            },
        ],
        "schedules": [
            {
                "name": "primary",
                "timezone": "Europe/Paris",
                "layers": [
                    {
                        "name": "weekly",
                        "users": ["dana"],
                        "rotation": "weekly",
                        "start": "2026-01-05T09:00:00",
                    }
                ],
            }
        ],
        "policies": [
            {
                "name": "security",
                "steps": [
                    {"targets": [{"type": "schedule", "name": "primary"}], "delay_minutes": STEP_MINUTES},
                    {"targets": [{"type": "responder", "name": "omar"}], "delay_minutes": STEP_MINUTES},
                    {"targets": [{"type": "slack_channel", "channel": "#security-ops"}]},
                ],
            }
        ],
        "routes": [{"name": "p1", "policy": "security", "priorities": ["P1"]}],
        "channels": {
            **_smtp_channel(demo_settings, info),
            "twilio": {
                "account_sid": info["twilio.account_sid"],
                "auth_token_ref": f"file:{token_file}",
                "from_number": "+15550109999",
                "base_url": info["twilio.base_url"],
            },
        },
    }
    with db.session() as session:
        apply_document(session, validate(document, where="demo on-call"), actor=actor)


def _secret_file(demo_settings: Settings, name: str, value: str) -> Path:
    path = Path(demo_settings.data_dir) / name
    path.write_text(value)
    path.chmod(0o600)
    return path


def _smtp_channel(demo_settings: Settings, info: dict[str, Any]) -> dict[str, Any]:
    """The simulator's SMTP server as the on-call e-mail channel (none when it runs without one)."""
    if "mail.smtp_port" not in info:
        return {}
    password = _secret_file(demo_settings, "smtp-password", info["mail.smtp_password"])
    return {
        "smtp": {
            "host": info["mail.smtp_host"],
            "port": info["mail.smtp_port"],
            "sender": f"oncall@{info.get('m365.domain') or 'tenantguard.local'}",
            "starttls": True,
            "ca_file": info["m365.ca_bundle"],
            "username": info["mail.smtp_user"],
            "password_ref": f"file:{password}",
        }
    }


def _delivered_mail(info: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not info or "mail.smtp_port" not in info:
        return []
    answer = requests.get(f"{info['admin_url']}/mail", timeout=30)
    answer.raise_for_status()
    return list(answer.json()["delivered"])


def show(
    db: Database, demo_settings: Settings, acknowledger: Actor, info: dict[str, Any] | None = None
) -> None:
    """Let the first level go unanswered (simulated clock), then acknowledge; print the paging."""
    from oncall import acknowledge, run_due
    from oncall.journal import recipient

    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).order_by(col(Escalation.id))).first()
    if escalation is None:
        console.print("on-call: no P1 incident, nobody paged")
        return
    incident_id = escalation.incident_id
    later = as_utc(utcnow()) + timedelta(minutes=STEP_MINUTES)
    run_due(db, demo_settings, now=later)  # nobody answered level 1 within its delay
    with db.session() as session:
        acknowledge(
            session,
            incident_id=incident_id,
            actor=acknowledger,
            via=Channel.CLI.value,
            now=later + timedelta(minutes=2),
        )
    run_due(db, demo_settings, now=later + timedelta(minutes=STEP_MINUTES * 3))  # nothing more fires
    with db.session(readonly=True) as session:
        escalation = session.exec(select(Escalation).where(Escalation.incident_id == incident_id)).one()
        pages = session.exec(select(Page).where(Page.incident_id == incident_id).order_by(col(Page.id))).all()
    started = as_utc(escalation.started_at)
    table = Table(title=f"Paging #{incident_id} ({escalation.policy})")
    for column in ("+min", "level", "who", "channel", "delivery"):
        table.add_column(column)
    for page in pages:
        at = as_utc(page.sent_at or page.created_at)
        table.add_row(
            f"{(at - started).total_seconds() / 60:.0f}",
            str(page.step + 1),
            recipient(page.responder, page.medium, page.address),
            page.medium,
            page.status + (f" ({page.last_error[:60]})" if page.last_error else ""),
        )
    console.print(table)
    acked = as_utc(escalation.acknowledged_at) if escalation.acknowledged_at else None
    mtta = f"{(acked - started).total_seconds() / 60:.0f} min" if acked else "-"
    console.print(
        f"on-call: level 1 unanswered for {STEP_MINUTES} min -> level 2 paged; acknowledged by "
        f"{escalation.acknowledged_by} via {escalation.acknowledged_via}, MTTA {mtta}; level 3 not paged",
        highlight=False,
    )
    for mail in _delivered_mail(info)[:3]:
        console.print(
            f"e-mail page delivered to {', '.join(mail['recipients'])}: {mail['subject']!r} "
            f"({'STARTTLS, certificate verified' if mail['tls'] else 'in clear'}"
            + (f", signed in as {mail['login']}" if mail["login"] else "")
            + f"; the simulator's ground truth: {info['admin_url'] if info else ''}/mail)",
            highlight=False,
            markup=False,
        )
    from oncall.service import mtta_report

    with db.session(readonly=True) as session:
        figures = mtta_report(session, started - timedelta(days=1), later + timedelta(days=1))
    for row in figures["policies"]:
        console.print(
            f"on-call report: policy {row['policy']}: {row['acknowledged']}/{row['escalations']} acknowledged, "
            f"MTTA {(row['mtta_seconds'] or 0) / 60:.0f} min (`tenantguard oncall report`)",
            highlight=False,
        )
