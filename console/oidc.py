"""Single sign-on for the console: OIDC authorization code flow with PKCE (S256), state and nonce.

`/console/oidc/start` sends the browser to the issuer's authorization endpoint (from its discovery
document) with a fresh code challenge, state and nonce, kept meanwhile in a short-lived signed
cookie (HttpOnly, Secure, SameSite=Lax so it comes back on the issuer's redirect, path
/console/oidc). `/console/oidc/callback` checks the state, redeems the code with the verifier at the
token endpoint, and validates the ID token with the API's OIDC authenticator (signature from the
JWKS, issuer, audience = the client id, expiry, nonce); the roles come from the same claim as
for API JWTs. Settings: TENANTGUARD_API_OIDC_ISSUER and TENANTGUARD_API_OIDC_CLIENT_ID (and
..._CLIENT_SECRET_REF for a confidential client).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Annotated
from urllib.parse import urlencode

import orjson
import requests
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api.auth import discovery_document
from api.context import ApiState, state_of
from api.errors import ApiError
from console.session import COOKIE, LIFETIME_SECONDS, encode, new_session
from console.signin import safe_next
from console.web import render, session_key
from providers.credentials import resolve_reference

router = APIRouter(prefix="/console/oidc", include_in_schema=False)
FLOW_COOKIE = "tg_oidc_flow"
FLOW_SECONDS = 600


def sso_configured(state: ApiState) -> bool:
    """Whether the console offers single sign-on (an issuer and a client id are set)."""
    return bool(state.api_settings.oidc_issuer and state.api_settings.oidc_client_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _sign(key: bytes, payload: dict[str, object]) -> str:
    body = _b64(orjson.dumps(payload))
    return f"{body}.{_b64(hmac.new(key, b'oidc-flow:' + body.encode(), hashlib.sha256).digest())}"


def _unsign(key: bytes, cookie: str | None) -> dict[str, object] | None:
    if not cookie or cookie.count(".") != 1:
        return None
    body, signature = cookie.split(".")
    expected = _b64(hmac.new(key, b"oidc-flow:" + body.encode("ascii", "replace"), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):
        return None
    try:
        flow = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(flow, dict) or float(flow.get("exp", 0)) < time.time():
        return None
    return flow


def _endpoints(state: ApiState) -> tuple[str, str]:
    cached = state.extras.get("oidc_endpoints")
    if cached is None:
        assert state.api_settings.oidc_issuer
        document = discovery_document(state.api_settings.oidc_issuer)
        authorize, token = document.get("authorization_endpoint"), document.get("token_endpoint")
        if not isinstance(authorize, str) or not isinstance(token, str):
            raise ApiError("the issuer's discovery document names no authorization or token endpoint")
        cached = state.extras["oidc_endpoints"] = (authorize, token)
    return cached


def _redirect_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/console/oidc/callback"


def _refused(request: Request, message: str, status: int = 401) -> Response:
    return render(
        None, request, "login.html.j2", status=status, next="/console/incidents", failure=message, sso=True
    )


@router.get("/start")
async def start(request: Request, next: str | None = None) -> Response:
    state = state_of(request)
    if not sso_configured(state):
        return _refused(request, "single sign-on is not configured (TENANTGUARD_API_OIDC_CLIENT_ID)", 404)
    authorize, _ = await run_in_threadpool(_endpoints, state)
    verifier = secrets.token_urlsafe(48)
    flow = {
        "verifier": verifier,
        "state": secrets.token_urlsafe(24),
        "nonce": secrets.token_urlsafe(24),
        "next": safe_next(next),
        "exp": time.time() + FLOW_SECONDS,
    }
    query = {
        "response_type": "code",
        "client_id": state.api_settings.oidc_client_id,
        "redirect_uri": _redirect_uri(request),
        "scope": "openid profile",
        "state": flow["state"],
        "nonce": flow["nonce"],
        "code_challenge": _b64(hashlib.sha256(verifier.encode("ascii")).digest()),
        "code_challenge_method": "S256",
    }
    response = RedirectResponse(f"{authorize}?{urlencode(query)}", status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        _sign(session_key(state), flow),
        max_age=FLOW_SECONDS,
        path="/console/oidc",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    return response


def _redeem(state: ApiState, token_url: str, code: str, verifier: str, redirect_uri: str) -> str:
    settings = state.api_settings
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.oidc_client_id or "",
        "code_verifier": verifier,
    }
    if settings.oidc_client_secret_ref:
        form["client_secret"] = resolve_reference("oidc_client_secret", settings.oidc_client_secret_ref)
    try:
        answer = requests.post(token_url, data=form, timeout=10)
    except requests.RequestException as exc:
        raise ApiError(f"the issuer's token endpoint did not answer ({exc}); try again")
    if answer.status_code != 200:
        raise ApiError(f"the issuer refused the sign-in code ({answer.status_code}: {answer.text[:200]})")
    id_token = answer.json().get("id_token")
    if not isinstance(id_token, str):
        raise ApiError("the issuer's token answer carries no id_token (is the 'openid' scope allowed?)")
    return id_token


@router.get("/callback")
async def callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state_param: Annotated[str | None, Query(alias="state", max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    state = state_of(request)
    if not sso_configured(state) or state.oidc is None:
        return _refused(request, "single sign-on is not configured", 404)
    flow = _unsign(session_key(state), request.cookies.get(FLOW_COOKIE))
    if error:
        return _refused(request, f"the identity provider refused the sign-in: {error}")
    if flow is None or not state_param or not hmac.compare_digest(str(flow["state"]), state_param):
        return _refused(request, "this sign-in was not started here or has expired; start again", 400)
    if not code:
        return _refused(request, "the identity provider sent no code", 400)
    oidc = state.oidc
    try:
        _, token_url = await run_in_threadpool(_endpoints, state)
        id_token = await run_in_threadpool(
            _redeem, state, token_url, code, str(flow["verifier"]), _redirect_uri(request)
        )
        caller = await run_in_threadpool(
            lambda: oidc.authenticate(
                id_token, audience=state.api_settings.oidc_client_id, nonce=str(flow["nonce"])
            )
        )
    except ApiError as exc:
        state.metrics.auth_failures.labels("refused").inc()
        return _refused(request, exc.detail)
    session = new_session(caller.name, caller.roles, "oidc", None)
    # A page, not a redirect: the browser arrived from the issuer (another site), and a SameSite=Strict
    # cookie is only sent on the next request when that request starts from this site.
    response = render(None, request, "signed_in.html.j2", next=str(flow["next"]), name=caller.name)
    response.delete_cookie(FLOW_COOKIE, path="/console/oidc", secure=True, httponly=True, samesite="lax")
    response.set_cookie(
        COOKIE,
        encode(session, session_key(state)),
        max_age=LIFETIME_SECONDS,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response
