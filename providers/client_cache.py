"""Clients kept between the stream runs of one connection, so a run with nothing new makes only
its delta/list calls.

Building a client is what a quiet run used to pay for: a new msal app fetches the authority's
OpenID configuration and then a token per scope; new Google credentials exchange a signed JWT for
a token. Clients are keyed by the connection (id and name) and a fingerprint of everything they
are built from — provider, tenant, config, secret references and the values those resolve to — so
an edited connection or a rotated secret gives a new fingerprint and the connection's old clients
are dropped. A provider that refuses the credentials makes the caller `forget` the connection, so
the next run starts from scratch (msal, for one, replays a refused token request for a minute).

Only objects safe to share between threads belong here (msal apps and their token caches, Google
credentials, slack_sdk clients): the collectors run several streams of a connection at once. A
cache, never a source of truth: an empty one only costs the token requests again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import orjson

from core.models.connection import Connection
from providers.credentials import Secrets
from providers.errors import SecretUnavailable

T = TypeVar("T")
ConnectionKey = tuple[Any, str]


def connection_key(connection: Connection) -> ConnectionKey:
    return (connection.id, connection.name)


def fingerprint(connection: Connection, secrets: Secrets) -> str:
    """A digest of what a client of this connection is built from; secret values enter only hashed."""
    values: dict[str, str] = {}
    for name in sorted(secrets):
        try:
            values[name] = secrets[name]
        except SecretUnavailable as exc:
            values[name] = f"unavailable: {exc}"
    material = orjson.dumps(
        [connection.provider, connection.tenant, connection.config, connection.secret_refs or {}, values],
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(material).hexdigest()


class _Entry:
    def __init__(self, digest: str) -> None:
        self.digest = digest
        self.lock = threading.Lock()  # one build at a time per connection
        self.clients: OrderedDict[Hashable, Any] = OrderedDict()


class ConnectionClients:
    """Clients per connection, least recently used dropped first (connections, and clients within
    one connection: a stream impersonating every user holds one credential per user)."""

    def __init__(self, *, max_connections: int = 4096, max_per_connection: int = 4096) -> None:
        self.max_connections = max_connections
        self.max_per_connection = max_per_connection
        self._lock = threading.Lock()
        self._entries: OrderedDict[ConnectionKey, _Entry] = OrderedDict()
        self.builds = 0  # how many clients were built (not found): tests and benchmarks read it

    def get(self, connection: Connection, secrets: Secrets, what: Hashable, build: Callable[[], T]) -> T:
        """The client `what` of this connection, built by `build` when missing or stale."""
        entry = self._entry(connection_key(connection), fingerprint(connection, secrets))
        with entry.lock:
            if what in entry.clients:
                entry.clients.move_to_end(what)
                return entry.clients[what]
            client = build()
            entry.clients[what] = client
            while len(entry.clients) > self.max_per_connection:
                entry.clients.popitem(last=False)
            self.builds += 1
            return client

    def forget(self, connection: Connection) -> None:
        """Drop every client of the connection (its credentials were refused)."""
        with self._lock:
            self._entries.pop(connection_key(connection), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _entry(self, key: ConnectionKey, digest: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.digest != digest:
                entry = self._entries[key] = _Entry(digest)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_connections:
                self._entries.popitem(last=False)
            return entry


CLIENTS = ConnectionClients()
