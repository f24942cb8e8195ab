"""Microsoft 365 / Entra records: Graph objects, Azure Monitor diagnostic exports, unified audit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.normalise.records import (
    NormalisedEvent,
    NormalisedMessage,
    NormaliseError,
    lookup,
    required_id,
    required_time,
    strip_port,
    text,
    to_datetime,
)


def unwrap_azure_monitor(record: Mapping[str, Any]) -> dict[str, Any]:
    """An Azure Monitor export wraps the Graph object in `properties`; return the Graph object.

    The wrapper's own fields (`time`, `category`, `callerIpAddress`, ...) are kept at the top
    level where the Graph object has no field of that name — the same shape the detection
    engine builds from an export, so a rule sees one shape whichever way the event arrived.
    """
    properties = lookup(record, "properties")
    if not (
        isinstance(properties, Mapping)
        and (lookup(record, "category") is not None or lookup(record, "operationName") is not None)
    ):
        return dict(record)
    graph = dict(properties)
    for key, value in record.items():
        if key.lower() != "properties" and key not in graph:
            graph[key] = value
    return graph


def _fill_from_wrapper(graph: dict[str, Any], field: str, *wrapper_fields: str) -> None:
    if lookup(graph, field) in (None, ""):
        for name in wrapper_fields:
            value = lookup(graph, name)
            if value not in (None, ""):
                graph[field] = value
                return


def normalise_signin(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Graph `/auditLogs/signIns` object (interactive or not), or its Azure Monitor export."""
    graph = unwrap_azure_monitor(record)
    _fill_from_wrapper(graph, "createdDateTime", "time")
    _fill_from_wrapper(graph, "ipAddress", "callerIpAddress")
    error_code = lookup(graph, "status", "errorCode")
    interactive = lookup(graph, "isInteractive")
    if interactive is None:
        event_types = lookup(graph, "signInEventTypes") or []
        interactive = "interactiveUser" in event_types if event_types else True
    outcome = None
    if error_code is not None:
        outcome = "success" if str(error_code) == "0" else "failure"
    return [
        NormalisedEvent(
            provider_event_id=required_id(graph, "id"),
            occurred_at=required_time(graph, "createdDateTime"),
            raw=graph,
            actor=text(lookup(graph, "userPrincipalName") or lookup(graph, "userId"), 500),
            action="signin" if interactive else "signin_noninteractive",
            target=text(lookup(graph, "appDisplayName") or lookup(graph, "resourceDisplayName"), 1000),
            ip=strip_port(lookup(graph, "ipAddress")),
            country=text(lookup(graph, "location", "countryOrRegion"), 8),
            outcome=outcome,
        )
    ]


def normalise_directory_audit(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Graph `/auditLogs/directoryAudits` object, or its Azure Monitor export (category AuditLogs)."""
    graph = unwrap_azure_monitor(record)
    _fill_from_wrapper(graph, "activityDateTime", "time")
    user = lookup(graph, "initiatedBy", "user") or {}
    app = lookup(graph, "initiatedBy", "app") or {}
    targets = lookup(graph, "targetResources") or []
    first_target = (
        targets[0] if isinstance(targets, list) and targets and isinstance(targets[0], Mapping) else {}
    )
    return [
        NormalisedEvent(
            provider_event_id=required_id(graph, "id"),
            occurred_at=required_time(graph, "activityDateTime"),
            raw=graph,
            actor=text(
                lookup(user, "userPrincipalName") or lookup(app, "displayName") or lookup(user, "id"), 500
            ),
            action=text(lookup(graph, "activityDisplayName") or lookup(graph, "operationName"), 300),
            target=text(
                lookup(first_target, "userPrincipalName") or lookup(first_target, "displayName"), 1000
            ),
            ip=strip_port(lookup(user, "ipAddress")),
            outcome=text(lookup(graph, "result"), 50),
        )
    ]


def normalise_unified_audit(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Office 365 Management Activity API record (`CreationTime` has no zone: UTC)."""
    data = dict(record)
    return [
        NormalisedEvent(
            provider_event_id=required_id(data, "Id"),
            occurred_at=required_time(data, "CreationTime"),
            raw=data,
            actor=text(lookup(data, "UserId"), 500),
            action=text(lookup(data, "Operation"), 300),
            target=text(lookup(data, "ObjectId") or lookup(data, "SourceFileName"), 1000),
            ip=strip_port(lookup(data, "ClientIP") or lookup(data, "ClientIPAddress")),
            outcome=text(lookup(data, "ResultStatus"), 50),
        )
    ]


def normalise_risk_detection(record: Mapping[str, Any]) -> list[NormalisedEvent]:
    """Graph `/identityProtection/riskDetections` object."""
    data = dict(record)
    return [
        NormalisedEvent(
            provider_event_id=required_id(data, "id"),
            occurred_at=required_time(data, "detectedDateTime", "activityDateTime"),
            raw=data,
            actor=text(lookup(data, "userPrincipalName") or lookup(data, "userId"), 500),
            action=text(lookup(data, "riskEventType"), 300),
            target=text(lookup(data, "riskLevel"), 1000),
            ip=strip_port(lookup(data, "ipAddress")),
            country=text(lookup(data, "location", "countryOrRegion"), 8),
            outcome=text(lookup(data, "riskState"), 50),
        )
    ]


# ---- conversations ---------------------------------------------------------------------------


def normalise_teams_message(record: Mapping[str, Any]) -> NormalisedMessage:
    """A Teams chat or channel message (`chatMessage`)."""
    body = lookup(record, "body", "content") or ""
    sender = lookup(record, "from", "user") or lookup(record, "from", "application") or {}
    channel = lookup(record, "chatId") or lookup(record, "channelIdentity", "channelId")
    sent = lookup(record, "createdDateTime")
    if sent in (None, ""):
        raise NormaliseError("Teams message has no 'createdDateTime'")
    return NormalisedMessage(
        provider_message_id=required_id(record, "id"),
        sent_at=to_datetime(sent, "createdDateTime"),
        text=str(body),
        channel=text(channel, 300),
        thread_id=text(lookup(record, "replyToId") or lookup(record, "id"), 300),
        author=text(
            lookup(sender, "userPrincipalName") or lookup(sender, "displayName") or lookup(sender, "id"), 320
        ),
        subject=text(lookup(record, "subject"), 1000),
        meta={
            "message_type": lookup(record, "messageType"),
            "content_type": lookup(record, "body", "contentType"),
            "team_id": lookup(record, "channelIdentity", "teamId"),
        },
    )


def normalise_mail_message(record: Mapping[str, Any], mailbox: str | None = None) -> NormalisedMessage:
    """An Outlook message from `/users/{id}/messages` (body preview or full body)."""
    sender = lookup(record, "from", "emailAddress", "address") or lookup(
        record, "sender", "emailAddress", "address"
    )
    recipients = [
        lookup(r, "emailAddress", "address")
        for r in (lookup(record, "toRecipients") or [])
        if isinstance(r, Mapping)
    ]
    sent = lookup(record, "receivedDateTime") or lookup(record, "sentDateTime")
    if sent in (None, ""):
        raise NormaliseError("mail message has no 'receivedDateTime'")
    body = lookup(record, "body", "content") or lookup(record, "bodyPreview") or ""
    return NormalisedMessage(
        provider_message_id=required_id(record, "id"),
        sent_at=to_datetime(sent, "receivedDateTime"),
        text=str(body),
        channel=text(mailbox, 300),
        thread_id=text(lookup(record, "conversationId"), 300),
        author=text(sender, 320),
        subject=text(lookup(record, "subject"), 1000),
        meta={"to": [r for r in recipients if r], "internet_message_id": lookup(record, "internetMessageId")},
    )
