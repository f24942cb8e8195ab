"""What every console page shares: the signed-in caller, the permission check, CSRF, rendering.

A page declares ``page: ConsolePage = Depends(signed_in(Permission.X))``; that one dependency reads
the session cookie (no session: to the sign-in page), checks an API-token session's principal is
still enabled, applies the caller's rate limit, checks the permission matrix (core.permissions) and,
on POST, the CSRF token. The page then calls the API's service functions with
:attr:`ConsolePage.ctx`, an :class:`api.context.RequestContext`, so every change is audited by the
stage exactly as through the API, naming ``principal:<name>`` with ``auth: console-token|console-oidc``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import Caller
from api.context import ApiState, RequestContext, state_of
from api.requestid import request_id_of
from api.tokens import load_pepper
from console.session import COOKIE, ConsoleSession, csrf_matches, decode, signing_key
from core.models import ApiPrincipal
from core.permissions import Permission, allows, roles_allowed

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STATIC_DIR = Path(__file__).parent / "static"

# Scripts and styles only from this origin; no inline script, no framing, forms post only here.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

NAV: tuple[tuple[str, str, Permission], ...] = (
    ("Incidents", "/console/incidents", Permission.INCIDENTS_READ),
    ("Approvals", "/console/approvals", Permission.ACTIONS_READ),
    ("On call", "/console/oncall", Permission.ONCALL_READ),
    ("Posture", "/console/posture", Permission.POSTURE_READ),
    ("People", "/console/people", Permission.IDENTITIES_READ),
    ("Rules", "/console/rules", Permission.RULES_READ),
    ("Metrics", "/console/metrics", Permission.METRICS_READ),
    ("Compliance", "/console/compliance", Permission.COMPLIANCE_READ),
    ("Audit", "/console/audit", Permission.AUDIT_EXPORT),
)


class SignInRequired(Exception):
    """No usable session: the handler sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageRefused(Exception):
    """The caller may not see or do this (role), or the form's CSRF token is wrong."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ConsolePage:
    request: Request
    ctx: RequestContext
    session: ConsoleSession

    def can(self, permission: Permission | str) -> bool:
        return allows(self.ctx.caller.roles, Permission(permission))


def session_key(state: ApiState) -> bytes:
    key = state.extras.get("console_session_key")
    if key is None:
        key = state.extras["console_session_key"] = signing_key(
            load_pepper(state.settings, state.api_settings)
        )
    return key


def _principal_enabled(state: ApiState, principal_id: int) -> bool:
    with state.db.session(readonly=True) as session:
        principal = session.get(ApiPrincipal, principal_id)
        return principal is not None and not principal.disabled


def signed_in(permission: Permission | None = None) -> Callable[..., Any]:
    async def dependency(request: Request) -> ConsolePage:
        state = state_of(request)
        session = decode(request.cookies.get(COOKIE), session_key(state))
        if session is None:
            raise SignInRequired(request.url.path)
        if session.principal_id is not None and not await run_in_threadpool(
            _principal_enabled, state, session.principal_id
        ):
            raise SignInRequired(request.url.path)
        caller = Caller(
            name=session.name,
            roles=session.roles,
            via=f"console-{session.via}",
            principal_id=session.principal_id,
        )
        state.throttle(caller)
        if permission is not None and not allows(caller.roles, permission):
            raise PageRefused(
                f"{caller.name} (role {', '.join(sorted(caller.roles))}) may not open this page: it needs "
                f"{permission}, held by {', '.join(roles_allowed(permission))}"
            )
        if request.method == "POST":
            form = await request.form()
            presented = form.get("csrf") or request.headers.get("x-csrf-token")
            if not csrf_matches(session, presented if isinstance(presented, str) else None):
                raise PageRefused("the form's CSRF token is missing or wrong; reload the page and try again")
        ctx = RequestContext(caller=caller, request_id=request_id_of(request.scope) or "", state=state)
        return ConsolePage(request=request, ctx=ctx, session=session)

    return dependency


def render(
    page: ConsolePage | None, request: Request, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    nav = [(label, href) for label, href, perm in NAV if page is not None and page.can(perm)]
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "page": page,
            "nav": nav,
            "path": request.url.path,
            "notice": request.query_params.get("notice"),
            "error": request.query_params.get("error"),
            **context,
        },
        status_code=status,
    )
    response.headers["content-security-policy"] = CSP
    # same-origin, not the API's no-referrer: with no-referrer a browser sends `Origin: null` on form
    # posts, and the sign-in form's login-CSRF check needs the real origin.
    response.headers["referrer-policy"] = "same-origin"
    return response


def back_to(path: str, *, notice: str | None = None, error: str | None = None) -> Response:
    """Post/redirect/get: back to a page, with one line saying what happened."""
    query = urlencode({k: v for k, v in (("notice", notice), ("error", error)) if v})
    joiner = "&" if "?" in path else "?"
    return RedirectResponse(path + (f"{joiner}{query}" if query else ""), status_code=303)


def sign_in_redirect(next_path: str) -> Response:
    return RedirectResponse(f"/console/login?next={quote(next_path)}", status_code=303)
