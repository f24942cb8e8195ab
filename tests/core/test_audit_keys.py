"""The one signing key loader (core.audit_keys): made on first use readable by its owner only,
refused when others may read it or when it is not an Ed25519 key, and public keys read in every
form `audit public-key` and `audit checkpoint` print."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core.audit_keys import (
    SigningKeyError,
    TrustedKeys,
    fingerprint,
    load_signing_key,
    public_b64,
    public_pem,
    public_raw,
    read_public_key,
    sign_statement,
)
from core.settings import Settings


def test_the_key_is_made_once_with_mode_0600_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    key = load_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert public_raw(load_signing_key(path)) == public_raw(key)


def test_a_key_others_may_read_is_refused_naming_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    load_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match=r"open to other users \(mode 0644\); run `chmod 600"):
        load_signing_key(path)


def test_a_file_that_is_not_an_ed25519_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXN0dWZm\n-----END PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(SigningKeyError) as caught:
        load_signing_key(path)
    assert "not an unencrypted Ed25519 private key" in str(caught.value)
    assert "c2VjcmV0" not in str(caught.value)
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_signing_key(tmp_path / "missing.key", create=False)


def test_the_setting_names_the_key_file_and_the_default_keeps_an_older_evidence_key(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).signing_key_path == tmp_path / "signing.key"
    (tmp_path / "evidence-signing.key").write_text("old")
    assert Settings(data_dir=tmp_path).signing_key_path == tmp_path / "evidence-signing.key"
    chosen = tmp_path / "elsewhere.key"
    assert Settings(data_dir=tmp_path, signing_key_file=chosen).signing_key_path == chosen


def test_public_keys_are_read_as_pem_or_base64_and_pin_signatures(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "signing.key")
    other = load_signing_key(tmp_path / "other.key")
    assert read_public_key(public_pem(key)) == public_raw(key) == read_public_key(public_b64(key))
    with pytest.raises(SigningKeyError):
        read_public_key("not a key")
    statement = {"kind": "audit.checkpoint", "seq": 3, "hash": "ab", "at": "2026-01-01T00:00:00Z"}
    signed = sign_statement(key, statement)
    assert signed["key"] == fingerprint(public_raw(key))
    assert TrustedKeys.of([public_raw(key)]).check(statement, signed) == ""
    assert "not a trusted key" in TrustedKeys.of([public_raw(other)]).check(statement, signed)
    assert "forged or altered" in TrustedKeys().check({**statement, "seq": 4}, signed)
    assert TrustedKeys().check(statement, None) == "it is not signed"
    unpinned = TrustedKeys()
    assert unpinned.check(statement, signed) == "" and unpinned.seen == {signed["key"]}
