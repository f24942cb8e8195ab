"""The demo's single sign-on part: a person signs in through the simulator's OpenID provider.

What a browser does for the console's "Sign in with single sign-on" (authorization code with PKCE,
state and nonce), done with requests: the provider's "Who are you?" page, the security analyst
picks themselves, the code comes back to the console's redirect URI and is redeemed with the
verifier; the ID token is then checked by the API's own OIDC authenticator exactly as the
console's callback checks it (signature from the JWKS, issuer, audience = the client id, expiry,
nonce, roles). Then it prints the settings that make `tenantguard serve` use that provider.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from cli.context import console

TIMEOUT = 30


def sso_login(info: dict[str, Any], console_url: str) -> tuple[str, list[str]]:
    """(name, roles) of the analyst signed in through the simulator's issuer, as the API sees them."""
    from api.auth import OidcAuthenticator, discovery_document
    from core.settings import ApiSettings

    issuer, client_id = info["oidc.issuer"], info["oidc.client_id"]
    analyst = next(name for name, roles in info["oidc.people"].items() if "analyst" in roles)
    config = discovery_document(issuer)
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    redirect_uri = f"{console_url.rstrip('/')}/console/oidc/callback"
    page = requests.get(
        str(config["authorization_endpoint"]),
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        timeout=TIMEOUT,
    )
    page.raise_for_status()
    links = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page.text)]
    chosen = next(link for link in links if parse_qs(urlsplit(link).query).get("user") == [analyst])
    answer = requests.get(chosen, allow_redirects=False, timeout=TIMEOUT)
    back = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert back.get("state") == [state], "the provider returned another sign-in's state"
    tokens = requests.post(
        str(config["token_endpoint"]),
        data={
            "grant_type": "authorization_code",
            "code": back["code"][0],
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
        timeout=TIMEOUT,
    )
    tokens.raise_for_status()
    authenticator = OidcAuthenticator(ApiSettings(oidc_issuer=issuer, oidc_client_id=client_id))
    caller = authenticator.authenticate(tokens.json()["id_token"], audience=client_id, nonce=nonce)
    return caller.name, sorted(role.value for role in caller.roles)


def show(info: dict[str, Any], console_url: str) -> None:
    if "oidc.issuer" not in info:
        return
    try:
        name, roles = sso_login(info, console_url)
    except Exception as exc:  # noqa: BLE001 - the demo goes on; the line says what failed
        console.print(f"console SSO: the sign-in through {info['oidc.issuer']} failed: {exc}", style="yellow")
        return
    console.print(
        f"console SSO: {name} signed in through the simulator's OpenID provider as {', '.join(roles)} "
        "(code flow with PKCE; ID token checked as the console checks it); to sign in to the console "
        f"that way: TENANTGUARD_API_OIDC_ISSUER={info['oidc.issuer']} "
        f"TENANTGUARD_API_OIDC_CLIENT_ID={info['oidc.client_id']} tenantguard serve",
        highlight=False,
        markup=False,
    )
