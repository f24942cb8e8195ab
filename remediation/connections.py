"""The write gateway for a stored Connection, from its provider's module (:mod:`providers`): same
auth, TLS, timeouts and retry rules as the read side; writes retried only because every
catalogue action is idempotent."""

from __future__ import annotations

from typing import Any

import providers
from core.models import Connection
from providers.calls import CallLog
from providers.credentials import Secrets
from providers.errors import ProviderError
from remediation.errors import ConnectionUnavailable


def open_gateway(connection: Connection | None, log: CallLog) -> Any:
    """The provider gateway for one connection; ConnectionUnavailable says what is missing."""
    if connection is None:
        raise ConnectionUnavailable("the step has no connection: add one for its provider, then plan again")
    if not connection.enabled:
        raise ConnectionUnavailable(
            f"connection {connection.name!r} is disabled; enable it to run remediation"
        )
    try:
        provider = providers.get(connection.provider)
    except KeyError:
        raise ConnectionUnavailable(
            f"connection {connection.name!r} has unknown provider {connection.provider!r}"
        ) from None
    try:
        return provider.open_gateway(connection, Secrets(connection.secret_refs or {}), log)
    except ProviderError as exc:
        raise ConnectionUnavailable(f"connection {connection.name!r}: {exc}") from None
