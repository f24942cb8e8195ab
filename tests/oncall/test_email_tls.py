"""E-mail pages over SMTP with STARTTLS, against the simulator's SMTP server (simulator/mail.py,
aiosmtpd) requiring it, with a certificate of our own: the server's certificate is verified (a
private CA through `ca_file`), the password crosses only inside TLS, and a server whose
certificate we cannot verify gets no page (the outbox retries)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import select

from core.models.oncall import Page
from oncall import deliver_pages, escalate_due, start_escalations
from oncall.errors import OncallInputError
from oncall.files import validate
from simulator.mail import MailServer, running
from tests.oncall.conftest import OPENED_BEFORE_T0, T0, Mailbox


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenantguard test smtp")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_smtp(tmp_path: Path) -> Iterator[tuple[int, MailServer, Path]]:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with running(
        tls_context=context, smtp_user="tenantguard", smtp_password="s3cret-mail", require_starttls=True
    ) as mail:
        yield mail.smtp_port, mail, cert


def _document(port: int, ca_file: str | None) -> dict[str, Any]:
    return {
        "responders": [{"name": "bob", "email": "bob@example.com", "notify": ["email"]}],
        "policies": [{"name": "p", "steps": [{"targets": [{"type": "responder", "name": "bob"}]}]}],
        "routes": [{"name": "all", "policy": "p", "priorities": ["P1"]}],
        "channels": {
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "starttls": True,
                "ca_file": ca_file,
                "username": "tenantguard",
                "password_ref": "env:TG_TEST_SMTP_PASSWORD",
            }
        },
    }


def _page(db, settings, make_incident) -> None:
    make_incident(**OPENED_BEFORE_T0)
    with db.session() as session:
        start_escalations(session, settings, now=T0)
    escalate_due(db, settings, T0)


def test_an_email_page_goes_over_verified_tls_with_the_password_inside_it(
    db, settings, configure, make_incident, tls_smtp, monkeypatch
):
    port, mail, cert = tls_smtp
    monkeypatch.setenv("TG_TEST_SMTP_PASSWORD", "s3cret-mail")
    configure(_document(port, str(cert)))
    _page(db, settings, make_incident)

    report = deliver_pages(db, settings, T0)

    assert len(report.sent) == 1 and not report.failed, report
    [page] = Mailbox(mail).messages
    assert page["To"] == "bob@example.com" and "/oncall/ack/" in page.get_payload()
    # who logged in, whether the session was encrypted then, whether it was accepted
    assert mail.auth_attempts == [("tenantguard", True, True)]
    assert [(d.login, d.tls) for d in mail.delivered()] == [("tenantguard", True)]


def test_a_server_whose_certificate_does_not_verify_gets_no_page(
    db, settings, configure, make_incident, tls_smtp, monkeypatch
):
    port, mail, _ = tls_smtp
    monkeypatch.setenv("TG_TEST_SMTP_PASSWORD", "s3cret-mail")
    configure(_document(port, None))  # the system's CAs do not know our self-signed certificate
    _page(db, settings, make_incident)

    report = deliver_pages(db, settings, T0)

    assert report.sent == [] and "CERTIFICATE_VERIFY_FAILED" in next(iter(report.failed.values()))
    assert mail.delivered() == [] and mail.auth_attempts == []
    with db.session(readonly=True) as session:
        page = session.exec(select(Page)).one()
    assert (page.status, page.attempts) == ("pending", 1)  # retried after its back-off


def test_a_password_without_tls_is_refused_when_configured():
    document = _document(25, None)
    document["channels"]["smtp"]["starttls"] = False
    with pytest.raises(OncallInputError, match="a password is only sent over TLS"):
        validate(document, where="test")
