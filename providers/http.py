"""requests sessions for providers spoken to over plain HTTP (Microsoft today): timeouts, TLS,
proxy, and urllib3 retries that wait exactly `Retry-After`.

Everything a session needs besides secrets comes from ``Connection.config`` (``timeout``,
``ca_bundle``, ``proxy``), so the same code talks to the SaaS in production and to the simulator
in tests. ``REQUESTS_CA_BUNDLE`` overrides ``Session.verify``, so when a CA bundle is configured
the session ignores the environment (``trust_env=False``) and verifies against that bundle.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from core.models.connection import Connection
from providers.errors import ConnectionConfigError

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 6
RETRY_STATUSES = (429, 500, 502, 503, 504)


def require(connection: Connection, key: str) -> Any:
    """A config value the connection cannot work without."""
    value = connection.config.get(key)
    if value in (None, ""):
        raise ConnectionConfigError(
            f"connection {connection.name!r} ({connection.provider}) has no {key!r} in its config"
        )
    return value


def timeout_of(connection: Connection) -> float:
    return float(connection.config.get("timeout", DEFAULT_TIMEOUT))


class ExactRetryAfter(Retry):
    """urllib3's Retry treats `Retry-After: 0` as absent and backs off instead; wait exactly what
    the provider asked, zero included."""

    def sleep_for_retry(self, response: Any) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is None:
            return False
        if retry_after > 0:
            time.sleep(retry_after)
        return True


def http_retry(*, retries: int = DEFAULT_RETRIES, retry_writes: bool = False) -> Retry:
    """urllib3 retries: 429 waits exactly Retry-After, 5xx/timeouts back off exponentially.

    Writes (POST/PATCH/DELETE) are retried only when the caller says they are idempotent.
    """
    return ExactRetryAfter(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None if retry_writes else Retry.DEFAULT_ALLOWED_METHODS,
        respect_retry_after_header=True,
        backoff_factor=0.5,
        backoff_max=30,
        raise_on_status=False,
    )


class TimeoutSession(requests.Session):
    """A requests Session whose calls always carry a timeout (requests has no session default)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)


def http_session(
    connection: Connection, *, retries: int = DEFAULT_RETRIES, retry_writes: bool = False
) -> TimeoutSession:
    """A session for one connection: retries mounted, TLS and proxy from the connection's config."""
    session = TimeoutSession(timeout_of(connection))
    ca_bundle = connection.config.get("ca_bundle")
    if ca_bundle:
        session.trust_env = False  # else REQUESTS_CA_BUNDLE silently overrides `verify`
        session.verify = ca_bundle
    proxy = connection.config.get("proxy")
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    adapter = HTTPAdapter(max_retries=http_retry(retries=retries, retry_writes=retry_writes))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
