"""What a stream is: a provider-specific reader that yields pages, plus what it needs and stores.

A reader is a generator over `Page`s. For event and conversation streams every page carries the
checkpoint to store once that page is committed; for snapshot streams a page carries one
complete listing of an object type (compared with the stored state as a whole, so deletions
are seen). Readers do I/O through their provider's read calls (:mod:`providers`) and nothing else: storage,
fencing, retries and health are the runner's business.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import providers
from collectors.options import CollectorOptions
from collectors.retry import RetryPolicy, WaitHook
from core.models import Connection
from providers.credentials import Secrets


class StreamKind(StrEnum):
    EVENTS = "events"
    SNAPSHOT = "snapshot"
    CONVERSATION = "conversation"


@dataclass(frozen=True)
class Page:
    """One unit of work the runner commits in one transaction.

    events: `records` are raw provider records (normalised by the runner).
    conversations: `records` are `NormalisedMessage`s.
    snapshots: `objects` maps object id -> data for one complete listing of `object_type`; a
    `partial` page holds only what changed (a delta round, or the objects of the `covers` subjects
    re-read after an audit event named them): `removed` ids are gone, objects whose
    data[`covers_field`] is one of `covers` but are not in `objects` are gone, everything else is
    untouched. `merge`: each object carries at least its changed properties (Graph delta), laid
    over the stored data.
    """

    records: Sequence[Any] = ()
    cursor: Mapping[str, Any] | None = None
    source: str = ""
    window: tuple[datetime, datetime] | None = None
    object_type: str | None = None
    objects: Mapping[str, Mapping[str, Any]] | None = None
    quarantined: Sequence[tuple[str, str, Any]] = ()  # (source, reason, raw) found while reading
    partial: bool = False
    removed: Sequence[str] = ()
    covers_field: str | None = None
    covers: frozenset[str] = frozenset()
    merge: bool = False


@dataclass
class StreamContext:
    """Everything a reader may use; `api` is the provider's client wrapper, built once per run."""

    connection: Connection
    secrets: Secrets
    cursor: dict[str, Any]
    options: CollectorOptions
    policy: RetryPolicy
    now: datetime
    api: Any = None
    probe: bool = False  # `connections test`: read as little as possible, store nothing
    on_wait: WaitHook | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # snapshot streams (see collectors/inventory.py): read everything, or only what changed —
    # follow the stored delta link, or re-read the `changed` subjects named by audit events
    full_read: bool = True
    changed: frozenset[str] = frozenset()

    def setting(self, key: str, default: Any = None) -> Any:
        return self.connection.config.get(key, default)

    @property
    def page_size(self) -> int:
        if self.probe:
            return 1
        return int(self.setting("page_size", self.options.page_size))

    def page_size_up_to(self, maximum: int) -> int:
        """An event stream's page: the API's largest (`maximum`) unless a page size is configured
        (on the connection, or `TENANTGUARD_COLLECTOR_PAGE_SIZE`), then that, at most `maximum`.
        Fewer, larger pages are fewer requests against the API's rate limit and fewer commits."""
        configured = self.probe or "page_size" in self.connection.config
        if configured or "page_size" in self.options.model_fields_set:
            return min(self.page_size, maximum)
        return maximum


Reader = Callable[[StreamContext], Iterator[Page]]
_USER_NAME = re.compile(r"[^@\s\\/]+@[^@\s\\/]+\.[a-z0-9-]+", re.IGNORECASE)


def changed_users(ctx: StreamContext, key: str | None = None) -> list[str]:
    """The user names (e-mail shaped) that audit events named since the last run, within config
    `key`'s selection when one is configured — whom a per-subject inventory run re-reads."""
    chosen = {str(u).lower() for u in (ctx.setting(key) if key else None) or []} - {"*"}
    return sorted(s for s in ctx.changed if _USER_NAME.fullmatch(s) and (not chosen or s in chosen))


@dataclass(frozen=True)
class ChangeWatch:
    """Audit events of this connection that say an inventory object changed.

    An event of one of `streams` whose action contains one of `words` (case-insensitive; no words:
    every event) names its actor and target as changed subjects. `per_subject`: the reader re-reads
    just those subjects (e.g. one user's OAuth grants); otherwise any named change re-reads the
    whole listing (it is small). With no such event since the last run the stream reads nothing.
    """

    streams: tuple[str, ...]
    words: tuple[str, ...] = ()
    per_subject: bool = False

    def matches(self, action: str | None) -> bool:
        text = (action or "").lower()
        return not self.words or any(word in text for word in self.words)


@dataclass(frozen=True)
class StreamSpec:
    """One stream of one provider."""

    provider: str
    name: str
    kind: StreamKind
    read: Reader
    permission: str  # what to grant when the provider refuses (named in health and `connections test`)
    interval_seconds: int = 300
    object_types: tuple[str, ...] = ()
    needs_config: tuple[
        str, ...
    ] = ()  # conversation streams run only for what the operator selected ("a|b": either)
    needs_secret: tuple[str, ...] = ()  # one of these secret references must be configured
    enabled_by_default: bool = True
    # snapshot streams: how a run between full reconciliations finds what changed (neither: every
    # run is a full read) — the provider's delta query, or audit events naming objects
    delta: bool = False
    watch: ChangeWatch | None = None

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.name}"


_REGISTERED: dict[tuple[str, str], StreamSpec] = {}
_NOT_STREAM_MODULES = frozenset({"base", "windows"})


def register(spec: StreamSpec) -> StreamSpec:
    _REGISTERED[(spec.provider, spec.name)] = spec
    return spec


def streams_for(provider: str) -> list[StreamSpec]:
    _load_providers()
    return [spec for (p, _), spec in _REGISTERED.items() if p == provider]


def stream_spec(provider: str, name: str) -> StreamSpec:
    _load_providers()
    try:
        return _REGISTERED[(provider, name)]
    except KeyError:
        known = ", ".join(s.name for s in streams_for(provider)) or "none"
        raise KeyError(f"{provider} has no stream {name!r}; its streams are: {known}") from None


def configured_streams(connection: Connection) -> list[StreamSpec]:
    """The streams this connection runs: `config.streams` when given, else every default stream
    whose required configuration (e.g. selected channels or mailboxes) is present."""
    specs = streams_for(connection.provider)
    chosen = connection.config.get("streams")
    if chosen:
        wanted = set(chosen)
        return [s for s in specs if s.name in wanted and _runnable(connection, s)]
    return [s for s in specs if s.enabled_by_default and _runnable(connection, s)]


def _runnable(connection: Connection, spec: StreamSpec) -> bool:
    refs = connection.secret_refs or {}
    has_secret = not spec.needs_secret or any(name in refs for name in spec.needs_secret)
    return has_secret and all(_configured(connection.config, key) for key in spec.needs_config)


def _configured(config: Mapping[str, Any], key: str) -> bool:
    """`a|b`: either key is enough."""
    return any(config.get(alternative) for alternative in key.split("|"))


def missing_requirements(connection: Connection, spec: StreamSpec) -> list[str]:
    """Why a stream does not run for this connection (empty when it does)."""
    missing = [
        f"config {key.replace('|', ' or ')!r}"
        for key in spec.needs_config
        if not _configured(connection.config, key)
    ]
    refs = connection.secret_refs or {}
    if spec.needs_secret and not any(name in refs for name in spec.needs_secret):
        missing.append(f"secret {' or '.join(spec.needs_secret)}")
    return missing


def _load_providers() -> None:
    """Import every stream module of this package (each registers its streams)."""
    import collectors.streams

    for module in pkgutil.iter_modules(collectors.streams.__path__):
        if module.name not in _NOT_STREAM_MODULES:
            importlib.import_module(f"collectors.streams.{module.name}")


def open_api(ctx: StreamContext) -> Any:
    """The provider's read calls for one stream run (see :mod:`providers`)."""
    try:
        provider = providers.get(ctx.connection.provider)
    except KeyError as exc:
        raise KeyError(f"connection {ctx.connection.name!r}: {exc.args[0]}") from None
    return provider.open_reader(ctx)
