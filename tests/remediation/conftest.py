"""Remediation fixtures: the default playbooks and policy, principals per role, accounts, an
account-takeover incident and simulator connections (row factories are tests/factories.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from core.audit import Actor
from core.db import Database
from core.models import Account, Finding, Incident
from remediation.config import DEFAULT_POLICY_FILE
from remediation.playbooks import DEFAULT_DIR, load_playbooks
from remediation.policy import ApprovalPolicy, load_policy
from tests.factories import T0, MadePrincipal

VICTIM = "alice@northwind.example"


@pytest.fixture(scope="session")
def playbooks() -> list[Any]:
    return load_playbooks(DEFAULT_DIR)


@pytest.fixture(scope="session")
def policy() -> ApprovalPolicy:
    return load_policy(DEFAULT_POLICY_FILE)


@pytest.fixture
def analyst(make_principal: Callable[..., MadePrincipal]) -> Actor:
    return make_principal("analyst", name="ana").actor


@pytest.fixture
def approver(make_principal: Callable[..., MadePrincipal]) -> Actor:
    return make_principal("approver", name="bob", slack_user_id="U0BOB").actor


@pytest.fixture
def second_approver(make_principal: Callable[..., MadePrincipal]) -> Actor:
    return make_principal("approver", name="carol", slack_user_id="U0CAROL").actor


@pytest.fixture
def make_account(db: Database) -> Callable[..., None]:
    def make(
        email: str, provider: str = "m365", is_admin: bool = False, provider_user_id: str | None = None
    ) -> None:
        with db.session() as s:
            s.add(
                Account(
                    provider=provider,
                    provider_user_id=provider_user_id or email,
                    email=email,
                    is_admin=is_admin,
                )
            )

    return make


@pytest.fixture
def ato_incident(make_incident: Callable[..., Incident], make_finding: Callable[..., Finding]) -> int:
    """An M365 account takeover: risky sign-in, MFA method added, inbox forwarding rule, OAuth consent."""
    incident = make_incident("Account takeover of alice").id
    for rule_id, mitre, kind, minutes, apps in [
        ("m365_signin_from_new_country", "attack.t1078.004", "anomaly", 0, ()),
        ("m365_mfa_method_registered", "attack.t1098.005", "detection", 5, ()),
        ("m365_inbox_forwarding_rule", "attack.t1114.003", "detection", 9, ()),
        ("m365_oauth_consent_risky_app", "attack.t1528", "detection", 12, ("Mail Sync Pro",)),
    ]:
        make_finding(
            rule_id.replace("_", " "),
            rule_id=rule_id,
            incident_id=incident,
            people=[VICTIM],
            apps=apps,
            mitre=[mitre],
            kind=kind,
            first_seen=T0 + timedelta(minutes=minutes),
        )
    return incident


@pytest.fixture
def connect(db: Database, monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, int]]:
    """Store one Connection per provider pointing at a running simulator (secrets by env reference)."""
    from core.models import Connection

    def make(sim: Any) -> dict[str, int]:
        info = sim.info
        port = info["admin_url"].rsplit(":", 1)[1].split("/")[0]
        env = {
            f"TG_TEST_M365_SECRET_{port}": info["m365.client_secret"],
            f"TG_TEST_SLACK_BOT_{port}": info["slack.bot_token"],
            f"TG_TEST_SLACK_ADMIN_{port}": info["slack.admin_token"],
            f"TG_TEST_SLACK_USER_{port}": info["slack.user_token"],
            f"TG_TEST_SLACK_AUDIT_{port}": info["slack.audit_token"],
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        rows = [
            Connection(
                name=f"m365-{port}",
                provider="m365",
                tenant=info["m365.tenant_id"],
                config={
                    "authority": info["m365.authority"],
                    "client_id": info["m365.client_id"],
                    "graph_base_url": info["m365.graph_base_url"],
                    "ca_bundle": info["m365.ca_bundle"],
                },
                secret_refs={"client_secret": f"env:TG_TEST_M365_SECRET_{port}"},
            ),
            Connection(
                name=f"google-{port}",
                provider="google",
                tenant=info["google.customer_id"],
                config={
                    "api_endpoint": info["google.api_endpoint"],
                    "subject": info["google.subject"],
                    "customer_id": info["google.customer_id"],
                },
                secret_refs={"service_account": f"file:{info['google.service_account_file']}"},
            ),
            Connection(
                name=f"slack-{port}",
                provider="slack",
                tenant=info["slack.team_id"],
                config={
                    "base_url": info["slack.base_url"],
                    "audit_base_url": info["slack.audit_base_url"],
                    "team_id": info["slack.team_id"],
                },
                secret_refs={
                    "bot_token": f"env:TG_TEST_SLACK_BOT_{port}",
                    "admin_token": f"env:TG_TEST_SLACK_ADMIN_{port}",
                    "user_token": f"env:TG_TEST_SLACK_USER_{port}",
                    "audit_token": f"env:TG_TEST_SLACK_AUDIT_{port}",
                },
            ),
        ]
        with db.session() as s:
            for row in rows:
                s.add(row)
            s.flush()
            return {row.provider: row.id or 0 for row in rows}

    return make
