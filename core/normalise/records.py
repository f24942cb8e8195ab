"""The values normalisers hand to the store, and the field access they share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.clock import parse_time
from core.paths import get_path

_MISSING: Any = object()


class NormaliseError(ValueError):
    """A record is not what its stream promises; the message says which field is wrong."""


@dataclass(frozen=True, slots=True)
class NormalisedEvent:
    """One event ready to store: the provider's own id, when it happened, and a few indexed fields."""

    provider_event_id: str
    occurred_at: datetime
    raw: dict[str, Any]
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    ip: str | None = None
    country: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class NormalisedMessage:
    """One chat/mail message in clear text; the store redacts `text`/`subject` before writing."""

    provider_message_id: str
    sent_at: datetime
    text: str
    channel: str | None = None
    thread_id: str | None = None
    author: str | None = None
    subject: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


Normaliser = Callable[[Mapping[str, Any]], list[NormalisedEvent]]


@dataclass(frozen=True)
class EventStream:
    """One provider event stream as the normalisers know it: its normaliser and where its records
    carry the provider's event id and the event time (any of these paths; the first is the one
    :func:`core.normalise.with_event_identity` fills in).

    A provider module of this package lists its streams in ``EVENT_STREAMS = {name: EventStream}``;
    ``core.normalise`` discovers the modules by itself, so nothing else lists them.
    """

    normalise: Normaliser
    id_paths: tuple[str, ...]
    time_paths: tuple[str, ...]


def text(value: Any, limit: int) -> str | None:
    """A column-sized string, or None for empty values."""
    if value is None or value == "":
        return None
    result = value if isinstance(value, str) else str(value)
    return result[:limit]


MAX_ID_LENGTH = 500  # Event.provider_event_id / Message.provider_message_id


def checked_id(value: Any, name: str) -> str:
    """A provider id as text: a string or an integer, short enough for its column."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise NormaliseError(f"{name} must be a string or a number, not {type(value).__name__}")
    text_value = str(value)
    if len(text_value) > MAX_ID_LENGTH:
        raise NormaliseError(
            f"{name} is {len(text_value)} characters long; provider ids are at most {MAX_ID_LENGTH}"
        )
    return text_value


def required_id(record: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = get_path(record, name)
        if value not in (None, ""):
            return checked_id(value, repr(name))
    raise NormaliseError(f"record has no {' or '.join(repr(n) for n in names)} (the provider's event id)")


def required_time(record: Mapping[str, Any], *names: str) -> datetime:
    for name in names:
        value = get_path(record, name)
        if value in (None, ""):
            continue
        return to_datetime(value, name)
    raise NormaliseError(f"record has no {' or '.join(repr(n) for n in names)} (the event time)")


def required_identity(
    record: Mapping[str, Any], *, ids: tuple[str, ...], times: tuple[str, ...]
) -> dict[str, Any]:
    """``provider_event_id`` and ``occurred_at`` of a record, for ``NormalisedEvent(**...)``; one
    error naming every problem (a record missing both its id and its time says both)."""
    found: dict[str, Any] = {}
    problems: list[str] = []
    for key, read in (
        ("provider_event_id", lambda: required_id(record, *ids)),
        ("occurred_at", lambda: required_time(record, *times)),
    ):
        try:
            found[key] = read()
        except NormaliseError as exc:
            problems.append(str(exc).removeprefix("record "))
    if problems:
        raise NormaliseError("record " + "; and ".join(problems))
    return found


def to_datetime(value: Any, name: str = "time") -> datetime:
    """ISO 8601 text (any fraction length, with or without zone) or epoch seconds (number or text)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            stripped = value.strip()
            try:
                return datetime.fromtimestamp(float(stripped), UTC)
            except ValueError:
                return parse_time(stripped)
        raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise NormaliseError(f"{name} {value!r} is not a time (expected ISO 8601 or epoch seconds)") from None


def strip_port(address: Any) -> str | None:
    """`1.2.3.4:443` / `[2001:db8::1]:443` -> the address alone (the unified audit log adds ports)."""
    if not isinstance(address, str) or not address:
        return None
    value = address.strip()
    if value.startswith("["):
        return value[1:].split("]", 1)[0][:64]
    if value.count(":") == 1:
        return value.split(":", 1)[0][:64]
    return value[:64]
