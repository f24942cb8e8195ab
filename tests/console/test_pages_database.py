"""The compliance, on-call and merge/split pages through the application, on SQLite and PostgreSQL.

The browser suite (test_compliance_page.py, test_oncall_and_merge.py) runs on SQLite; this drives
the same routes without a browser against the test database of `--db`, so every query and change
the new pages make is exercised on both. Given principals of each role, when they post the pages'
forms (with their session's CSRF token), then the stage functions change the rows, refuse what the
permission matrix or four eyes forbid, and write the audit record under the person's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from api.config import ApiSettings
from console.app import install_console
from core.audit import Actor, AuditAction
from core.clock import utcnow
from core.db import Database
from core.models import AuditRecord, ComplianceException, Connection, Finding, Incident, LegalHold, Role
from core.settings import Settings
from oncall.files import validate
from oncall.store import apply_document, get_schedule
from tests.factories import TEST_PEPPER, MadePrincipal

CHECK = "m365.no_anonymous_file_links"
ONCALL = {
    "responders": [{"name": "alice", "email": "a@example.com"}, {"name": "bob", "email": "b@example.com"}],
    "schedules": [
        {
            "name": "primary",
            "layers": [
                {"name": "l", "users": ["alice", "bob"], "rotation": "daily", "start": "2030-01-07T09:00:00"}
            ],
        }
    ],
}


@pytest.fixture
def app(settings: Settings, db: Database) -> FastAPI:
    made = create_app(
        settings,
        db,
        api_settings=ApiSettings(
            token_pepper=TEST_PEPPER, rate_limit_per_second=0, auth_failures_per_minute=1000
        ),
    )
    install_console(made)
    return made


@pytest.fixture
def signed_in(
    app: FastAPI, make_principal: Callable[..., MadePrincipal]
) -> Iterator[Callable[[Role, str], TestClient]]:
    """A browser-like client signed in as a new principal of `role` named `name`."""
    clients: list[TestClient] = []

    def make(role: Role, name: str) -> TestClient:
        client = TestClient(app, base_url="https://testserver", follow_redirects=False)
        client.__enter__()
        clients.append(client)
        token = make_principal(role, name=name).token
        answer = client.post("/console/login", data={"token": token, "next": "/console/incidents"})
        assert answer.status_code == 303, answer.text
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _post(client: TestClient, page: str, path: str, form: dict[str, str | list[str]]) -> tuple[int, str]:
    """Post a form the way the page does (its CSRF token); the status and where it sends the browser."""
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(page).text)
    assert match, f"no CSRF field on {page}"
    answer = client.post(path, data={"csrf": match.group(1), **form})
    return answer.status_code, answer.headers.get("location", answer.text)


def _audit(db: Database, action: AuditAction) -> list[AuditRecord]:
    with db.session(readonly=True) as session:
        return list(session.exec(select(AuditRecord).where(AuditRecord.action == action.value)).all())


def test_exceptions_are_four_eyes_and_holds_need_the_role(
    db: Database, signed_in: Callable[[Role, str], TestClient], make_connection: Callable[..., Connection]
) -> None:
    tenant = make_connection()
    officer, second = signed_in(Role.COMPLIANCE_OFFICER, "cora"), signed_in(Role.COMPLIANCE_OFFICER, "dev")
    auditor = signed_in(Role.AUDITOR, "aud")
    page = "/console/compliance/exceptions"
    expires = (utcnow() + timedelta(days=30)).date().isoformat()
    form = {"check_id": CHECK, "connection_id": str(tenant.id), "owner": "it", "expires": expires}
    status, where = _post(officer, page, page, {**form, "reason": "Compensating control in place."})
    assert status == 303 and "requested" in where
    with db.session(readonly=True) as session:
        row = session.exec(select(ComplianceException)).one()
    assert row.connection_id == tenant.id and row.requested_by == "principal:cora"
    # the requester may not approve; another officer may; an auditor may not even ask
    status, where = _post(officer, page, f"{page}/{row.id}/approve", {})
    assert status == 303 and "four+eyes" in where
    assert _post(auditor, page, page, {**form, "reason": "an auditor asking"})[0] == 403
    status, where = _post(second, page, f"{page}/{row.id}/approve", {})
    assert status == 303 and "approved" in where
    [approved] = _audit(db, AuditAction.COMPLIANCE_EXCEPTION_APPROVED)
    assert approved.actor == "principal:dev" and approved.object_id == str(row.id)
    assert 'data-testid="exception-state">active<' in second.get(page).text.replace("\n", "")
    # a bad expiry is named
    status, where = _post(officer, page, page, {**form, "reason": "Compensating control.", "expires": "soon"})
    assert status == 422
    # legal holds: placed and released by the officer, refused to the auditor
    retention = "/console/compliance/retention"
    assert (
        _post(
            auditor,
            retention,
            "/console/compliance/holds",
            {"kind": "person", "target": "x@y.z", "reason": "case 7"},
        )[0]
        == 403
    )
    status, where = _post(
        officer,
        retention,
        "/console/compliance/holds",
        {"kind": "person", "target": "Eve@Example.com", "reason": "case 7"},
    )
    assert status == 303 and "placed" in where
    with db.session(readonly=True) as session:
        hold = session.exec(select(LegalHold)).one()
    assert hold.target == "eve@example.com" and hold.placed_by == "principal:cora"
    status, where = _post(
        officer, retention, f"/console/compliance/holds/{hold.id}/release", {"reason": "settled"}
    )
    assert status == 303 and "released" in where
    assert [r.actor for r in _audit(db, AuditAction.LEGAL_HOLD_RELEASED)] == ["principal:cora"]
    # the pages read back on this database
    for path in ("/console/compliance", retention, "/console/compliance/frameworks/soc2"):
        assert auditor.get(path).status_code == 200, path


def test_an_override_from_the_board_is_stored_and_audited(
    db: Database, signed_in: Callable[[Role, str], TestClient]
) -> None:
    with db.session() as session:
        apply_document(session, validate(ONCALL, where="test"), actor=Actor.cli("principal:test"))
    admin, analyst = signed_in(Role.ADMIN, "ada"), signed_in(Role.ANALYST, "ana")
    board = "/console/oncall/primary?start=2030-01-07&days=7"
    form = {"user": "bob", "start": "2030-01-07T09:00:00+00:00", "end": "2030-01-08T00:00:00+00:00"}
    assert _post(analyst, board, "/console/oncall/primary/overrides", form)[0] == 403
    status, where = _post(admin, board, "/console/oncall/primary/overrides", {**form, "back": "2030-01-07"})
    assert status == 303 and "start=2030-01-07" in where and "override+added" in where
    with db.session(readonly=True) as session:
        [override] = get_schedule(session, "primary").overrides
    assert override.user == "bob" and override.end - override.start == timedelta(hours=15)
    assert _audit(db, AuditAction.ONCALL_DEFINITION_UPDATED)[-1].actor == "principal:ada"
    status, where = _post(admin, board, "/console/oncall/primary/overrides", {**form, "user": "mallory"})
    assert status == 303 and "unknown+responder" in where
    assert admin.get("/console/oncall/nothing").status_code == 404


def test_merge_and_split_from_the_incident_page(
    db: Database,
    signed_in: Callable[[Role, str], TestClient],
    make_incident: Callable[..., Incident],
    make_finding: Callable[..., Finding],
) -> None:
    target, source = make_incident(), make_incident()
    kept, moved = make_finding(incident_id=target.id), make_finding(incident_id=target.id)
    make_finding(incident_id=source.id)
    analyst, viewer = signed_in(Role.ANALYST, "ana"), signed_in(Role.VIEWER, "vic")
    page = f"/console/incidents/{target.id}"
    assert _post(viewer, page, f"{page}/merge", {"incident_ids": str(source.id)})[0] == 403
    status, where = _post(analyst, page, f"{page}/merge", {"incident_ids": "#x"})
    assert status == 303 and "not+an+incident+number" in where
    status, where = _post(analyst, page, f"{page}/merge", {"incident_ids": f"#{source.id}", "reason": "same"})
    assert status == 303 and "merged" in where
    with db.session(readonly=True) as session:
        merged = session.get(Incident, source.id)
        assert merged is not None and merged.merged_into_id == target.id and merged.status == "duplicate"
    status, where = _post(
        analyst, page, f"{page}/split", {"finding_id": [str(moved.id)], "reason": "unrelated"}
    )
    assert status == 303 and "split+from+incident" in where
    with db.session(readonly=True) as session:
        row, stays = session.get(Finding, moved.id), session.get(Finding, kept.id)
    assert row is not None and stays is not None and stays.incident_id == target.id
    assert where.startswith(f"/console/incidents/{row.incident_id}?") and row.incident_id != target.id
    assert [r.actor for r in _audit(db, AuditAction.INCIDENT_SPLIT)] == ["principal:ana"]
    status, where = _post(analyst, page, f"{page}/split", {"reason": "nothing ticked"})
    assert status == 303 and "tick+the+findings" in where
