"""Connections over HTTP: health per stream, audited changes, secrets only by reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from core.clock import utcnow
from core.db import Database
from core.models import AuditRecord, Checkpoint
from core.models.connection import CollectionRun


def test_health_last_run_and_errors_per_stream(
    client: TestClient,
    as_role: Callable[[str], dict[str, str]],
    make_connection: Callable[..., Any],
    db: Database,
) -> None:
    # Given a connection whose sign-in stream failed on its last run
    connection = make_connection(health="unhealthy", health_reason="signins: 401 invalid_client")
    with db.session() as session:
        session.add(
            Checkpoint(
                connection_id=connection.id,
                stream="signins",
                health="unhealthy",
                health_reason="401 invalid_client",
            )
        )
        session.add(CollectionRun(connection_id=connection.id, stream="signins", worker="w1", status="ok"))
        session.add(
            CollectionRun(
                connection_id=connection.id,
                stream="signins",
                worker="w1",
                status="failed",
                error="401 invalid_client",
                finished_at=utcnow(),
            )
        )
    # When a viewer looks at it
    body = client.get(f"/connections/{connection.id}", headers=as_role("viewer")).json()
    # Then the stream's health and its latest run's error are there
    assert body["health"] == "unhealthy"
    [stream] = body["streams"]
    assert stream["stream"] == "signins" and stream["health_reason"] == "401 invalid_client"
    assert stream["last_run"]["status"] == "failed" and stream["last_run"]["error"] == "401 invalid_client"
    assert [c["name"] for c in client.get("/connections", headers=as_role("viewer")).json()] == [
        connection.name
    ]


def test_admin_changes_are_audited_with_before_after_and_request_id(
    client: TestClient, as_role: Callable[[str], dict[str, str]], db: Database
) -> None:
    created = client.post(
        "/connections",
        headers={**as_role("admin"), "X-Request-ID": "req-create-1"},
        json={
            "name": "acme-google",
            "provider": "google",
            "tenant": "acme.com",
            "config": {"subject": "admin@acme.com"},
            "secret_refs": {"service_account": "env:TENANTGUARD_SECRET_ACME_SA"},
        },
    )
    assert created.status_code == 201, created.text
    connection_id = created.json()["id"]
    updated = client.patch(
        f"/connections/{connection_id}",
        headers={**as_role("admin"), "X-Request-ID": "req-off"},
        json={"enabled": False},
    )
    assert updated.status_code == 200 and updated.json()["enabled"] is False
    with db.session(readonly=True) as session:
        records = session.exec(select(AuditRecord).where(AuditRecord.object_type == "connection")).all()
    # One record per change, written by the collectors' stage with principal, request id, before/after
    assert [r.action for r in records] == ["connection.created", "connection.updated"]
    create, update = records
    assert create.actor == "principal:the-admin" and create.details["via"] == "api"
    assert create.details["request_id"] == "req-create-1"
    assert create.details["before"] is None and create.details["after"]["tenant"] == "acme.com"
    assert update.actor == "principal:the-admin" and update.details["request_id"] == "req-off"
    assert update.details["before"] == {"enabled": True} and update.details["after"] == {"enabled": False}


def test_inline_secrets_are_refused(client: TestClient, as_role: Callable[[str], dict[str, str]]) -> None:
    for body in (
        {"name": "x1", "provider": "slack", "tenant": "T1", "config": {"bot_token": "xoxb-123"}},
        {"name": "x2", "provider": "slack", "tenant": "T1", "secret_refs": {"bot_token": "xoxb-123"}},
    ):
        response = client.post("/connections", headers=as_role("admin"), json=body)
        assert response.status_code == 422
        assert "xoxb-123" not in response.text


def test_connections_from_the_file_are_changed_in_the_file(
    client: TestClient, as_role: Callable[[str], dict[str, str]], make_connection: Callable[..., Any]
) -> None:
    connection = make_connection(source="file")
    response = client.patch(
        f"/connections/{connection.id}", headers=as_role("admin"), json={"enabled": False}
    )
    assert response.status_code == 409 and "connections file" in response.json()["detail"]


def test_null_for_a_required_field_is_invalid(
    client: TestClient, as_role: Callable[[str], dict[str, str]], make_connection: Callable[..., Any]
) -> None:
    connection = make_connection()
    response = client.patch(f"/connections/{connection.id}", headers=as_role("admin"), json={"tenant": None})
    assert response.status_code == 422
