"""Encryption at rest (issue 21): message texts, timeline bodies (notes, excerpts), connection config,
approval comments and the other sensitive columns are stored encrypted under a key file outside the
database; raw SQL never sees them; rotation re-encrypts every row; a missing or wrong key is one
clear error, never a new key that strands the data."""

from __future__ import annotations

import getpass
import os
import stat
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlmodel import SQLModel, select

from core.audit import Actor, Channel
from core.crypto import (
    PREFIX,
    EncryptionKeyError,
    Keyring,
    encrypted_columns,
    load_keys,
    new_key,
    reencrypt,
    scan,
    write_keys,
)
from core.db import Database
from core.models import (
    Approval,
    AuditRecord,
    Connection,
    Message,
    QuarantinedRecord,
    RemediationAction,
    Role,
    TimelineEntry,
)
from core.models.response import IncidentResponse, StakeholderUpdate
from core.settings import Settings
from remediation import approve, plan_for_incident
from tests.factories import T0, make_connection, make_incident
from tests.remediation.conftest import VICTIM
from tests.serve_process import CLI
from timeline.lifecycle import add_note

CANARY = "Kestrel-7 budget is 4.2M for Lisbon"  # a personal free text that must never be in clear
ACTOR = Actor("principal:analyst", Channel.API)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """This test's own key file (in its data directory), not the session's shared one."""
    data = tmp_path / "data"
    return Settings(data_dir=data, database_url=database_url, encryption_key_file=data / "encryption.key")


def _write_sensitive_rows(db: Database) -> int:
    """One value in every encrypted column, written through the usual paths where there is one."""
    incident = make_incident(db)
    assert incident.id is not None
    add_note(db, incident.id, f"note: {CANARY}", actor=ACTOR)
    connection = make_connection(db, config={"display_note": CANARY})
    with db.session() as session:
        session.add(
            Message(
                connection_id=connection.id,
                provider="slack",
                stream="conversations",
                provider_message_id="m-1",
                author="alice@northwind.example",
                sent_at=T0,
                subject=f"re: {CANARY}",
                text_redacted=f"the text says {CANARY}",
                meta={"recipients": [CANARY]},
            )
        )
        step = RemediationAction(
            incident_id=incident.id,
            action="m365.revoke_sessions",
            provider="m365",
            phase="contain",
            requested_by="principal:analyst",
            idempotency_key="k-1",
        )
        session.add(step)
        session.flush()
        session.add(
            Approval(action_id=step.id or 0, principal="principal:bob", decision="approve", comment=CANARY)
        )
        session.add(
            QuarantinedRecord(source="slack/conversations", reason="bad page", raw=f'{{"text": "{CANARY}"}}')
        )
        session.add(
            StakeholderUpdate(incident_id=incident.id, audience="executives", body=CANARY, author="a")
        )
        session.add(IncidentResponse(incident_id=incident.id, postmortem_markdown=f"# {CANARY}"))
    return incident.id


def _raw_cells(db: Database) -> dict[str, list[str]]:
    """Every cell of every table, read with plain SQL (no column types), as text."""
    cells: dict[str, list[str]] = {}
    names = inspect(db.engine).get_table_names()
    with db.engine.connect() as conn:
        for name in names:
            for row in conn.execute(text(f'SELECT * FROM "{name}"')):
                cells.setdefault(name, []).extend(
                    bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview) else str(v) for v in row
                )
    return cells


def test_sensitive_text_is_never_in_clear_in_the_database(db: Database, settings: Settings) -> None:
    incident_id = _write_sensitive_rows(db)
    leaked = {name: [c for c in cells if CANARY in c] for name, cells in _raw_cells(db).items()}
    assert {name: found for name, found in leaked.items() if found} == {}
    # Every encrypted column holds a value, and each is a ciphertext under the key file's key.
    ring = Keyring.load(settings.encryption_key_path, create=False)
    seen = {item.name: kid for item, kid in scan(db.engine)}
    assert set(seen) == {item.name for item in encrypted_columns()}
    assert set(seen.values()) == {ring.primary_id}
    # ... and reads back in clear through the models.
    with db.session() as session:
        message = session.exec(select(Message)).one()
        assert (message.subject, message.text_redacted, message.meta) == (
            f"re: {CANARY}",
            f"the text says {CANARY}",
            {"recipients": [CANARY]},
        )
        note = session.exec(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)).one()
        assert note.body["text"] == f"note: {CANARY}"
        assert session.exec(select(Approval)).one().comment == CANARY
        assert session.exec(select(Connection)).one().config["display_note"] == CANARY


def test_the_key_file_is_made_private_on_first_use(db: Database, settings: Settings) -> None:
    make_incident(db)
    add_note(db, 1, "first note", actor=ACTOR)
    path = settings.encryption_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(load_keys(path, create=False)) == 1


def test_a_key_file_open_to_others_is_refused(db: Database, settings: Settings) -> None:
    path = settings.encryption_key_path
    load_keys(path, create=True)
    os.chmod(path, 0o644)
    fresh = Database.from_settings(settings)
    try:
        with pytest.raises(EncryptionKeyError, match=r"open to other users \(mode 0644\).*chmod 600"):
            make_connection(fresh)
    finally:
        fresh.dispose()


def test_a_missing_key_is_refused_when_encrypted_data_exists(db: Database, settings: Settings) -> None:
    _write_sensitive_rows(db)
    settings.encryption_key_path.rename(settings.encryption_key_path.with_suffix(".moved"))
    fresh = Database.from_settings(settings)
    try:
        with (
            pytest.raises(EncryptionKeyError, match="missing and the database holds encrypted data"),
            fresh.session() as session,
        ):
            session.exec(select(Message)).all()
        assert not settings.encryption_key_path.exists()  # no new key was made to strand the data
    finally:
        fresh.dispose()


def test_a_wrong_key_is_refused_naming_the_key(db: Database, settings: Settings, tmp_path: Path) -> None:
    _write_sensitive_rows(db)
    other = tmp_path / "other.key"
    load_keys(other, create=True)
    wrong = Database.from_settings(settings.model_copy(update={"encryption_key_file": other}))
    try:
        with (
            pytest.raises(
                EncryptionKeyError, match=r"encrypted with key SHA256:[0-9a-f]{16}, which is not in"
            ),
            wrong.session() as session,
        ):
            session.exec(select(Message)).all()
    finally:
        wrong.dispose()


def test_an_altered_ciphertext_is_refused(db: Database) -> None:
    _write_sensitive_rows(db)
    with db.engine.begin() as conn:
        stored = conn.execute(text("SELECT text_redacted FROM message")).scalar_one()
        tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
        conn.execute(text("UPDATE message SET text_redacted = :v"), {"v": tampered})
    with (
        pytest.raises(EncryptionKeyError, match="does not decrypt .* the value was altered"),
        db.session() as session,
    ):
        session.exec(select(Message)).all()


def test_rotation_reencrypts_every_row_under_the_new_key(db: Database, settings: Settings) -> None:
    _write_sensitive_rows(db)
    path = settings.encryption_key_path
    old = Keyring.load(path, create=False)
    write_keys(path, [new_key(), *old.keys])
    ring = Keyring.load(path, create=False)
    # A value written in clear (before encryption existed) is encrypted by the same pass.
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE quarantinedrecord SET raw = 'legacy clear text'"))
    stored = Counter(item.name for item, _ in scan(db.engine))
    assert reencrypt(db.engine, ring) == dict(stored)  # every value, each column counted
    assert {kid for _, kid in scan(db.engine)} == {ring.primary_id}
    # The old key can go: everything reads with the new one alone.
    write_keys(path, [ring.keys[0]])
    fresh = Database.from_settings(settings)
    try:
        with fresh.session() as session:
            assert session.exec(select(Message)).one().text_redacted == f"the text says {CANARY}"
            assert session.exec(select(QuarantinedRecord)).one().raw == "legacy clear text"
    finally:
        fresh.dispose()
    assert reencrypt(db.engine, ring) == {}  # nothing left to do


def test_every_encrypted_column_is_text_in_the_schema(db: Database) -> None:
    """The regenerated migration stores ciphertext as text on both databases (no JSON operators)."""
    columns = {
        t: {c["name"]: c for c in inspect(db.engine).get_columns(t)}
        for t in {i.table for i in encrypted_columns()}
    }
    for item in encrypted_columns():
        assert "TEXT" in str(columns[item.table][item.column]["type"]).upper(), item.name
    assert SQLModel.metadata.tables["message"].c.text_redacted.type.__class__.__name__ == "EncryptedText"
    assert PREFIX == "tgenc1:"


def test_keys_rotate_from_the_cli_reencrypts_retires_and_audits(db: Database, settings: Settings) -> None:
    _write_sensitive_rows(db)
    old = Keyring.load(settings.encryption_key_path, create=False)
    env = {
        **os.environ,
        "TENANTGUARD_DATA_DIR": str(settings.data_dir),
        "TENANTGUARD_DATABASE_URL": settings.effective_database_url,
        "TENANTGUARD_LOCAL_OPERATOR": "1",
        "TENANTGUARD_ENCRYPTION_KEY_FILE": str(settings.encryption_key_path),
    }
    done = subprocess.run(
        [*CLI, "keys", "rotate", "--retire"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ring = Keyring.load(settings.encryption_key_path, create=False)
    assert len(ring.keys) == 1 and ring.primary_id != old.primary_id
    assert f"new primary key {ring.fingerprint}" in done.stdout and "old keys retired" in done.stdout
    assert {kid for _, kid in scan(db.engine)} == {ring.primary_id}
    assert old.keys[0].decode() not in done.stdout + done.stderr
    with db.session() as session:
        rotated = session.exec(
            select(AuditRecord).where(AuditRecord.action == "encryption_key.rotated")
        ).one()
        assert (rotated.actor, rotated.object_id) == (f"local:{getpass.getuser()}", ring.fingerprint)
        assert rotated.details["previous"] == [old.fingerprint] and rotated.details["retired"] is True
        assert rotated.details["reencrypted"]["message.text_redacted"] == 1
    db.keyring.reset()  # this process held the retired key: it reads the new file again
    with db.session() as session:
        assert session.exec(select(Message)).one().text_redacted == f"the text says {CANARY}"
    status = subprocess.run(
        [*CLI, "keys", "status"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert f"{ring.fingerprint}  primary (encrypts)" in status.stdout, status.stderr


def test_an_approval_comment_is_not_in_clear_anywhere(
    db: Database, ato_incident: int, make_principal
) -> None:  # type: ignore[no-untyped-def]
    """Through the real approval path: the comment is on the step's timeline (encrypted) and the
    audit chain, which is not encrypted, keeps only its length."""
    analyst = make_principal(Role.ANALYST, name="ana").actor
    make_principal(Role.APPROVER, name="bob")
    step = plan_for_incident(db, ato_incident, analyst).step("m365.remove_auth_method", VICTIM)
    approve(db, step.id, Actor("principal:bob", Channel.API), comment=f"ok: {CANARY}")
    leaked = {name: [c for c in cells if CANARY in c] for name, cells in _raw_cells(db).items()}
    assert {name: found for name, found in leaked.items() if found} == {}
    with db.session() as session:
        assert session.exec(select(Approval)).one().comment == f"ok: {CANARY}"
        approved = session.exec(select(AuditRecord).where(AuditRecord.action == "remediation.approved")).one()
        assert approved.details["comment"] == {"chars": len(f"ok: {CANARY}")}
        entries = session.exec(
            select(TimelineEntry).where(TimelineEntry.ref_type == "remediation_action")
        ).all()
        assert f"ok: {CANARY}" in [e.body.get("comment") for e in entries]
