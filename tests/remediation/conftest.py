"""Factories that write incidents, findings, principals and accounts straight to the database
(the storage boundary the timeline and API helpers write through), so scenarios read like sentences."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.audit import Actor, Channel
from core.db import Database
from core.models import Account, ApiPrincipal, Finding, Incident
from remediation.config import DEFAULT_POLICY_FILE
from remediation.playbooks import DEFAULT_DIR, load_playbooks
from remediation.policy import ApprovalPolicy, load_policy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VICTIM = "alice@northwind.example"


@pytest.fixture(scope="session")
def playbooks() -> list[Any]:
    return load_playbooks(DEFAULT_DIR)


@pytest.fixture(scope="session")
def policy() -> ApprovalPolicy:
    return load_policy(DEFAULT_POLICY_FILE)


@pytest.fixture
def make_principal(db: Database) -> Callable[..., Actor]:
    def make(
        name: str, role: str = "approver", slack_user_id: str | None = None, disabled: bool = False
    ) -> Actor:
        with db.session() as s:
            s.add(
                ApiPrincipal(
                    name=name,
                    role=role,
                    token_hash=secrets.token_hex(32),
                    token_prefix=f"tg_{secrets.token_hex(4)}",
                    slack_user_id=slack_user_id,
                    disabled=disabled,
                )
            )
        return Actor(f"principal:{name}", Channel.API)

    return make


@pytest.fixture
def analyst(make_principal: Callable[..., Actor]) -> Actor:
    return make_principal("ana", "analyst")


@pytest.fixture
def approver(make_principal: Callable[..., Actor]) -> Actor:
    return make_principal("bob", "approver", slack_user_id="U0BOB")


@pytest.fixture
def second_approver(make_principal: Callable[..., Actor]) -> Actor:
    return make_principal("carol", "approver", slack_user_id="U0CAROL")


@pytest.fixture
def make_incident(db: Database) -> Callable[..., int]:
    def make(
        priority: str = "P1", first_seen: datetime = T0, title: str = "Account takeover of alice"
    ) -> int:
        with db.session() as s:
            incident = Incident(
                title=title,
                priority=priority,
                severity="high",
                first_seen=first_seen,
                last_seen=first_seen + timedelta(hours=1),
            )
            s.add(incident)
            s.flush()
            return incident.id or 0

    return make


@pytest.fixture
def make_finding(db: Database) -> Callable[..., int]:
    def make(
        incident_id: int,
        rule_id: str,
        *,
        provider: str = "m365",
        people: tuple[str, ...] = (VICTIM,),
        apps: tuple[str, ...] = (),
        files: tuple[str, ...] = (),
        accounts: tuple[str, ...] = (),
        mitre: tuple[str, ...] = (),
        kind: str = "detection",
        severity: str = "high",
        context: dict[str, Any] | None = None,
        at: datetime = T0,
    ) -> int:
        with db.session() as s:
            finding = Finding(
                rule_id=rule_id,
                kind=kind,
                severity=severity,
                title=rule_id.replace("_", " "),
                provider=provider,
                entities={
                    "people": list(people),
                    "apps": list(apps),
                    "files": list(files),
                    "accounts": list(accounts),
                    "ips": [],
                },
                mitre=list(mitre),
                context=context or {},
                first_seen=at,
                last_seen=at,
                dedup_key=f"{rule_id}:{incident_id}:{at.isoformat()}:{secrets.token_hex(3)}",
                incident_id=incident_id,
            )
            s.add(finding)
            s.flush()
            return finding.id or 0

    return make


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
def ato_incident(make_incident: Callable[..., int], make_finding: Callable[..., int]) -> int:
    """An M365 account takeover: risky sign-in, MFA method added, inbox forwarding rule, OAuth consent."""
    incident = make_incident()
    make_finding(incident, "m365_signin_from_new_country", mitre=("attack.t1078.004",), kind="anomaly")
    make_finding(
        incident, "m365_mfa_method_registered", mitre=("attack.t1098.005",), at=T0 + timedelta(minutes=5)
    )
    make_finding(
        incident, "m365_inbox_forwarding_rule", mitre=("attack.t1114.003",), at=T0 + timedelta(minutes=9)
    )
    make_finding(
        incident,
        "m365_oauth_consent_risky_app",
        mitre=("attack.t1528",),
        apps=("Mail Sync Pro",),
        at=T0 + timedelta(minutes=12),
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
