"""Credentials and tokens: the TLS CA, the Entra app, the Google service account, Slack tokens,
the Okta API token (SSWS) and the Okta service app's key (OAuth 2.0 private_key_jwt).

Keys are generated with `cryptography` once per process (RSA key generation is the slow part)
and written to a temporary directory per simulator. Access tokens are random strings remembered
in a registry with their audience, subject, scopes and expiry; a fault can expire them.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from simulator.identifiers import Ids

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
TOKEN_LIFETIME = 3599


@cache
def _keys() -> dict[str, Any]:
    """Process-wide keys: a CA (EC), a server key (EC), the service account and Entra client cert (RSA)."""
    return {
        "ca": ec.generate_private_key(ec.SECP256R1()),
        "server": ec.generate_private_key(ec.SECP256R1()),
        "google": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "entra_client": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "okta_client": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject: str,
    key: Any,
    issuer_name: str,
    issuer_key: Any,
    ca: bool,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Credentials:
    """Everything a client needs to authenticate, and the files it is given."""

    directory: Path
    tenant_id: str
    client_id: str
    client_secret: str
    sa_email: str
    slack_bot_token: str
    slack_admin_token: str
    slack_audit_token: str
    slack_user_token: str
    twilio_account_sid: str
    twilio_auth_token: str
    slack_signing_secret: str
    okta_api_token: str
    okta_client_id: str
    ca_file: Path = field(init=False)
    server_cert_file: Path = field(init=False)
    server_key_file: Path = field(init=False)
    client_cert_file: Path = field(init=False)
    client_key_file: Path = field(init=False)
    client_thumbprint: str = field(init=False)
    sa_key_id: str = field(init=False)

    def write(self, token_uri: str, google_customer: str) -> None:
        """Generate certificates and write the CA, server, client and service-account files."""
        keys = _keys()
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        ca_cert = _certificate(
            "tenantguard simulator CA", keys["ca"], "tenantguard simulator CA", keys["ca"], ca=True
        )
        server_cert = _certificate(
            "127.0.0.1",
            keys["server"],
            "tenantguard simulator CA",
            keys["ca"],
            ca=False,
            sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        )
        client_cert = _certificate(
            "tenantguard collector",
            keys["entra_client"],
            "tenantguard collector",
            keys["entra_client"],
            ca=False,
        )
        self.ca_file = d / "ca.pem"
        self.server_cert_file = d / "server.pem"
        self.server_key_file = d / "server-key.pem"
        self.client_cert_file = d / "entra-client.pem"
        self.client_key_file = d / "entra-client-key.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.server_cert_file.write_bytes(
            server_cert.public_bytes(serialization.Encoding.PEM) + self.ca_file.read_bytes()
        )
        self.server_key_file.write_bytes(_pem_key(keys["server"]))
        self.client_cert_file.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
        self.client_key_file.write_bytes(_pem_key(keys["entra_client"]))
        self.client_thumbprint = client_cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t is SHA-1
        self._client_cert = client_cert
        self.okta_key_file.write_bytes(_pem_key(keys["okta_client"]))
        self.okta_key_file.chmod(0o600)
        self.sa_key_id = hashlib.sha1(_pem_key(keys["google"])).hexdigest()  # noqa: S324 - an id, not security
        self.sa_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "tenantguard-sim",
                    "private_key_id": self.sa_key_id,
                    "private_key": _pem_key(keys["google"]).decode(),
                    "client_email": self.sa_email,
                    "client_id": str(int(self.sa_key_id[:15], 16)),
                    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                    "token_uri": token_uri,
                    "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                    "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{self.sa_email}",
                    "universe_domain": "googleapis.com",
                },
                indent=2,
            )
        )
        del google_customer

    @property
    def okta_key_file(self) -> Path:
        """The Okta service app's private key (its public half is registered as the app's JWKS)."""
        return self.directory / "okta-service-app-key.pem"

    def okta_public_key(self) -> Any:
        return _keys()["okta_client"].public_key()

    @property
    def sa_file(self) -> Path:
        return self.directory / "google-service-account.json"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        return context

    def google_public_key(self) -> Any:
        return _keys()["google"].public_key()

    def client_public_key(self) -> Any:
        return _keys()["entra_client"].public_key()

    def client_cert_sha256(self) -> str:
        digest = self._client_cert.fingerprint(hashes.SHA256())
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def client_cert_sha1(self) -> str:
        digest = self._client_cert.fingerprint(hashes.SHA1())  # noqa: S303
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_credentials(ids: Ids, directory: Path, tenant_id: str, domain: str) -> Credentials:
    team = ids.number("slack-team-number") % 10**10
    return Credentials(
        directory=directory,
        tenant_id=tenant_id,
        client_id=ids.guid("entra-app", "tenantguard-collector"),
        client_secret=ids.token("entra-secret", length=34).replace("a", "~", 2),
        sa_email=f"tenantguard-collector@tenantguard-sim-{ids.hex('project', length=6)}.iam.gserviceaccount.com",
        slack_bot_token=f"xoxb-{team}-{ids.number('bot') % 10**13}-{ids.token('bot-token', length=24)}",
        slack_admin_token=f"xoxp-{team}-{ids.number('admin') % 10**13}-{ids.number('admin2') % 10**13}-{ids.hex('admin-token', length=32)}",
        slack_audit_token=f"xoxp-{team}-{ids.number('audit') % 10**13}-{ids.number('audit2') % 10**13}-{ids.hex('audit-token', length=32)}",
        slack_user_token=f"xoxp-{team}-{ids.number('user') % 10**13}-{ids.number('user2') % 10**13}-{ids.hex('user-token', length=32)}",
        twilio_account_sid="AC" + ids.hex("twilio-account", length=32),
        twilio_auth_token=ids.hex("twilio-auth-token", length=32),
        slack_signing_secret=ids.hex("slack-signing-secret", length=32),
        okta_api_token="00" + ids.token("okta-api-token-value", length=40),
        okta_client_id="0oa" + ids.token("okta-service-app", length=17),
    )


# ------------------------------------------------------------------ access tokens


@dataclass
class AccessToken:
    value: str
    vendor: str  # m365 | google | slack
    audience: str  # graph | manage | google | bot | admin | audit | user
    subject: str | None
    scopes: tuple[str, ...]
    expires_at: float  # simulator clock, seconds
    expired: bool = False


class TokenRegistry:
    """Issued tokens, looked up on every request; faults may expire them."""

    def __init__(self) -> None:
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        vendor: str,
        audience: str,
        subject: str | None,
        scopes: tuple[str, ...],
        now: float,
        lifetime: int = TOKEN_LIFETIME,
    ) -> AccessToken:
        prefix = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." if vendor in ("m365", "okta") else "ya29.a0"
        token = AccessToken(
            prefix + secrets.token_urlsafe(48), vendor, audience, subject, scopes, now + lifetime
        )
        with self._lock:
            self._tokens[token.value] = token
        return token

    def register_static(self, value: str, vendor: str, audience: str, subject: str | None = None) -> None:
        with self._lock:
            self._tokens[value] = AccessToken(value, vendor, audience, subject, (), float("inf"))

    def get(self, value: str | None) -> AccessToken | None:
        if not value:
            return None
        with self._lock:
            return self._tokens.get(value)

    def expire(self, value: str) -> None:
        with self._lock:
            token = self._tokens.get(value)
            if token is not None and token.vendor != "slack" and token.expires_at != float("inf"):
                token.expired = True

    def expire_all(self, vendor: str | None = None) -> int:
        with self._lock:
            tokens = [
                t
                for t in self._tokens.values()
                if t.vendor != "slack"
                and t.expires_at != float("inf")  # static API tokens (Okta SSWS) do not expire
                and (vendor is None or t.vendor == vendor)
            ]
            for token in tokens:
                token.expired = True
            return len(tokens)


def verify_google_assertion(assertion: str, public_key: Any, sa_email: str, token_uri: str) -> dict[str, Any]:
    """Check the service account's RS256 JWT; `aud` is Google's fixed token URL (or token_uri)."""
    claims = jwt.decode(
        assertion,
        public_key,
        algorithms=["RS256"],
        audience=[GOOGLE_TOKEN_AUDIENCE, token_uri],
        options={"require": ["exp", "iat", "iss", "aud"]},
        leeway=60,
    )
    if claims.get("iss") != sa_email:
        raise jwt.InvalidIssuerError(f"iss {claims.get('iss')!r} is not the service account")
    return claims


def verify_client_assertion(
    assertion: str, credentials: Credentials, token_endpoint_suffix: str
) -> dict[str, Any]:
    """Check an Entra certificate assertion: signature (RS256/PS256), thumbprint header, aud, iss=sub=client_id."""
    header = jwt.get_unverified_header(assertion)
    if header.get("x5t#S256") and str(header["x5t#S256"]).rstrip("=") != credentials.client_cert_sha256():
        raise jwt.InvalidTokenError("x5t#S256 does not match the registered certificate")
    if header.get("x5t") and str(header["x5t"]).rstrip("=") not in (
        credentials.client_cert_sha1(),
        credentials.client_thumbprint,
    ):
        raise jwt.InvalidTokenError("x5t does not match the registered certificate")
    claims = jwt.decode(
        assertion,
        credentials.client_public_key(),
        algorithms=["RS256", "PS256"],
        options={"verify_aud": False, "require": ["exp", "aud", "iss", "sub"]},
        leeway=60,
    )
    if not str(claims["aud"]).endswith(token_endpoint_suffix):
        raise jwt.InvalidAudienceError(f"aud {claims['aud']!r} is not this token endpoint")
    if claims["iss"] != credentials.client_id or claims["sub"] != credentials.client_id:
        raise jwt.InvalidIssuerError("iss and sub must be the client id")
    return claims


def verify_okta_assertion(assertion: str, credentials: Credentials, token_url: str) -> dict[str, Any]:
    """An Okta service app's client assertion: RS256 by the registered key, iss = sub = client id,
    aud = the token endpoint, with exp and jti (Okta refuses a reused jti; so do we, per process)."""
    claims = jwt.decode(
        assertion,
        credentials.okta_public_key(),
        algorithms=["RS256", "ES256"],
        audience=token_url,
        options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
        leeway=60,
    )
    if claims["iss"] != credentials.okta_client_id or claims["sub"] != credentials.okta_client_id:
        raise jwt.InvalidIssuerError("iss and sub must be the service app's client id")
    with _JTI_LOCK:
        if claims["jti"] in _SEEN_JTI:
            raise jwt.InvalidTokenError("the jti was already used")
        _SEEN_JTI.add(claims["jti"])
    return claims


_SEEN_JTI: set[str] = set()
_JTI_LOCK = threading.Lock()
