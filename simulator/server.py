"""The simulator application: routes, authentication, faults, the clock and the listeners.

One :class:`Simulator` serves every vendor from one HTTP port (path prefixes) and the same
routes over HTTPS on a second port (msal insists on an https authority).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulator.auth import AccessToken, TokenRegistry, make_credentials
from simulator.faults import Faults, parse_faults
from simulator.http import Listener, Request, Response, Router
from simulator.timestamps import SECOND, graph_time
from simulator.world import World

if TYPE_CHECKING:
    from simulator.mail import MailServer


class ApiError(Exception):
    """Raised by handlers; rendered in the provider's own error shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class Paging:
    """Default and maximum page sizes (scenario `paging:` overrides them)."""

    graph_default: int = 100
    graph_signins_default: int = 1000
    graph_max: int = 1000
    management_blobs: int = 48
    google_default: int = 1000
    slack_default: int = 100
    slack_audit_default: int = 100


class Simulator:
    def __init__(
        self,
        world: World,
        faults: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_port: int = 0,
        directory: Path | None = None,
    ) -> None:
        self.world = world
        self.tenant = world.tenant
        self.state = world.state
        self.host = host
        self._tempdir = None
        if directory is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="tenantguard-sim-")
            directory = Path(self._tempdir.name)
        self.directory = directory
        self.credentials = make_credentials(
            world.tenant.ids, directory, world.tenant.tenant_id, world.tenant.domain
        )
        self.tokens = TokenRegistry()
        self.faults = Faults()
        self.paging = Paging(**{k: v for k, v in world.scenario.paging.items() if hasattr(Paging, k)})
        # Simulator time starts at the scenario's end ("now" for a live run, the end of a --start run)
        # and then runs with the wall clock; POST /_sim/clock moves it further.
        self.clock_offset = world.options.end - int(time.time() * SECOND)
        self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.router = Router()
        self._lock = threading.Lock()
        self.http = Listener(self, host, port)
        self.credentials.write(
            token_uri=f"{self.http.base_url}/google/token", google_customer=world.tenant.customer_id
        )
        self.https = Listener(self, host, tls_port, tls=self.credentials.ssl_context())
        for token, audience in (
            (self.credentials.slack_bot_token, "bot"),
            (self.credentials.slack_admin_token, "admin"),
            (self.credentials.slack_audit_token, "audit"),
            (self.credentials.slack_user_token, "user"),
        ):
            self.tokens.register_static(token, "slack", audience)
        self.tokens.register_static(self.credentials.okta_api_token, "okta", "okta_ssws")
        self.set_faults(faults if faults is not None else world.scenario.faults)
        from simulator.oidc import make_provider

        self.oidc = make_provider(self)  # routes on this port (/oidc): no listener of its own
        self.mail: MailServer | None = None  # SMTP + IMAP listeners: start_mail() (simulator serve)
        from simulator.vendors import register_all

        register_all(self)
        self.router.add("GET", r"/_sim/stats", lambda r: Response.json(self.serving_stats()), "sim", "stats")

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Simulator:
        self.http.start()
        self.https.start()
        return self

    def start_mail(self) -> MailServer:
        """Start the loopback SMTP/IMAP pair (STARTTLS with this simulator's certificate)."""
        from simulator.mail import MailServer

        if self.mail is None:
            ids, domain = self.tenant.ids, self.tenant.domain
            mail = MailServer(
                self.host,
                tls_context=self.credentials.ssl_context(),
                smtp_user=f"tenantguard@{domain}",
                smtp_password=ids.hex("smtp-password", length=24),
            )
            mail.add_account(
                f"security@{domain}", ids.hex("imap-password", length=24), [f"security@{domain}"]
            )
            self.mail = mail.start()
        return self.mail

    def stop(self) -> None:
        if self.mail is not None:
            self.mail.stop()
        closer = threading.Thread(target=self.https.stop)
        closer.start()
        self.http.stop()
        closer.join()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    @property
    def base_url(self) -> str:
        return self.http.base_url

    def info(self) -> dict[str, Any]:
        """What a client needs (printed as one JSON line by `simulator serve`)."""
        base = self.base_url
        tenant = self.tenant
        creds = self.credentials
        return {
            "scenario": self.world.scenario.id,
            "seed": self.world.options.seed,
            "users": self.world.options.users,
            "days": self.world.options.days,
            "start": graph_time(self.world.options.start),
            "end": graph_time(self.world.options.end),
            "admin_url": f"{base}/_sim",
            "m365.authority": f"{self.https.base_url}/{tenant.tenant_id}",
            "m365.authority_host": self.https.base_url,
            "m365.ca_bundle": str(creds.ca_file),
            "m365.tenant_id": tenant.tenant_id,
            "m365.client_id": creds.client_id,
            "m365.client_secret": creds.client_secret,
            "m365.client_certificate": str(creds.client_cert_file),
            "m365.client_private_key": str(creds.client_key_file),
            "m365.client_thumbprint": creds.client_thumbprint,
            "m365.graph_base_url": f"{base}/graph/v1.0",
            "m365.graph_beta_url": f"{base}/graph/beta",
            "m365.management_base_url": f"{base}/manage/api/v1.0",
            "m365.management_feed_url": f"{base}/manage/api/v1.0/{tenant.tenant_id}/activity/feed",
            "m365.domain": tenant.domain,
            "google.api_endpoint": f"{base}/",
            "google.drive_api_endpoint": f"{base}/drive/v3/",
            "google.service_account_file": str(creds.sa_file),
            "google.subject": tenant.google_subject.email,
            "google.customer_id": tenant.customer_id,
            "google.domain": tenant.domain,
            "google.token_uri": f"{base}/google/token",
            "slack.base_url": f"{base}/api/",
            "slack.bot_token": creds.slack_bot_token,
            "slack.admin_token": creds.slack_admin_token,
            "slack.user_token": creds.slack_user_token,
            "slack.audit_base_url": f"{base}/audit/v1/",
            "slack.audit_token": creds.slack_audit_token,
            "slack.team_id": tenant.slack_team_id,
            "slack.enterprise_id": tenant.slack_enterprise_id,
            "slack.signing_secret": creds.slack_signing_secret,
            "okta.org_url": base,
            "okta.api_token": creds.okta_api_token,
            "okta.client_id": creds.okta_client_id,
            "okta.private_key_file": str(creds.okta_key_file),
            "okta.domain": tenant.domain,
            "twilio.base_url": base,
            "twilio.account_sid": creds.twilio_account_sid,
            "twilio.auth_token": creds.twilio_auth_token,
            **_jira_info(self),
            **self.oidc.info(),
            **(self.mail.info() if self.mail is not None else {}),
        }

    def serving_stats(self) -> dict[str, Any]:
        """What answering vendor requests cost so far (both listeners; ``/_sim/`` excluded), and
        the process's CPU time: a client takes two readings and divides what it read by the
        differences (bench/e2e.py: the simulator's serving rate next to the collector's)."""
        total: dict[str, Any] = {"requests": 0, "bytes": 0, "cpu_seconds": 0.0, "busy_seconds": 0.0}
        for listener in (self.http, self.https):
            for key, value in listener.stats.as_dict().items():
                total[key] += value
        total["process_cpu_seconds"] = time.process_time()
        return total

    # ---------------------------------------------------------------- clock and faults

    def now(self) -> int:
        """Simulator time (microseconds): wall clock plus any advance asked through /_sim/clock."""
        return int(time.time() * SECOND) + self.clock_offset

    def set_faults(self, text: str | None) -> None:
        spec = parse_faults(text, seed=self.world.options.seed)
        self.faults.set(spec)
        for rule in spec.rule("expire_tokens"):
            if rule.scope == "now":
                self.tokens.expire_all()

    # ---------------------------------------------------------------- dispatch

    def __call__(self, request: Request) -> Response:
        route, params, other_method = self.router.match(request.method, request.path)
        if route is None:
            status = 405 if other_method else 404
            response = self._error_for_path(
                request.path,
                status,
                "Request_ResourceNotFound" if status == 404 else "MethodNotAllowed",
                f"No route for {request.method} {request.path}",
            )
            self._log(request, response, None)
            return response
        request.route = route
        request.params = params
        fault = None
        try:
            if route.provider == "sim":
                response = route.handler(request)
            else:
                response, fault = self._vendor_call(request)
        except _AuthFailure as exc:
            response = exc.response
        except ApiError as exc:
            response = self.error(
                route.provider, route.resource, exc.status, exc.code, exc.message, exc.headers
            )
        except Exception as exc:  # noqa: BLE001 - a simulator bug becomes a 500, with the reason
            traceback.print_exc()
            response = self.error(
                route.provider, route.resource, 500, "InternalServerError", f"{type(exc).__name__}: {exc}"
            )
        if request.path.startswith("/graph/"):
            self._graph_headers(request, response)
        self._log(request, response, fault)
        return response

    def _graph_headers(self, request: Request, response: Response) -> None:
        """Graph answers every request (errors too) with request-id, client-request-id (the
        caller's, echoed, or the request id) and x-ms-ags-diagnostic; the error body's innerError
        names the same ids."""
        request_id = response.headers.get("request-id") or self.request_id()
        client_id = request.headers.get("client-request-id") or request_id
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_id)
        response.headers.setdefault(
            "x-ms-ags-diagnostic",
            '{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"SIM"}}',
        )

    def _vendor_call(self, request: Request) -> tuple[Response, str | None]:
        route = request.route
        key = f"{request.method} {request.path}?{request.raw_query}#{hashlib.sha1(request.body).hexdigest()[:10]}"  # noqa: S324
        decision = self.faults.decide(key, route.provider, route.resource, request.path)
        if decision.delay:
            time.sleep(decision.delay)
        if route.auth:
            token = self.authenticate(request)
            if decision.expire_token and token is not None:
                self.tokens.expire(token.value)
                return self.auth_error(route.provider, route.resource, expired=True), "expire_token"
        if decision.status is not None:
            headers = {}
            if decision.status in (429, 503):
                headers["Retry-After"] = str(self.faults.retry_after(key))
            code = {
                401: "InvalidAuthenticationToken",
                403: "Authorization_RequestDenied",
                429: "TooManyRequests",
            }.get(decision.status, "ServiceUnavailable")
            if decision.status == 401:
                return self.auth_error(route.provider, route.resource, expired=True), "401"
            return self.error(
                route.provider,
                route.resource,
                decision.status,
                code,
                _FAULT_MESSAGES.get(decision.status, "Server error"),
                headers,
            ), str(decision.status)
        response = route.handler(request)
        if decision.body and response.status == 200 and response.body:
            response.body = _corrupt(response.body, decision.body)
            return response, decision.body
        return response, "slow" if decision.delay else None

    def authenticate(self, request: Request) -> AccessToken | None:
        route = request.route
        token = self.tokens.get(request.bearer)
        if token is None and route.provider == "okta":
            header = request.headers.get("authorization", "")
            if header[:5].upper() == "SSWS ":
                token = self.tokens.get(header[5:].strip())
        if token is None and route.provider == "slack":
            token = self.tokens.get(request.arg("token"))
        if token is None:
            raise _AuthFailure(self.auth_error(route.provider, route.resource, expired=False))
        expired = token.expired or token.expires_at < self.now() / SECOND
        if expired:
            raise _AuthFailure(self.auth_error(route.provider, route.resource, expired=True))
        accepted = route.auth.split("|")
        if token.audience not in accepted and token.vendor not in accepted:
            raise _AuthFailure(self.wrong_token_error(route.provider, route.resource, token))
        request.params["_token_subject"] = token.subject or ""
        request.params["_token_audience"] = token.audience
        return token

    # ---------------------------------------------------------------- error shapes

    def error(
        self,
        provider: str,
        resource: str,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        from simulator.vendors.errors import vendor_error

        return vendor_error(self, provider, resource, status, code, message, headers or {})

    def auth_error(self, provider: str, resource: str, expired: bool) -> Response:
        from simulator.vendors.errors import auth_error

        return auth_error(self, provider, resource, expired)

    def wrong_token_error(self, provider: str, resource: str, token: AccessToken) -> Response:
        from simulator.vendors.errors import wrong_token_error

        return wrong_token_error(self, provider, resource, token)

    def _error_for_path(self, path: str, status: int, code: str, message: str) -> Response:
        provider = (
            "okta"
            if path.startswith(("/api/v1/", "/oauth2/"))
            else "slack"
            if path.startswith(("/api/", "/audit/"))
            else "google"
            if path.startswith(("/admin/", "/drive/", "/gmail/", "/v1/"))
            else "m365"
        )
        return self.error(provider, "", status, code, message)

    def _log(self, request: Request, response: Response, fault: str | None) -> None:
        route = request.route
        self.requests.append(
            {
                "at": time.time(),
                "method": request.method,
                "path": request.path,
                "query": request.raw_query,
                "status": response.status,
                "provider": route.provider if route else None,
                "resource": route.resource if route else None,
                "fault": fault,
                "audience": request.params.get("_token_audience"),
                "batch": request.batch,
            }
        )

    def request_id(self) -> str:
        return str(uuid.uuid4())


class _AuthFailure(ApiError):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status, "auth", "authentication failed")
        self.response = response


_FAULT_MESSAGES = {
    403: "Insufficient privileges to complete the operation.",
    429: "Too many requests. Retry after the interval in the Retry-After header.",
    500: "An internal server error occurred. Please retry.",
    502: "Bad gateway.",
    503: "The service is temporarily unavailable. Please retry.",
    504: "Gateway timeout.",
}


def _corrupt(body: bytes, kind: str) -> bytes:
    if kind == "truncated":
        return body[: max(1, len(body) // 2)]
    return body[: max(1, len(body) // 3)] + b'<html><body>upstream error</body></html>"}'


def _jira_info(sim: Simulator) -> dict[str, str]:
    from simulator.vendors.jira import credentials

    user, token = credentials(sim)
    return {"jira.base_url": f"{sim.base_url}/jira", "jira.user": user, "jira.token": token}
