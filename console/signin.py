"""Signing in and out of the console: with an API token (the same tokens as the API).

A failed sign-in counts against the client address exactly like a refused API request
(TENANTGUARD_API_AUTH_FAILURES_PER_MINUTE). The sign-in form also checks the request's Origin, so
another site cannot sign a browser in to an account of its choosing (login CSRF).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from api.context import state_of
from api.errors import Unauthorized
from console.session import COOKIE, LIFETIME_SECONDS, encode, new_session
from console.web import ConsolePage, render, session_key, signed_in

router = APIRouter(prefix="/console", include_in_schema=False)


def safe_next(path: str | None) -> str:
    if path and path.startswith("/console/") and not path.startswith("/console/login") and "//" not in path:
        return path
    return "/console/incidents"


def sso_available(request: Request) -> bool:
    settings = state_of(request).api_settings
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def same_origin(request: Request) -> bool:
    """Whether a form post came from a page of this site (browsers send Origin, or Sec-Fetch-Site)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None or fetch_site == "same-origin"
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(None, request, "login.html.j2", next=safe_next(next), sso=sso_available(request))


@router.post("/login")
async def login(
    request: Request, token: Annotated[str, Form(max_length=200)], next: Annotated[str, Form()] = ""
) -> Response:
    state = state_of(request)
    if not same_origin(request):
        return render(
            None,
            request,
            "login.html.j2",
            status=403,
            next=safe_next(next),
            failure=f"cross-site sign-in refused: the form came from {request.headers.get('origin')}, "
            f"not from {request.headers.get('host')}",
        )
    try:
        caller = await run_in_threadpool(state.tokens.authenticate, token.strip())
    except Unauthorized as exc:
        state.metrics.auth_failures.labels("refused").inc()
        client = request.client.host if request.client else "unknown"
        if state.auth_failures.acquire(f"ip:{client}") is not None:
            return render(
                None,
                request,
                "login.html.j2",
                status=429,
                next=safe_next(next),
                failure="too many failed sign-ins; wait a minute",
            )
        return render(None, request, "login.html.j2", status=401, next=safe_next(next), failure=exc.detail)
    session = new_session(caller.name, caller.roles, "token", caller.principal_id)
    response = RedirectResponse(safe_next(next), status_code=303)
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


@router.post("/logout")
def logout(page: Annotated[ConsolePage, Depends(signed_in())]) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response
