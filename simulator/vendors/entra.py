"""Entra ID authority: OpenID discovery and the v2.0 token endpoint (client secret or certificate)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jwt

from simulator.auth import TOKEN_LIFETIME, verify_client_assertion
from simulator.http import Request, Response
from simulator.timestamps import SECOND

if TYPE_CHECKING:
    from simulator.server import Simulator

AUDIENCES = {
    "https://graph.microsoft.com/.default": "graph",
    "https://manage.office.com/.default": "manage",
    "00000003-0000-0000-c000-000000000000/.default": "graph",
}


def register(sim: Simulator) -> None:
    tenant = r"/(?P<tenant>[^/]+)"
    sim.router.add(
        "GET",
        tenant + r"/v2\.0/\.well-known/openid-configuration",
        lambda r: _discovery(sim, r),
        "m365",
        "openid",
    )
    sim.router.add(
        "GET", tenant + r"/\.well-known/openid-configuration", lambda r: _discovery(sim, r), "m365", "openid"
    )
    sim.router.add("POST", tenant + r"/oauth2/v2\.0/token", lambda r: _token(sim, r), "m365", "token")


def _known_tenant(sim: Simulator, value: str) -> bool:
    return value in (sim.tenant.tenant_id, sim.tenant.domain, "organizations")


def _discovery(sim: Simulator, request: Request) -> Response:
    tenant = request.params["tenant"]
    if not _known_tenant(sim, tenant):
        return _oauth_error(
            "invalid_tenant",
            f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            400,
        )
    base = f"{request.base_url}/{sim.tenant.tenant_id}"
    return Response.json(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{request.base_url}/{sim.tenant.tenant_id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{request.base_url}/{sim.tenant.tenant_id}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }
    )


def _oauth_error(error: str, description: str, status: int = 401) -> Response:
    code = (
        int(description.split(":")[0].replace("AADSTS", "") or 0) if description.startswith("AADSTS") else 0
    )
    return Response.json(
        {
            "error": error,
            "error_description": description,
            "error_codes": [code] if code else [],
            "timestamp": "",
            "trace_id": "",
            "correlation_id": "",
        },
        status,
    )


def _token(sim: Simulator, request: Request) -> Response:
    form = request.form
    tenant = request.params["tenant"]
    creds = sim.credentials
    if not _known_tenant(sim, tenant):
        return _oauth_error("invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.", 400)
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type; use client_credentials.",
            400,
        )
    if form.get("client_id") != creds.client_id:
        return _oauth_error(
            "unauthorized_client",
            f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found in the directory.",
            400,
        )
    assertion = form.get("client_assertion")
    if assertion:
        try:
            verify_client_assertion(assertion, creds, f"/{tenant}/oauth2/v2.0/token")
        except jwt.PyJWTError as exc:
            return _oauth_error(
                "invalid_client", f"AADSTS700027: Client assertion failed signature validation ({exc})."
            )
    elif form.get("client_secret") != creds.client_secret:
        return _oauth_error(
            "invalid_client",
            f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{creds.client_id}'.",
        )
    scope = str(form.get("scope", ""))
    audience = next((AUDIENCES[s] for s in scope.split() if s in AUDIENCES), None)
    if audience is None:
        return _oauth_error(
            "invalid_scope",
            f"AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            400,
        )
    token = sim.tokens.issue("m365", audience, None, tuple(scope.split()), sim.now() / SECOND)
    return Response.json(
        {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token.value,
        }
    )
