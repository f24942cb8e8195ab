"""Connections come from a TOML or YAML file (or the API) with secrets by reference only; every
change is audited, a removed file entry is disabled, and a pasted secret is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from collectors.connections import load_connections_file, sync_connections_file
from core.audit import verify_database
from core.db import Database
from core.models import AuditRecord, Connection
from providers.credentials import Secrets
from providers.errors import ConnectionConfigError, SecretUnavailable

TOML = """
[[connections]]
name = "contoso"
provider = "m365"
tenant = "11111111-2222-3333-4444-555555555555"
streams = ["signins", "directory_audits"]
[connections.config]
client_id = "app-id"
[connections.secrets]
client_secret = "env:CONTOSO_SECRET"
[connections.intervals]
signins = 120

[[connections]]
name = "acme-slack"
provider = "slack"
tenant = "E123"
[connections.secrets]
audit_token = "file:/run/secrets/slack-audit"
"""


def test_a_toml_file_creates_connections_with_references_and_audits_it(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "connections.toml"
    path.write_text(TOML)
    assert sync_connections_file(db, path) == {"contoso": "created", "acme-slack": "created"}
    assert sync_connections_file(db, path) == {"contoso": "unchanged", "acme-slack": "unchanged"}
    with db.session(readonly=True) as s:
        contoso = s.exec(select(Connection).where(Connection.name == "contoso")).one()
        actions = s.exec(select(AuditRecord.action)).all()
        assert verify_database(s).ok
    assert contoso.secret_refs == {"client_secret": "env:CONTOSO_SECRET"}
    assert contoso.config["streams"] == ["signins", "directory_audits"]
    assert contoso.config["intervals"] == {"signins": 120}
    assert actions == ["connection.created", "connection.created"]


def test_a_connection_removed_from_the_file_is_disabled(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(
        "connections:\n"
        "  - {name: a, provider: slack, tenant: E1, secrets: {audit_token: 'env:A'}}\n"
        "  - {name: b, provider: slack, tenant: E2, secrets: {audit_token: 'env:B'}}\n"
    )
    sync_connections_file(db, path)
    path.write_text(
        "connections:\n  - {name: a, provider: slack, tenant: E1, secrets: {audit_token: 'env:A'}}\n"
    )
    assert sync_connections_file(db, path) == {"a": "unchanged", "b": "disabled"}
    with db.session(readonly=True) as s:
        assert s.exec(select(Connection.enabled).where(Connection.name == "b")).one() is False
        assert (
            s.exec(select(AuditRecord.action).order_by(AuditRecord.seq.desc())).first()
            == "connection.disabled"
        )


@pytest.mark.parametrize(
    ("secrets", "says"),
    [
        ('client_secret = "s3cr3t-value"', "reference like 'env:VARIABLE'"),
        ('client_secret = "vault:kv/x"', "unknown reference scheme"),
    ],
)
def test_a_secret_pasted_into_the_file_is_refused(tmp_path: Path, secrets: str, says: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        f'[[connections]]\nname="x"\nprovider="m365"\ntenant="t"\n[connections.config]\nclient_id="a"\n'
        f"[connections.secrets]\n{secrets}\n"
    )
    with pytest.raises(ConnectionConfigError, match=says):
        load_connections_file(path)


def test_an_unknown_stream_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[connections]]\nname="x"\nprovider="slack"\ntenant="t"\nstreams=["audits"]\n'
        '[connections.secrets]\naudit_token="env:T"\n'
    )
    with pytest.raises(ConnectionConfigError, match="unknown stream 'audits'.*audit"):
        load_connections_file(path)


def test_secret_references_resolve_at_use_and_never_show_their_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "token"
    key.write_text("xoxp-file-secret\n")
    monkeypatch.setenv("TG_TEST_TOKEN", "xoxb-env-secret")
    secrets = Secrets(
        {"bot_token": "env:TG_TEST_TOKEN", "audit_token": f"file:{key}", "gone": "env:TG_UNSET_VAR"}
    )
    assert secrets["bot_token"] == "xoxb-env-secret"
    assert secrets["audit_token"] == "xoxp-file-secret"
    assert "secret" not in repr(secrets).replace("Secrets", "")
    with pytest.raises(SecretUnavailable, match="TG_UNSET_VAR is not set"):
        secrets["gone"]
    assert list(secrets.missing()) == ["gone"]
