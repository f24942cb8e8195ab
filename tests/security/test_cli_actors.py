"""The CLI's other actor options no longer take names on trust (issue 21), through the real process.

Before: `incidents note 1 ... --as principal:erin`, `compliance exceptions approve 1 --actor bob`,
`privacy approve 1 --actor olga` or `compliance holds place ... --actor olga` recorded whatever name
was typed. Now every CLI mutation acts as the person its credential proves (holding the command's
permission in the matrix), or, with no credential and no name claimed, as the local operator
``local:<os user>``, recorded as such and never an approver.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select

from core.models import AuditRecord, ComplianceException, Role
from tests.cli_process import run_cli
from tests.factories import TEST_PEPPER, make_incident

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def tenantguard(settings, database_url: str, tmp_path: Path) -> Run:  # type: ignore[no-untyped-def]
    base = dict(
        os.environ,
        TENANTGUARD_DATA_DIR=str(settings.data_dir),
        TENANTGUARD_DATABASE_URL=database_url,
        TENANTGUARD_API_TOKEN_PEPPER=TEST_PEPPER,
        TENANTGUARD_CREDENTIALS_FILE=str(tmp_path / "home" / "credentials"),
        COLUMNS="200",
    )

    def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(base, TENANTGUARD_TOKEN=token) if token else base
        return run_cli(args, env=env)

    return run


def _actors(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return [r.actor for r in session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()]


CLAIMS = {
    "note": ["incidents", "note", "1", "contained", "--as", "principal:erin"],
    "change window": [
        "incidents", "changes", "declare", "CHG-1", "--actor", "erin@northwind.example",
        "--start", "2026-12-01T14:00:00Z", "--end", "2026-12-01T15:00:00Z", "--as", "principal:lead",
    ],
    "exception approval": ["compliance", "exceptions", "approve", "1", "--actor", "bob"],
    "legal hold": ["compliance", "holds", "place", "--incident", "1", "--reason", "case 9", "--actor", "olga"],
    "erasure approval": ["privacy", "approve", "1", "--actor", "olga"],
    "data export": ["privacy", "export", "--person", "alice@northwind.example", "--actor", "olga"],
}  # fmt: skip


@pytest.mark.parametrize("claim", list(CLAIMS), ids=list(CLAIMS))
def test_a_name_typed_without_credentials_is_refused(db, tenantguard: Run, claim: str) -> None:  # type: ignore[no-untyped-def]
    make_incident(db)
    before = _actors(db)
    done = tenantguard(*CLAIMS[claim])
    assert done.returncode == 1, done.stdout + done.stderr
    assert "was given without credentials" in done.stderr and "tenantguard login" in done.stderr
    assert "Traceback" not in done.stderr
    assert _actors(db) == before  # nothing was recorded under the typed name


def test_a_token_acts_as_its_person_with_the_matrix_permission(db, tenantguard: Run, make_principal) -> None:  # type: ignore[no-untyped-def]
    make_incident(db)
    viewer = make_principal(Role.VIEWER, name="vic").token
    erin = make_principal(Role.ANALYST, name="erin").token
    refused = tenantguard("incidents", "note", "1", "looked at it", token=viewer)
    assert (
        refused.returncode == 1
        and "principal:vic has role viewer; incidents:write needs one of" in refused.stderr
    )
    other = tenantguard("incidents", "note", "1", "looked at it", "--as", "principal:lead", token=erin)
    assert other.returncode == 1 and "is not who the credential proves (principal:erin)" in other.stderr
    done = tenantguard("incidents", "note", "1", "sessions revoked", "--as", "erin", token=erin)
    assert done.returncode == 0, done.stderr
    with db.session() as session:
        noted = session.exec(select(AuditRecord).where(AuditRecord.action == "incident.note_added")).one()
    assert (noted.actor, noted.details.get("via")) == ("principal:erin", "cli")


def test_the_local_operator_is_recorded_as_such_and_never_approves(
    db, tenantguard: Run, make_principal
) -> None:  # type: ignore[no-untyped-def]
    make_incident(db)
    local = f"local:{getpass.getuser()}"
    done = tenantguard("incidents", "note", "1", "paged the on-call")
    assert done.returncode == 0, done.stderr
    assert _actors(db)[-1] == local
    alice = make_principal(Role.COMPLIANCE_OFFICER, name="alice").token
    asked = tenantguard(
        "compliance", "exceptions", "request", "slack.sso_required", "--owner", "it@example.com",
        "--reason", "contractors move to SSO in March", "--days", "30", token=alice,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    for approval in (["compliance", "exceptions", "approve", "1"], ["privacy", "approve", "1"]):
        refused = tenantguard(*approval)
        assert refused.returncode == 1 and "the local operator never approves" in refused.stderr, (
            refused.stderr
        )
    with db.session() as session:
        assert session.exec(select(ComplianceException)).one().approved_by is None
    # A compliance officer's own token still cannot approve their own request (four eyes), and an
    # analyst's cannot approve at all (the matrix).
    assert "four eyes" in tenantguard("compliance", "exceptions", "approve", "1", token=alice).stderr
    analyst = make_principal(Role.ANALYST, name="ana").token
    assert (
        "compliance:approve needs one of"
        in tenantguard("compliance", "exceptions", "approve", "1", token=analyst).stderr
    )
    bob = make_principal(Role.COMPLIANCE_OFFICER, name="bob").token
    assert tenantguard("compliance", "exceptions", "approve", "1", token=bob).returncode == 0
    with db.session() as session:
        assert session.exec(select(ComplianceException)).one().approved_by == "principal:bob"
