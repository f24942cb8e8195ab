"""The CLI's four eyes no longer run on trust (issue 21), through the real `tenantguard` process.

Before: one shell user ran ``plan 17 --as principal:alice`` then ``actions approve 2 --as bob`` with
no token, and the audit chain said ``principal:bob via cli``. Now a remediation command acts as the
person its credential proves (an API token from TENANTGUARD_TOKEN, --token-file or `tenantguard
login`), or explicitly as the local operator, who is recorded as such and never approves.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select

from core.models import ActionStatus, Approval, AuditRecord, RemediationAction, Role
from tests.cli_process import run_cli
from tests.factories import TEST_PEPPER, MadePrincipal
from tests.security.conftest import Served

STEP = "m365.remove_auth_method"
CLI = [sys.executable, "-c", "from cli.main import run; run()"]


@pytest.fixture
def tenantguard(
    settings, database_url: str, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:  # type: ignore[no-untyped-def]
    """tenantguard(*args, token=None, stdin=None, **env) -> the finished CLI process on this test's database."""
    base = dict(
        os.environ,
        TENANTGUARD_DATA_DIR=str(settings.data_dir),
        TENANTGUARD_DATABASE_URL=database_url,
        TENANTGUARD_API_TOKEN_PEPPER=TEST_PEPPER,
        TENANTGUARD_CREDENTIALS_FILE=str(tmp_path / "home" / "credentials"),
        COLUMNS="200",
    )

    def run(
        *args: str, token: str | None = None, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = {**base, **env}
        if token is not None:
            environment["TENANTGUARD_TOKEN"] = token
        return run_cli(args, env=environment, input=stdin)

    return run


def _rows(db, model, **where):  # type: ignore[no-untyped-def]
    with db.session() as s:
        query = select(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return list(s.exec(query).all())


def _step_id(db) -> int:  # type: ignore[no-untyped-def]
    [row] = _rows(db, RemediationAction, action=STEP)
    return row.id


def test_a_name_after_as_without_credentials_is_refused_and_nothing_changes(
    db,
    ato_incident,
    tenantguard,
    make_principal: Callable[..., MadePrincipal],
):
    make_principal(Role.ANALYST, name="alice")
    make_principal(Role.APPROVER, name="bob")

    plan = tenantguard("plan", str(ato_incident), "--as", "principal:alice")
    bare = tenantguard("plan", str(ato_incident))

    assert plan.returncode == 1 and "without credentials" in plan.stderr, plan.stdout + plan.stderr
    assert bare.returncode == 1 and "tenantguard login" in bare.stderr
    assert _rows(db, RemediationAction) == []


def test_the_review_attack_one_shell_user_as_two_principals_is_refused(
    db,
    ato_incident,
    tenantguard,
    make_principal: Callable[..., MadePrincipal],
):
    alice = make_principal(Role.APPROVER, name="alice")
    make_principal(Role.APPROVER, name="bob")
    planned = tenantguard("plan", str(ato_incident), "--as", "principal:alice", token=alice.token)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    step = _step_id(db)

    # alice's token cannot claim to be bob, and without a token "--as bob" is nobody
    as_bob = tenantguard("actions", "approve", str(step), "--as", "bob", token=alice.token)
    untrusted = tenantguard("actions", "approve", str(step), "--as", "bob")
    own = tenantguard("actions", "approve", str(step), token=alice.token)

    assert as_bob.returncode == 1 and "not who the credential proves" in as_bob.stderr
    assert untrusted.returncode == 1 and "without credentials" in untrusted.stderr
    assert own.returncode == 1 and "cannot approve" in own.stderr
    assert _rows(db, Approval) == []
    [row] = _rows(db, RemediationAction, id=step)
    assert (row.requested_by, row.status) == ("principal:alice", ActionStatus.PROPOSED)


def test_a_disabled_principals_token_is_refused(
    db,
    ato_incident,
    tenantguard,
    make_principal: Callable[..., MadePrincipal],
):
    old = make_principal(Role.APPROVER, name="old", disabled=True)

    refused = tenantguard("plan", str(ato_incident), token=old.token)
    forged = tenantguard("plan", str(ato_incident), token="tg_0123abcd_" + "A" * 43)

    assert refused.returncode == 1 and "disabled" in refused.stderr
    assert forged.returncode == 1 and "not valid" in forged.stderr
    assert _rows(db, RemediationAction) == []


def test_the_local_operator_is_recorded_as_such_and_never_approves(
    db,
    ato_incident,
    tenantguard,
    make_principal: Callable[..., MadePrincipal],
):
    planned = tenantguard("plan", str(ato_incident), "--local-operator")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    step = _step_id(db)
    [row] = _rows(db, RemediationAction, id=step)
    assert row.requested_by.startswith("local:")
    [proposed] = [
        r for r in _rows(db, AuditRecord, action="remediation.proposed") if r.object_id == str(step)
    ]
    assert proposed.actor == row.requested_by and proposed.details["via"] == "cli"

    approved = tenantguard("actions", "approve", str(step), TENANTGUARD_LOCAL_OPERATOR="1")
    claimed = tenantguard("plan", str(ato_incident), "--local-operator", "--as", "principal:alice")

    assert approved.returncode == 1 and "never counts as an approver" in approved.stderr
    assert claimed.returncode == 1 and "cannot be combined" in claimed.stderr
    assert _rows(db, Approval) == []


def test_login_stores_the_token_for_the_user_and_execute_records_who_ran_it(
    db,
    ato_incident,
    tenantguard,
    tmp_path: Path,
    make_principal: Callable[..., MadePrincipal],
):
    alice = make_principal(Role.ANALYST, name="alice")
    bob = make_principal(Role.APPROVER, name="bob")
    assert tenantguard("plan", str(ato_incident), token=alice.token).returncode == 0
    step = _step_id(db)

    logged_in = tenantguard("login", stdin=bob.token + "\n")
    assert logged_in.returncode == 0, logged_in.stdout + logged_in.stderr
    stored = tmp_path / "home" / "credentials"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and bob.token in stored.read_text()
    assert tenantguard("whoami").stdout.strip() == "principal:bob"

    approved = tenantguard("actions", "approve", str(step), "--comment", "checked with alice")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "approved by principal:bob" in approved.stdout
    [approval] = _rows(db, Approval)
    assert (approval.principal, approval.person, approval.via) == ("principal:bob", "bob", "cli")
    [record] = _rows(db, AuditRecord, action="remediation.approved")
    assert (record.actor, record.details["via"]) == ("principal:bob", "cli")

    # executing records the person who ran it (no connection here: the step cannot run, and says so)
    executed = tenantguard("actions", "execute", "--action", str(step))
    ran = [r for r in _rows(db, AuditRecord, object_id=str(step)) if r.action == "remediation.not_run"]
    assert [(r.actor, r.details["via"]) for r in ran] == [("principal:bob", "cli")], (
        executed.stdout + executed.stderr
    )
    unauthenticated = tenantguard(
        "actions", "execute", "--action", str(step), TENANTGUARD_CREDENTIALS_FILE="/nonexistent/x"
    )
    assert unauthenticated.returncode == 1 and "tenantguard login" in unauthenticated.stderr

    assert tenantguard("logout").returncode == 0 and not stored.exists()


def test_a_stale_fingerprint_on_the_command_line_is_refused(
    db,
    ato_incident,
    tenantguard,
    make_principal: Callable[..., MadePrincipal],
):
    alice = make_principal(Role.ANALYST, name="alice")
    bob = make_principal(Role.APPROVER, name="bob")
    assert tenantguard("plan", str(ato_incident), token=alice.token).returncode == 0
    step = _step_id(db)

    stale = tenantguard("actions", "approve", str(step), "--fingerprint", "0" * 16, token=bob.token)
    malformed = tenantguard("actions", "approve", str(step), "--fingerprint", "nothex", token=bob.token)

    assert stale.returncode == 1 and "not the version you saw" in stale.stderr
    assert malformed.returncode == 2 and "--fingerprint" in malformed.stderr
    assert _rows(db, Approval) == []


def test_with_a_real_server_the_persons_of_the_cli_and_the_api_are_the_same(
    db,
    ato_incident,
    tenantguard,
    serve: Callable[..., Served],
):
    """End to end: principals made by the CLI (the local operator bootstraps), a plan asked through the
    real `tenantguard serve`, a second principal of the same person refused at the CLI, the step's
    version checked by the API."""
    made = {}
    for name, role, person in [("alice", "approver", "alice@northwind.example"), ("bob", "approver", None)]:
        created = tenantguard(
            "principals", "create", name, "--role", role, *(["--person", person] if person else [])
        )
        assert created.returncode == 0, created.stdout + created.stderr
        made[name] = created.stdout.strip().splitlines()[-1]
    alt = tenantguard(
        "principals", "create", "alice-alt", "--role", "approver", "--person", "alice@northwind.example"
    )
    made["alice-alt"] = alt.stdout.strip().splitlines()[-1]
    [created_record, *_] = _rows(db, AuditRecord, action="principal.created")
    assert created_record.actor.startswith("local:")

    server = serve()
    with server.client(made["alice"]) as api:
        plan = api.post(f"/incidents/{ato_incident}/plan")
        assert plan.status_code == 200, plan.text
        step = next(s for s in plan.json()["steps"] if s["action"] == STEP)

    refused = tenantguard("actions", "approve", str(step["id"]), token=made["alice-alt"])
    assert refused.returncode == 1 and "alice@northwind.example" in refused.stderr
    with server.client(made["bob"]) as api:
        stale = api.post(f"/actions/{step['id']}/approve", json={"fingerprint": "f" * 16})
        good = api.post(f"/actions/{step['id']}/approve", json={"fingerprint": step["fingerprint"][:16]})
    assert stale.status_code == 409 and stale.json()["code"] == "stale_step"
    assert good.status_code == 200 and good.json()["approved_by"] == ["principal:bob"], good.text
