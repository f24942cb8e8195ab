"""The simulator's loopback mail (SMTP in, IMAP out) and OpenID provider, through the stdlib's
smtplib/imaplib and PyJWT, with the ground truth at /_sim/mail and /_sim/oidc."""

from __future__ import annotations

import base64
import hashlib
import imaplib
import re
import secrets
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

pytestmark = pytest.mark.timeout(120)


def _message(to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "oncall@tenantguard.local", to, subject
    message["Message-ID"] = f"<{secrets.token_hex(6)}@tenantguard.local>"
    message.set_content("Incident #1 needs you.")
    return message


def test_mail_is_submitted_over_verified_starttls_read_over_imap_and_listed_as_ground_truth(
    make_simulator: Any,
) -> None:
    sim = make_simulator("quiet_week", users=8, days=1, mail=True)
    info = sim.info
    security = info["mail.imap_user"]
    with smtplib.SMTP(info["mail.smtp_host"], info["mail.smtp_port"], timeout=30) as client:
        # the password is not offered in clear: AUTH is only advertised after STARTTLS
        client.ehlo()
        assert not client.has_extn("auth") and client.has_extn("starttls")
        client.starttls(context=ssl.create_default_context(cafile=info["m365.ca_bundle"]))
        client.login(info["mail.smtp_user"], info["mail.smtp_password"])
        client.send_message(_message(security, "P1 #1: password spray"))
    with smtplib.SMTP(info["mail.smtp_host"], info["mail.smtp_port"], timeout=30) as client:
        client.send_message(_message("ops@customer.example", "Status update"))  # a plain relay, on loopback
    with smtplib.SMTP(info["mail.smtp_host"], info["mail.smtp_port"], timeout=30) as client:
        client.starttls(context=ssl.create_default_context(cafile=info["m365.ca_bundle"]))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(info["mail.smtp_user"], "wrong")
    # a server certificate the client's CA did not sign is refused by the client
    with (
        smtplib.SMTP(info["mail.smtp_host"], info["mail.smtp_port"], timeout=30) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=ssl.create_default_context())

    truth = requests.get(f"{info['admin_url']}/mail", timeout=30).json()
    paged, update = truth["delivered"]
    assert (paged["recipients"], paged["tls"], paged["login"]) == ([security], True, info["mail.smtp_user"])
    assert paged["subject"] == "P1 #1: password spray" and "raw" not in paged
    assert (update["recipients"], update["tls"], update["login"]) == (["ops@customer.example"], False, None)
    assert set(truth["refused_logins"]) == {info["mail.smtp_user"]}  # smtplib tries PLAIN, then LOGIN
    only = requests.get(f"{info['admin_url']}/mail", params={"to": security, "raw": 1}, timeout=30).json()
    assert [d["id"] for d in only["delivered"]] == [paged["id"]]
    assert "Incident #1 needs you." in only["delivered"][0]["raw"]

    # the security mailbox holds only its own mail; reading it and flagging it \Seen
    imap = imaplib.IMAP4(info["mail.imap_host"], info["mail.imap_port"], timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(security, "wrong")
    imap.login(security, info["mail.imap_password"])
    assert imap.select("INBOX")[1] == [b"1"]
    status, found = imap.uid("SEARCH", "UNSEEN")
    assert status == "OK" and found[0].split() == [str(paged["id"]).encode()]
    status, parts = imap.uid("FETCH", found[0].decode(), "(RFC822)")
    assert status == "OK" and b"P1 #1: password spray" in parts[0][1]
    imap.uid("STORE", found[0].decode(), "+FLAGS", "(\\Seen)")
    assert imap.uid("SEARCH", "UNSEEN")[1] == [b""]
    imap.logout()
    assert [m.seen for m in sim.mail.inbox(security)] == [True]
    assert sim.mail.logins(security) == 1


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def test_the_openid_provider_runs_the_code_flow_with_pkce_and_records_the_sign_in(
    make_simulator: Any,
) -> None:
    simulator = make_simulator("quiet_week", users=8, days=1)
    info = simulator.info
    issuer, client_id = info["oidc.issuer"], info["oidc.client_id"]
    config = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=30).json()
    assert config["issuer"] == issuer and config["code_challenge_methods_supported"] == ["S256"]
    analyst = next(name for name, roles in info["oidc.people"].items() if roles == ["analyst"])
    verifier, challenge = _pkce()
    redirect = "http://127.0.0.1:9/console/oidc/callback"
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": "openid profile email",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = requests.get(config["authorization_endpoint"], params=query, timeout=30)
    assert page.status_code == 200 and "Who are you?" in page.text and analyst in page.text
    assert (
        requests.get(
            config["authorization_endpoint"], params={**query, "code_challenge_method": "plain"}, timeout=30
        ).status_code
        == 400
    )
    link = next(h for h in re.findall(r'href="([^"]+)"', page.text) if analyst.replace("@", "%40") in h)
    chosen = requests.get(link.replace("&amp;", "&"), allow_redirects=False, timeout=30)
    assert chosen.status_code == 302 and chosen.headers["Location"].startswith(redirect)
    code = parse_qs(urlsplit(chosen.headers["Location"]).query)
    assert code["state"] == ["st-1"]

    def redeem(verifier: str) -> requests.Response:
        return requests.post(
            config["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code["code"][0],
                "client_id": client_id,
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
            timeout=30,
        )

    assert redeem("not-the-verifier").status_code == 400  # and the code is spent
    assert redeem(verifier).json()["error_description"] == "unknown or used code"
    # again, properly this time
    chosen = requests.get(link.replace("&amp;", "&"), allow_redirects=False, timeout=30)
    code = parse_qs(urlsplit(chosen.headers["Location"]).query)
    tokens = redeem(verifier).json()
    key = jwt.PyJWKClient(config["jwks_uri"]).get_signing_key_from_jwt(tokens["id_token"])
    claims = jwt.decode(tokens["id_token"], key.key, algorithms=["RS256"], audience=client_id, issuer=issuer)
    assert (claims["preferred_username"], claims["roles"], claims["nonce"]) == (analyst, ["analyst"], "n-1")
    userinfo = requests.get(
        config["userinfo_endpoint"], headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=30
    ).json()
    assert userinfo["preferred_username"] == analyst
    truth = requests.get(f"{info['admin_url']}/oidc", timeout=30).json()
    assert [(s["user"], s["client_id"]) for s in truth["sign_ins"]] == [(analyst, client_id)]
    assert truth["refused"] == ["PKCE verifier does not match", "unknown or used code"]
    replaced = requests.post(
        f"{info['admin_url']}/oidc/people", json={"people": {"olivia": ["viewer"]}}, timeout=30
    )
    assert replaced.json()["people"] == {"olivia": ["viewer"]} == simulator.oidc.people
