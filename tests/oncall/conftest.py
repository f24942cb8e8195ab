"""On-call fixtures: a simulator (Slack + Twilio), the simulator's SMTP server on its own
(simulator/mail.py), a configured document, incidents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor
from core.db import Database
from oncall.files import validate
from oncall.store import apply_document
from simulator.mail import MailServer, running

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# An incident opened half an hour before T0 (pass to make_incident).
OPENED_BEFORE_T0 = {"first_seen": T0 - timedelta(minutes=30), "last_seen": T0}


class Mailbox:
    """What the simulator's SMTP server delivered, as parsed messages (oldest first)."""

    def __init__(self, mail: MailServer) -> None:
        self.mail = mail

    @property
    def messages(self) -> list[Message]:
        return [message_from_bytes(d.raw) for d in self.mail.delivered()]


@dataclass(frozen=True)
class SmtpAddress:
    port: int


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpAddress, Mailbox]]:
    """(its address, what it delivered): the simulator's mail server alone, without a world."""
    with running() as mail:
        yield SmtpAddress(mail.smtp_port), Mailbox(mail)


@pytest.fixture
def paging_sim(make_simulator, db: Database, monkeypatch: pytest.MonkeyPatch):
    """A simulator whose Slack connection is stored, with the Twilio auth token in the environment."""
    handle = make_simulator("quiet_week", users=12, days=1, seed=3)
    sync_connections(
        db,
        connections_from_simulator(handle.info, providers=["slack"], backfill=False),
        actor=Actor.cli("principal:test"),
    )
    monkeypatch.setenv("TG_TEST_TWILIO_TOKEN", handle.info["twilio.auth_token"])
    return handle


def slack_users(handle: Any, count: int) -> list[str]:
    import requests

    token = handle.info["slack.bot_token"]
    members = requests.get(
        handle.info["slack.base_url"] + "users.list", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()["members"]
    return [m["id"] for m in members[:count]]


def oncall_document(
    handle: Any, smtp_port: int, *, delays: tuple[float, ...] = (5, 5, 5), repeat: int = 0
) -> dict[str, Any]:
    """Three responders in three time zones, a weekly schedule, a 3-step policy, a P1/P2 route."""
    alice, bob, chen = slack_users(handle, 3)
    return {
        "responders": [
            {
                "name": "alice",
                "email": "alice@example.com",
                "phone": "+15550000001",
                "slack_user": alice,
                "timezone": "Europe/Paris",
                "notify": ["sms", "slack"],
            },
            {
                "name": "bob",
                "email": "bob@example.com",
                "phone": "+15550000002",
                "slack_user": bob,
                "timezone": "America/New_York",
                "notify": ["voice", "email"],
            },
            {"name": "chen", "email": "chen@example.com", "slack_user": chen, "timezone": "Asia/Tokyo"},
        ],
        "schedules": [
            {
                "name": "primary",
                "timezone": "Europe/Paris",
                "layers": [
                    {
                        "name": "weekly",
                        "users": ["alice", "chen"],
                        "rotation": "weekly",
                        "start": "2026-03-02T09:00:00",
                    }
                ],
            },
        ],
        "policies": [
            {
                "name": "security",
                "repeat": repeat,
                "steps": [
                    {"targets": [{"type": "schedule", "name": "primary"}], "delay_minutes": delays[0]},
                    {"targets": [{"type": "responder", "name": "bob"}], "delay_minutes": delays[1]},
                    {
                        "targets": [{"type": "slack_channel", "channel": "#security-ops"}],
                        "delay_minutes": delays[2],
                    },
                ],
            },
        ],
        "routes": [{"name": "urgent", "policy": "security", "priorities": ["P1", "P2"]}],
        "channels": {
            "smtp": {"host": "127.0.0.1", "port": smtp_port},
            "twilio": {
                "account_sid": handle.info["twilio.account_sid"],
                "auth_token_ref": "env:TG_TEST_TWILIO_TOKEN",
                "from_number": "+15559990000",
                "base_url": handle.info["twilio.base_url"],
            },
        },
    }


@pytest.fixture
def configure(db: Database) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        with db.session() as session:
            apply_document(session, validate(document, where="test"), actor=Actor.cli("principal:lead"))

    return apply
