"""Google Workspace Reports API activities, stored one record per entry of ``events[]``.

Each record copies `id`, `actor`, `ipAddress` (and the other activity-level fields) from the
activity, puts `type`/`name` at the top level, turns `parameters` into a name→value dict, keeps
its position as `event_index`, and keeps the raw activity under `activity`. Its provider id is
``"{id.time}/{id.uniqueQualifier}/{event_index}"``. Exports already in that one-record-per-event
form are accepted as they are (their `event_index`, when absent, is assigned by the caller in
file order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.normalise.records import (
    EventStream,
    NormalisedEvent,
    NormalisedMessage,
    NormaliseError,
    checked_id,
    required_time,
    strip_port,
    text,
    to_datetime,
)
from core.paths import dig

VALUE_SLOTS = (
    "value",
    "intValue",
    "boolValue",
    "multiValue",
    "multiIntValue",
    "messageValue",
    "multiMessageValue",
)
# The parameter that names what an event acted on, by preference.
_TARGET_PARAMETERS = (
    "doc_title",
    "doc_id",
    "USER_EMAIL",
    "target_user",
    "app_name",
    "client_id",
    "SETTING_NAME",
    "ROLE_NAME",
    "GROUP_EMAIL",
)


def parameters_dict(parameters: Any) -> dict[str, Any]:
    """Reports API `parameters` list of {name, value|intValue|...} -> {name: value}; dicts pass."""
    if isinstance(parameters, Mapping):
        return dict(parameters)
    if parameters is None:
        return {}
    if not isinstance(parameters, list):
        raise NormaliseError(f"'parameters' must be a list or an object, got {type(parameters).__name__}")
    out: dict[str, Any] = {}
    for param in parameters:
        if isinstance(param, Mapping) and "name" in param:
            out[str(param["name"])] = _nested(next((param[s] for s in VALUE_SLOTS if s in param), None))
    return out


def _nested(value: Any) -> Any:
    """A message value (`{"parameter": [...]}`, Gmail's event_info/message_info) as a dict, a
    multi-message value as a list of dicts, so rules read `parameters.message_info.subject`."""
    if isinstance(value, Mapping) and isinstance(value.get("parameter"), list):
        return parameters_dict(value["parameter"])
    if isinstance(value, list) and value and all(isinstance(v, Mapping) and "parameter" in v for v in value):
        return [parameters_dict(v["parameter"]) for v in value]
    return value


def provider_event_id(activity_id: Mapping[str, Any], index: int) -> str:
    time = dig(activity_id, "time")
    qualifier = dig(activity_id, "uniqueQualifier")
    if time in (None, "") or qualifier in (None, ""):
        raise NormaliseError("activity has no id.time / id.uniqueQualifier (the provider's event id)")
    return checked_id(
        f"{checked_id(time, 'id.time')}/{checked_id(qualifier, 'id.uniqueQualifier')}/{index}", "the event id"
    )


def is_raw_activity(record: Mapping[str, Any]) -> bool:
    return isinstance(dig(record, "events"), list) and dig(record, "name") is None


def explode_activity(activity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One raw activity -> its one-record-per-event records (positions kept as `event_index`)."""
    events = dig(activity, "events")
    if not isinstance(events, list) or not events:
        raise NormaliseError("activity has no events[]")
    shared = {k: v for k, v in activity.items() if k != "events"}
    records = []
    for index, entry in enumerate(events):
        if not isinstance(entry, Mapping):
            raise NormaliseError(f"events[{index}] is not an object")
        record = {**shared, **entry}
        record["parameters"] = parameters_dict(entry.get("parameters"))
        record["event_index"] = index
        record["activity"] = dict(activity)
        records.append(record)
    return records


def _outcome(name: str | None, parameters: Mapping[str, Any]) -> str | None:
    if not name:
        return None
    if "failure" in name or name.endswith("_failed"):
        return "failure"
    if "success" in name:
        return "success"
    return None


def _target(parameters: Mapping[str, Any]) -> Any:
    for key in _TARGET_PARAMETERS:
        value = parameters.get(key)
        if value not in (None, "", []):
            return value
    return None


def event_from_record(record: Mapping[str, Any]) -> NormalisedEvent:
    """A one-record-per-event record -> the stored event."""
    data = dict(record)
    activity_id = dig(data, "id")
    if not isinstance(activity_id, Mapping):
        raise NormaliseError("record has no 'id' object (id.time, id.uniqueQualifier)")
    try:
        index = int(data.get("event_index", 0) or 0)
    except (TypeError, ValueError):
        raise NormaliseError(f"event_index {data.get('event_index')!r} is not a number") from None
    data["event_index"] = index
    data["parameters"] = parameters_dict(data.get("parameters"))
    name = dig(data, "name")
    actor = dig(data, "actor", "email") or dig(data, "actor", "profileId") or dig(data, "actor", "key")
    return NormalisedEvent(
        provider_event_id=provider_event_id(activity_id, index),
        occurred_at=required_time(data, "id.time"),
        raw=data,
        actor=text(actor, 500),
        action=text(name, 300),
        target=text(_target(data["parameters"]), 1000),
        ip=strip_port(dig(data, "ipAddress")),
        outcome=_outcome(name if isinstance(name, str) else None, data["parameters"]),
    )


def normalise_google(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """A raw activity (fans out) or a record already in one-record-per-event form."""
    if is_raw_activity(record):
        return [event_from_record(r) for r in explode_activity(record)]
    if dig(record, "name") is None:
        raise NormaliseError("record is neither an activity (events[]) nor a per-event record (name)")
    return [event_from_record(record)]


# ---- conversations ---------------------------------------------------------------------------


def _header(message: Mapping[str, Any], name: str) -> str | None:
    for header in dig(message, "payload", "headers") or []:
        if isinstance(header, Mapping) and str(header.get("name", "")).lower() == name.lower():
            return str(header.get("value", ""))
    return None


def _plain_text(payload: Mapping[str, Any]) -> str:
    """The text/plain parts of a Gmail payload, decoded (base64url)."""
    import base64

    parts: list[str] = []
    stack = [payload]
    while stack:
        part = stack.pop(0)
        if not isinstance(part, Mapping):
            continue
        mime = str(part.get("mimeType", ""))
        data = dig(part, "body", "data")
        if data and (mime.startswith("text/plain") or not mime):
            padded = str(data) + "=" * (-len(str(data)) % 4)
            try:
                parts.append(base64.urlsafe_b64decode(padded).decode("utf-8", "replace"))
            except (ValueError, TypeError):
                raise NormaliseError("Gmail message body is not base64url") from None
        stack.extend(part.get("parts") or [])
    return "\n".join(parts)


def normalise_gmail_message(message: Mapping[str, Any], mailbox: str | None = None) -> NormalisedMessage:
    """A message from `users.threads.get(format=full)`; falls back to the snippet."""
    message_id = dig(message, "id")
    if not message_id:
        raise NormaliseError("Gmail message has no 'id'")
    internal = dig(message, "internalDate")
    if internal in (None, ""):
        raise NormaliseError(f"Gmail message {message_id} has no internalDate")
    try:
        sent_at = to_datetime(int(internal) / 1000, "internalDate")
    except (TypeError, ValueError):
        raise NormaliseError(
            f"Gmail message {message_id}: internalDate {internal!r} is not a number"
        ) from None
    payload = dig(message, "payload") or {}
    body = _plain_text(payload) if isinstance(payload, Mapping) else ""
    return NormalisedMessage(
        provider_message_id=checked_id(message_id, "message id"),
        sent_at=sent_at,
        text=body or str(dig(message, "snippet") or ""),
        channel=text(mailbox, 300),
        thread_id=text(dig(message, "threadId"), 300),
        author=text(_header(message, "From"), 320),
        subject=text(_header(message, "Subject"), 1000),
        meta={"to": _header(message, "To"), "labels": dig(message, "labelIds") or []},
    )


# One normaliser for every Reports API application tenantguard reads.
EVENT_STREAMS = {
    app: EventStream(normalise_google, ("id.uniqueQualifier",), ("id.time",))
    for app in ("login", "admin", "drive", "token", "saml", "user_accounts", "takeout", "gmail_log", "mobile")
}
