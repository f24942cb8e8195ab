"""Microsoft 365 / Entra records: Graph objects, Azure Monitor diagnostic exports, unified audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from core.normalise.records import (
    EventStream,
    NormalisedEvent,
    NormalisedMessage,
    NormaliseError,
    required_id,
    required_identity,
    strip_port,
    text,
    to_datetime,
)
from core.paths import dig


def unwrap_azure_monitor(record: Mapping[str, Any]) -> dict[str, Any]:
    """An Azure Monitor export wraps the Graph object in `properties`; return the Graph object.

    The wrapper's own fields (`time`, `category`, `callerIpAddress`, ...) are kept at the top
    level where the Graph object has no field of that name — the same shape the detection
    engine builds from an export, so a rule sees one shape whichever way the event arrived —
    and the export's own view stays under `properties`, so a rule written for the export
    (`properties.result`, `properties.targetResources`) matches it too.
    """
    properties = dig(record, "properties")
    if not (
        isinstance(properties, Mapping)
        and (dig(record, "category") is not None or dig(record, "operationName") is not None)
    ):
        return dict(record)
    graph = dict(properties)
    present = {key.lower() for key in graph if isinstance(key, str)}
    for key, value in record.items():
        if isinstance(key, str) and key.lower() != "properties" and key.lower() not in present:
            graph[key] = value
    graph["properties"] = properties
    return graph


# Log Analytics tables of Entra sign-ins (a query's results exported as JSON or CSV).
_LOG_ANALYTICS_SIGNINS = {
    "signinlogs",
    "aadnoninteractiveusersigninlogs",
    "aadserviceprincipalsigninlogs",
    "aadmanagedidentitysigninlogs",
}


def _dynamic(value: Any) -> Any:
    """Log Analytics writes dynamic columns (`Status`, `LocationDetails` ...) as JSON text in
    exports; parse them back into objects."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def from_log_analytics(record: Mapping[str, Any]) -> dict[str, Any]:
    """A Log Analytics `SigninLogs` row (columns are the Graph properties in PascalCase, which
    field access ignores) as the Graph signIn: dynamic columns parsed, `LocationDetails` as
    `location` (the row's `Location` column is only the country code), `TimeGenerated` as the
    time when `CreatedDateTime` is missing. Anything else is returned as it is."""
    table = str(dig(record, "Type") or "").lower()
    if table not in _LOG_ANALYTICS_SIGNINS and dig(record, "TimeGenerated") is None:
        return dict(record)
    row = {key: _dynamic(value) for key, value in record.items()}
    details = dig(row, "LocationDetails")
    country = dig(row, "Location")
    if isinstance(details, Mapping) or isinstance(country, str):
        row = {k: v for k, v in row.items() if str(k).lower() not in ("location", "locationdetails")}
        location = dict(details) if isinstance(details, Mapping) else {}
        if isinstance(country, str) and country and not location.get("countryOrRegion"):
            location["countryOrRegion"] = country
        row["location"] = location
    _fill_from_wrapper(row, "createdDateTime", "TimeGenerated")
    return row


def _status_from_result(graph: dict[str, Any]) -> None:
    """An export whose outcome is only in the wrapper's `resultType` (and `resultDescription`)
    gets the Graph `status.errorCode` (and `failureReason`) rules read."""
    if dig(graph, "status", "errorCode") is not None:
        return
    code = dig(graph, "resultType")
    if code is None or not str(code).strip().lstrip("-").isdigit():
        return
    status = dig(graph, "status")
    status = dict(status) if isinstance(status, Mapping) else {}
    status["errorCode"] = int(str(code).strip())
    reason = dig(graph, "resultDescription")
    if reason not in (None, "") and status.get("failureReason") in (None, ""):
        status["failureReason"] = reason
    for key in [k for k in graph if isinstance(k, str) and k.lower() == "status"]:
        del graph[key]
    graph["status"] = status


def _location_object(graph: dict[str, Any]) -> None:
    """A wrapper whose `location` is a country code, not the Graph object, as {countryOrRegion}."""
    location = dig(graph, "location")
    if isinstance(location, str):
        for key in [k for k in graph if isinstance(k, str) and k.lower() == "location"]:
            del graph[key]
        graph["location"] = {"countryOrRegion": location} if location else {}


def _fill_from_wrapper(graph: dict[str, Any], field: str, *wrapper_fields: str) -> None:
    if dig(graph, field) in (None, ""):
        for name in wrapper_fields:
            value = dig(graph, name)
            if value not in (None, ""):
                graph[field] = value
                return


def normalise_signin(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Graph `/auditLogs/signIns` object (interactive or not), or its Azure Monitor export."""
    graph = from_log_analytics(unwrap_azure_monitor(record))
    _fill_from_wrapper(graph, "createdDateTime", "time")
    _fill_from_wrapper(graph, "ipAddress", "callerIpAddress")
    _status_from_result(graph)
    _location_object(graph)
    error_code = dig(graph, "status", "errorCode")
    interactive = dig(graph, "isInteractive")
    if interactive is None:
        event_types = dig(graph, "signInEventTypes") or []
        interactive = "interactiveUser" in event_types if event_types else True
    outcome = None
    if error_code is not None:
        outcome = "success" if str(error_code) == "0" else "failure"
    return [
        NormalisedEvent(
            **required_identity(graph, ids=("id",), times=("createdDateTime",)),
            raw=graph,
            actor=text(dig(graph, "userPrincipalName") or dig(graph, "userId"), 500),
            action="signin" if interactive else "signin_noninteractive",
            target=text(dig(graph, "appDisplayName") or dig(graph, "resourceDisplayName"), 1000),
            ip=strip_port(dig(graph, "ipAddress")),
            country=text(dig(graph, "location", "countryOrRegion"), 8),
            outcome=outcome,
        )
    ]


def normalise_directory_audit(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Graph `/auditLogs/directoryAudits` object, or its Azure Monitor export (category AuditLogs)."""
    graph = unwrap_azure_monitor(record)
    _fill_from_wrapper(graph, "activityDateTime", "time")
    user = dig(graph, "initiatedBy", "user") or {}
    app = dig(graph, "initiatedBy", "app") or {}
    targets = dig(graph, "targetResources") or []
    first_target = (
        targets[0] if isinstance(targets, list) and targets and isinstance(targets[0], Mapping) else {}
    )
    return [
        NormalisedEvent(
            **required_identity(graph, ids=("id",), times=("activityDateTime",)),
            raw=graph,
            actor=text(dig(user, "userPrincipalName") or dig(app, "displayName") or dig(user, "id"), 500),
            action=text(dig(graph, "activityDisplayName") or dig(graph, "operationName"), 300),
            target=text(dig(first_target, "userPrincipalName") or dig(first_target, "displayName"), 1000),
            ip=strip_port(dig(user, "ipAddress")),
            outcome=text(dig(graph, "result"), 50),
        )
    ]


def normalise_unified_audit(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Office 365 Management Activity API record (`CreationTime` has no zone: UTC)."""
    data = dict(record)
    return [
        NormalisedEvent(
            **required_identity(data, ids=("Id",), times=("CreationTime",)),
            raw=data,
            actor=text(dig(data, "UserId"), 500),
            action=text(dig(data, "Operation"), 300),
            target=text(dig(data, "ObjectId") or dig(data, "SourceFileName"), 1000),
            # Entra ID records leave ClientIP empty and carry the caller's address in ActorIpAddress
            ip=strip_port(
                dig(data, "ClientIP") or dig(data, "ClientIPAddress") or dig(data, "ActorIpAddress")
            ),
            outcome=text(dig(data, "ResultStatus"), 50),
        )
    ]


def normalise_risk_detection(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Graph `/identityProtection/riskDetections` object."""
    data = dict(record)
    return [
        NormalisedEvent(
            **required_identity(data, ids=("id",), times=("detectedDateTime", "activityDateTime")),
            raw=data,
            actor=text(dig(data, "userPrincipalName") or dig(data, "userId"), 500),
            action=text(dig(data, "riskEventType"), 300),
            target=text(dig(data, "riskLevel"), 1000),
            ip=strip_port(dig(data, "ipAddress")),
            country=text(dig(data, "location", "countryOrRegion"), 8),
            outcome=text(dig(data, "riskState"), 50),
        )
    ]


def _evidence(data: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    evidence = dig(data, "evidence")
    if not isinstance(evidence, list):
        return []
    suffix = f".{kind}".lower()
    return [
        e
        for e in evidence
        if isinstance(e, Mapping) and str(e.get("@odata.type") or "").lower().endswith(suffix)
    ]


def normalise_security_alert(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Graph `/security/alerts_v2` alert (microsoft.graph.security.alert): actor is the first user
    its evidence names, ip the first IP evidence, action its title, target the service that raised it."""
    data = dict(record)
    users = [dig(e, "userAccount", "userPrincipalName") for e in _evidence(data, "userEvidence")]
    ips = [dig(e, "ipAddress") for e in _evidence(data, "ipEvidence")]
    return [
        NormalisedEvent(
            **required_identity(data, ids=("id",), times=("lastUpdateDateTime", "createdDateTime")),
            raw=data,
            actor=text(next((u for u in users if u), None), 500),
            action=text(dig(data, "title"), 300),
            target=text(dig(data, "serviceSource"), 1000),
            ip=strip_port(next((i for i in ips if i), None)),
            country=text(next((dig(e, "countryLetterCode") for e in _evidence(data, "ipEvidence")), None), 8),
            outcome=text(dig(data, "status"), 50),
        )
    ]


# ---- conversations ---------------------------------------------------------------------------


def normalise_teams_message(record: Mapping[str, Any]) -> NormalisedMessage:
    """A Teams chat or channel message (`chatMessage`)."""
    body = dig(record, "body", "content") or ""
    sender = dig(record, "from", "user") or dig(record, "from", "application") or {}
    channel = dig(record, "chatId") or dig(record, "channelIdentity", "channelId")
    sent = dig(record, "createdDateTime")
    if sent in (None, ""):
        raise NormaliseError("Teams message has no 'createdDateTime'")
    return NormalisedMessage(
        provider_message_id=required_id(record, "id"),
        sent_at=to_datetime(sent, "createdDateTime"),
        text=str(body),
        channel=text(channel, 300),
        thread_id=text(dig(record, "replyToId") or dig(record, "id"), 300),
        author=text(dig(sender, "userPrincipalName") or dig(sender, "displayName") or dig(sender, "id"), 320),
        subject=text(dig(record, "subject"), 1000),
        meta={
            "message_type": dig(record, "messageType"),
            "content_type": dig(record, "body", "contentType"),
            "team_id": dig(record, "channelIdentity", "teamId"),
        },
    )


def normalise_mail_message(record: Mapping[str, Any], mailbox: str | None = None) -> NormalisedMessage:
    """An Outlook message from `/users/{id}/messages` (body preview or full body)."""
    sender = dig(record, "from", "emailAddress", "address") or dig(
        record, "sender", "emailAddress", "address"
    )
    recipients = [
        dig(r, "emailAddress", "address")
        for r in (dig(record, "toRecipients") or [])
        if isinstance(r, Mapping)
    ]
    sent = dig(record, "receivedDateTime") or dig(record, "sentDateTime")
    if sent in (None, ""):
        raise NormaliseError("mail message has no 'receivedDateTime'")
    body = dig(record, "body", "content") or dig(record, "bodyPreview") or ""
    return NormalisedMessage(
        provider_message_id=required_id(record, "id"),
        sent_at=to_datetime(sent, "receivedDateTime"),
        text=str(body),
        channel=text(mailbox, 300),
        thread_id=text(dig(record, "conversationId"), 300),
        author=text(sender, 320),
        subject=text(dig(record, "subject"), 1000),
        meta={"to": [r for r in recipients if r], "internet_message_id": dig(record, "internetMessageId")},
    )


EVENT_STREAMS = {
    "signins": EventStream(
        normalise_signin,
        ("id", "properties.id"),
        ("createdDateTime", "time", "properties.createdDateTime"),
    ),
    "directory_audits": EventStream(
        normalise_directory_audit,
        ("id", "properties.id"),
        ("activityDateTime", "time", "properties.activityDateTime"),
    ),
    "unified_audit": EventStream(normalise_unified_audit, ("Id",), ("CreationTime",)),
    "risk_detections": EventStream(
        normalise_risk_detection, ("id",), ("detectedDateTime", "activityDateTime")
    ),
    "security_alerts": EventStream(
        normalise_security_alert, ("id",), ("lastUpdateDateTime", "createdDateTime")
    ),
}
