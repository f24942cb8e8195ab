"""`install_console(app)`: the console's pages under /console, its static files, `/` sending browsers there.

Technology: server-rendered Jinja2 templates and plain HTML forms (post/redirect/get), with one
small script of our own for live updates (EventSource) and confirmations. No third-party front-end
code and no build step: nothing to vendor, nothing to download at install time, and every page
works with scripts off (live updates aside).
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.errors import ApiError
from console import approvals, compliance, dashboards, directory, incidents, oidc, oncall, signin
from console.web import STATIC_DIR, PageRefused, SignInRequired, render, sign_in_redirect


def install_console(app: FastAPI) -> None:
    for module in (signin, oidc, incidents, approvals, oncall, dashboards, directory, compliance):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=str(STATIC_DIR)), name="console-static")

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/console/incidents", status_code=303)

    async def to_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return sign_in_redirect(exc.next_path)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageRefused)
        return render(None, request, "refused.html.j2", status=exc.status, message=exc.message)

    app.add_exception_handler(SignInRequired, to_sign_in)
    app.add_exception_handler(PageRefused, refused)

    # A console page that fails on purpose (a missing incident, bad input) answers a page, not JSON.
    api_error_handler = app.exception_handlers[ApiError]

    async def console_or_problem(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ApiError) and request.url.path.startswith("/console/"):
            return render(
                None, request, "refused.html.j2", status=exc.status, message=exc.detail, title=exc.title
            )
        answer = api_error_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(ApiError, console_or_problem)
