"""Official clients pointed at a simulator: msal + requests for Microsoft, google-api-python-client
with service-account credentials, slack_sdk WebClient and AuditLogsClient."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msal
import pytest
import requests
from google.oauth2 import service_account
from googleapiclient.discovery import build
from requests.adapters import HTTPAdapter
from slack_sdk import WebClient
from slack_sdk.audit_logs import AuditLogsClient
from urllib3.util.retry import Retry

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
MANAGE_SCOPE = ["https://manage.office.com/.default"]
GOOGLE_ADMIN_SCOPES = [
    "https://www.googleapis.com/auth/admin.reports.audit.readonly",
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.user.security",
    "https://www.googleapis.com/auth/admin.directory.rolemanagement",
    "https://www.googleapis.com/auth/cloud-identity.policies",
    "https://www.googleapis.com/auth/drive",
]


def tls_session(info: dict[str, Any]) -> requests.Session:
    """Recipe A: REQUESTS_CA_BUNDLE would override `verify`, so ignore the environment."""
    session = requests.Session()
    session.trust_env = False
    session.verify = info["m365.ca_bundle"]
    return session


def msal_app(info: dict[str, Any], credential: Any = None) -> msal.ConfidentialClientApplication:
    """A fresh app each time: msal caches tokens and throttling per instance."""
    return msal.ConfidentialClientApplication(
        info["m365.client_id"],
        client_credential=credential or info["m365.client_secret"],
        authority=info["m365.authority"],
        instance_discovery=False,
        http_client=tls_session(info),
    )


def graph_token(info: dict[str, Any], scopes: list[str] = GRAPH_SCOPE) -> str:
    result = msal_app(info).acquire_token_for_client(scopes)
    assert "access_token" in result, result
    return str(result["access_token"])


def graph_session(token: str, retries: int = 0) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token}"
    if retries:
        retry = Retry(
            total=retries,
            status_forcelist=[429, 500, 502, 503, 504],
            respect_retry_after_header=True,
            allowed_methods=None,
            raise_on_status=False,
            backoff_factor=0,
        )
        session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


@pytest.fixture
def graph() -> Callable[..., requests.Session]:
    """graph(info, retries=0) -> a requests session with a Graph token from msal."""

    def make(info: dict[str, Any], retries: int = 0, scopes: list[str] = GRAPH_SCOPE) -> requests.Session:
        return graph_session(graph_token(info, scopes), retries)

    return make


def google_credentials(
    info: dict[str, Any], scopes: list[str] | None = None, subject: str | None = None
) -> service_account.Credentials:
    creds = service_account.Credentials.from_service_account_file(
        info["google.service_account_file"], scopes=scopes or GOOGLE_ADMIN_SCOPES
    )
    return creds.with_subject(subject or info["google.subject"])


@pytest.fixture
def google() -> Callable[..., Any]:
    """google(info, "admin", "reports_v1", scopes=..., subject=...) -> a discovery client on the simulator."""

    def make(
        info: dict[str, Any],
        api: str,
        version: str,
        scopes: list[str] | None = None,
        subject: str | None = None,
        credentials: Any = None,
    ) -> Any:
        endpoint = info["google.drive_api_endpoint"] if api == "drive" else info["google.api_endpoint"]
        return build(
            api,
            version,
            credentials=credentials or google_credentials(info, scopes, subject),
            client_options={"api_endpoint": endpoint},
            static_discovery=True,
            cache_discovery=False,
        )

    return make


@pytest.fixture
def slack() -> Callable[..., WebClient]:
    def make(info: dict[str, Any], token: str = "slack.bot_token", **kwargs: Any) -> WebClient:
        return WebClient(token=info[token], base_url=info["slack.base_url"], **kwargs)

    return make


@pytest.fixture
def audit_logs() -> Callable[..., AuditLogsClient]:
    def make(info: dict[str, Any], token: str | None = None, **kwargs: Any) -> AuditLogsClient:
        return AuditLogsClient(
            token=token or info["slack.audit_token"], base_url=info["slack.audit_base_url"], **kwargs
        )

    return make
