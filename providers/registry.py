"""The provider registry: one module per SaaS in this package registers a :class:`ProviderSpec`.

Modules are discovered by importing every module of the ``providers`` package (pkgutil), so a
provider is added by adding its module; nothing else lists providers.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from core.models.connection import Connection
from providers.calls import CallLog
from providers.credentials import Secrets

T = TypeVar("T")
# Modules of this package that are machinery, not providers.
_NOT_PROVIDERS = frozenset({"calls", "client_cache", "credentials", "errors", "http", "registry"})


class RetryRunner(Protocol):
    """Runs one call under a retry policy (the collectors' `RetryPolicy` is one)."""

    def run(self, call: Callable[[], T], *, on_wait: Any = None) -> T: ...

    def backoff(self, attempt: int) -> float: ...


class ReadContext(Protocol):
    """What a provider's read calls use from their caller (the collectors' `StreamContext`)."""

    connection: Connection
    secrets: Secrets
    on_wait: Any
    probe: bool

    @property
    def policy(self) -> RetryRunner:
        """Read-only, so a caller's concrete policy class satisfies it (attributes are invariant)."""
        ...

    def setting(self, key: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class ProviderSpec:
    """One SaaS provider: how to open its read calls and its (recording) write calls."""

    name: str  # the value of `Connection.provider`
    title: str
    open_reader: Callable[[ReadContext], Any]
    open_gateway: Callable[[Connection, Secrets, CallLog], Any]
    # What a connection definition must have (checked by `collectors.connections.validate`):
    # config keys, and secret references — each inner tuple: at least one of these.
    required_config: tuple[str, ...] = ()
    required_secrets: tuple[tuple[str, ...], ...] = ()


_PROVIDERS: dict[str, ProviderSpec] = {}


def register(spec: ProviderSpec) -> ProviderSpec:
    _PROVIDERS[spec.name] = spec
    return spec


def _discover() -> None:
    import providers

    for module in pkgutil.iter_modules(providers.__path__):
        if module.name not in _NOT_PROVIDERS and not module.name.startswith("_"):
            importlib.import_module(f"providers.{module.name}")


def get(name: str) -> ProviderSpec:
    """The registered provider `name`; KeyError naming the known ones otherwise."""
    _discover()
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise KeyError(f"unknown provider {name!r}; expected one of {sorted(_PROVIDERS)}") from None


def names() -> list[str]:
    """The registered providers' names, sorted."""
    _discover()
    return sorted(_PROVIDERS)


def registered() -> Iterator[ProviderSpec]:
    """Every provider, in name order."""
    _discover()
    return iter(sorted(_PROVIDERS.values(), key=lambda spec: spec.name))
