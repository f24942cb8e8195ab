"""Configuration snapshots and conversations from the simulator: a snapshot row only when an object
changes (deletions included), and conversations stored exactly once and only redacted."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import func, select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.options import CollectorOptions
from core.db import Database
from core.models import ConfigSnapshot, Connection, Message
from core.redaction import redact
from core.settings import Settings
from providers.credentials import Secrets
from providers.m365 import m365_clients
from providers.slack import slack_web_client

OPTIONS = CollectorOptions(threads=4, backoff_base=0.01, backoff_max=0.05)
SNAPSHOT_STREAMS = {
    "m365": ["users", "auth_methods", "groups", "role_assignments", "ca_policies", "oauth_grants",
             "service_principals", "security_defaults", "inbox_rules", "file_permissions"],
    "google": ["users", "tokens", "role_assignments", "groups", "file_permissions", "settings"],
    "slack": ["users", "apps", "settings"],
}  # fmt: skip
LEAKED = "xoxb-123456789012-123456789012-abcdefghijklmnopqrstuvwx"
CONVERSATIONS = {"m365": ["teams_messages", "mail"], "google": ["gmail"], "slack": ["messages"]}


def _snapshot_rows(db: Database) -> dict[tuple[str, str], int]:
    with db.session(readonly=True) as s:
        rows = s.exec(
            select(ConfigSnapshot.provider, ConfigSnapshot.object_type, func.count()).group_by(
                ConfigSnapshot.provider, ConfigSnapshot.object_type
            )
        ).all()
    return {(provider, kind): n for provider, kind, n in rows}


def test_snapshots_are_written_when_objects_change_and_deletions_are_recorded(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given every provider's configuration read once
    sim = past_simulator()
    sync_connections(db, connections_from_simulator(sim.info, streams=SNAPSHOT_STREAMS), source="simulator")
    first = collect_once(db, settings, options=OPTIONS)
    assert first.ok, first.failures
    counts = _snapshot_rows(db)
    expected_types = {
        ("m365", t) for t in ("user", "auth_method_registration", "group", "role_assignment", "ca_policy",
                              "oauth_grant", "service_principal", "security_defaults", "inbox_rule", "file_permission")
    } | {
        ("google", t) for t in ("user", "token", "role_assignment", "group", "file_permission", "tenant_settings")
    } | {("slack", t) for t in ("user", "app", "tenant_settings")}  # fmt: skip
    assert expected_types <= set(counts)
    # when nothing changed, then a second read writes nothing
    assert collect_once(db, settings, options=OPTIONS).ok
    assert _snapshot_rows(db) == counts
    # when an admin disables a user and revokes an OAuth grant through Graph
    with db.session(readonly=True) as s:
        m365 = s.exec(select(Connection).where(Connection.provider == "m365")).one()
        grant = s.exec(select(ConfigSnapshot).where(ConfigSnapshot.object_type == "oauth_grant")).first()
        user = s.exec(
            select(ConfigSnapshot).where(
                ConfigSnapshot.object_type == "user", ConfigSnapshot.data["accountEnabled"].as_boolean()
            )
        ).first()
    graph = m365_clients(m365, Secrets(m365.secret_refs), retry_writes=True)
    assert graph.graph.patch(
        f"{graph.graph_base_url}/users/{user.object_id}", json={"accountEnabled": False}
    ).ok
    assert graph.graph.delete(f"{graph.graph_base_url}/oauth2PermissionGrants/{grant.object_id}").ok
    # then the next read adds one row for the user and one deletion row for the grant
    assert collect_once(db, settings, options=OPTIONS, streams=["users", "oauth_grants"]).ok
    with db.session(readonly=True) as s:
        user_rows = s.exec(
            select(ConfigSnapshot).where(
                ConfigSnapshot.object_id == user.object_id, ConfigSnapshot.object_type == "user"
            )
        ).all()
        grant_rows = s.exec(select(ConfigSnapshot).where(ConfigSnapshot.object_id == grant.object_id)).all()
    assert [r.data["accountEnabled"] for r in user_rows] == [True, False]
    assert [r.deleted for r in grant_rows] == [False, True]


def _messages(db: Database) -> dict[str, list[Any]]:
    with db.session(readonly=True) as s:
        rows = s.exec(select(Message)).all()
    out: dict[str, list[Any]] = {}
    for row in rows:
        out.setdefault(f"{row.provider}:{row.stream}", []).append(row)
    return out


def test_selected_conversations_are_stored_once_and_only_redacted(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given every channel and mailbox of the tenant selected for conversation capture
    sim = past_simulator()
    sync_connections(
        db,
        connections_from_simulator(sim.info, streams=CONVERSATIONS, conversations=True),
        source="simulator",
    )
    # and someone pastes a bot token into a channel
    with db.session(readonly=True) as s:
        slack = s.exec(select(Connection).where(Connection.provider == "slack")).one()
    web = slack_web_client(slack, Secrets(slack.secret_refs))
    channel = web.conversations_list(types="public_channel")["channels"][0]["id"]
    posted = web.chat_postMessage(channel=channel, text=f"use this to test the bot: {LEAKED} thanks")
    # a pass reads up to the second it started in (whole seconds), so a message from that very
    # second is the next pass's: let the second it was posted in end before collecting
    while time.time() < float(posted["ts"]) + 1:
        time.sleep(0.05)
    # when collected twice
    assert collect_once(db, settings, options=OPTIONS).ok
    assert collect_once(db, settings, options=OPTIONS).ok
    # then each stream holds exactly the simulator's messages, with nothing left to redact
    stored = _messages(db)
    for provider, streams in CONVERSATIONS.items():
        for stream in streams:
            key = f"{provider}:{stream}"
            truth = sim.events(key, ids=True)["ids"]
            rows = stored.get(key, [])
            assert sorted(r.provider_message_id for r in rows) == sorted(set(truth)), key
            for row in rows:
                assert redact(row.text_redacted).counts == {}, (
                    f"{key} {row.provider_message_id} kept a secret"
                )
    [pasted] = [r for r in stored["slack:messages"] if "use this to test the bot" in r.text_redacted]
    assert LEAKED not in pasted.text_redacted and pasted.redactions == {"secret": 1}
    # and every Slack message keeps its channel's name, so timelines say #name, not the channel id
    names = {
        c["id"]: c["name"] for c in web.conversations_list(types="public_channel,private_channel")["channels"]
    }
    assert {(r.channel, (r.meta or {}).get("channel_name")) for r in stored["slack:messages"]} <= set(
        names.items()
    )
