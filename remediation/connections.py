"""Gateways for a stored Connection, built with the collectors' client factories (same auth,
TLS, timeouts and retry rules as the read side; writes retried only because every catalogue
action is idempotent)."""

from __future__ import annotations

from typing import Any

from core.models import Connection, Provider
from remediation.errors import ConnectionUnavailable
from remediation.gateways import CallLog, GoogleGateway, GoogleServices, GraphGateway, SlackGateway

GOOGLE_WRITE_SCOPES = {
    "directory": (
        "https://www.googleapis.com/auth/admin.directory.user",
        "https://www.googleapis.com/auth/admin.directory.user.security",
        "https://www.googleapis.com/auth/admin.directory.rolemanagement",
    ),
    "drive": ("https://www.googleapis.com/auth/drive",),
}
# Our token kinds -> the connection's secret names, first one configured wins.
SLACK_TOKENS = {"bot": ("bot_token",), "admin": ("admin_token",), "user": ("user_token", "admin_token")}


def open_gateway(connection: Connection | None, log: CallLog) -> Any:
    """The provider gateway for one connection; ConnectionUnavailable says what is missing."""
    from collectors.credentials import Secrets
    from collectors.errors import CollectorError

    if connection is None:
        raise ConnectionUnavailable("the step has no connection: add one for its provider, then plan again")
    if not connection.enabled:
        raise ConnectionUnavailable(
            f"connection {connection.name!r} is disabled; enable it to run remediation"
        )
    secrets = Secrets(connection.secret_refs or {})
    try:
        if connection.provider == Provider.M365:
            return _graph(connection, secrets, log)
        if connection.provider == Provider.GOOGLE:
            return _google(connection, secrets, log)
        if connection.provider == Provider.SLACK:
            return _slack(connection, secrets, log)
    except CollectorError as exc:
        raise ConnectionUnavailable(f"connection {connection.name!r}: {exc}") from None
    raise ConnectionUnavailable(
        f"connection {connection.name!r} has unknown provider {connection.provider!r}"
    )


def _graph(connection: Connection, secrets: Any, log: CallLog) -> GraphGateway:
    from collectors.clients import m365_clients

    clients = m365_clients(connection, secrets, retry_writes=True)
    return GraphGateway(clients.graph, clients.graph_base_url, log)


def _google(connection: Connection, secrets: Any, log: CallLog) -> GoogleGateway:
    from collectors.clients import google_service

    directory = google_service(connection, secrets, "directory", scopes=GOOGLE_WRITE_SCOPES["directory"])
    drive = google_service(connection, secrets, "drive", scopes=GOOGLE_WRITE_SCOPES["drive"])
    return GoogleGateway(GoogleServices(directory=directory, drive=drive), log)


def _slack(connection: Connection, secrets: Any, log: CallLog) -> SlackGateway:
    from collectors.clients import slack_audit_client, slack_web_client

    clients: dict[str, Any] = {}
    for kind, names in SLACK_TOKENS.items():
        name = next((n for n in names if n in secrets), None)
        if name is not None:
            clients[kind] = slack_web_client(connection, secrets, token=name)
    if "audit_token" in secrets:
        clients["audit"] = slack_audit_client(connection, secrets)
    return SlackGateway(clients, log, team_id=connection.config.get("team_id") or connection.tenant or None)
