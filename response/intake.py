"""Alert intake: a generic signed webhook turns an external monitoring alert into a finding.

Requests to ``/response/alerts`` are signed the Standard Webhooks way (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; verified with the ``standardwebhooks`` library, at
most five minutes old). Tools that speak PagerDuty or Alertmanager natively do not sign: they post
to ``/response/pagerduty/v2/enqueue`` (the Events API v2, the routing key in the body is the
credential, PagerDuty's answers) or ``/response/alertmanager`` (``Authorization: Bearer <routing
key>``, as Alertmanager's ``http_config.authorization`` sends it), checked against
``intake.routing_key_ref``. The body is either tenantguard's generic shape::

    {"title": "...", "severity": "critical", "dedup_key": "db-7", "source": "grafana",
     "summary": "...", "action": "trigger|resolve", "entities": {"people": [...], "ips": [...]}}

a PagerDuty Events API v2 event (``routing_key``, ``event_action``, ``dedup_key``,
``payload.summary/severity/source``), or a Prometheus Alertmanager webhook (``alerts[]`` with
``status``, ``labels``, ``annotations``, ``fingerprint``; one finding per alert). The finding's
dedup key is ``alert:<source>:<dedup_key>`` (``alert:pagerduty:<dedup_key>`` for PagerDuty events,
whose acknowledge and resolve carry no payload), so repeats fold into one finding (the count grows) and the incident builder groups it with the
related findings; ``resolve`` resolves it; ``acknowledge`` is audited (the incident's own
acknowledgement stays ours). The finding, its audit record and the intake's audit
record commit together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, Channel, record
from core.clock import as_utc, utcnow
from core.entities import EntityKind
from core.findings import FindingDraft, resolve_findings, store_finding
from core.models.enums import FindingKind, Severity
from core.models.finding import Finding
from core.redaction import redact_typed
from response.errors import AlertRefused

MAX_TITLE = 300
SEVERITIES = {
    "critical": Severity.CRITICAL,
    "error": Severity.HIGH,
    "high": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "info": Severity.INFORMATIONAL,
    "informational": Severity.INFORMATIONAL,
}
TRIGGER, ACKNOWLEDGE, RESOLVE = "trigger", "acknowledge", "resolve"


@dataclass(frozen=True)
class Alert:
    source: str
    dedup_key: str
    title: str
    severity: Severity
    action: str
    summary: str
    entities: dict[str, list[str]]
    context: dict[str, Any]
    # What the dedup key is unique within (the source unless said): PagerDuty scopes it to the
    # integration, and its acknowledge/resolve events carry no payload.source.
    scope: str = ""

    @property
    def finding_key(self) -> str:
        return f"alert:{self.scope or self.source}:{self.dedup_key}"[:500]


@dataclass(frozen=True)
class IntakeResult:
    finding_id: int | None
    created: bool
    action: str
    dedup_key: str


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The JSON body of a request signed with `secret`; AlertRefused saying why otherwise."""
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    lowered = {k.lower(): v for k, v in headers.items()}
    if not all(lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")):
        raise AlertRefused("missing webhook-id / webhook-timestamp / webhook-signature: not a signed alert")
    key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
    try:
        payload = Webhook(key).verify(body.decode("utf-8"), lowered)
    except (WebhookVerificationError, UnicodeDecodeError, ValueError) as exc:
        raise AlertRefused(f"the signature does not verify, or the request is stale: {exc}") from None
    if not isinstance(payload, dict):
        raise AlertRefused("the alert body is not a JSON object")
    return payload


def check_routing_key(given: Any, expected: str) -> None:
    """AlertRefused unless `given` is the configured routing key (compared in constant time)."""
    import hmac

    if not expected:
        raise AlertRefused("alert intake has no routing key configured (intake.routing_key_ref): refused")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AlertRefused("the routing key is not this deployment's: refused")


def clean_text(value: Any, limit: int) -> str:
    return redact_typed(str(value or "").strip())[:limit]


def parse_alert(payload: Mapping[str, Any]) -> Alert:
    """An alert from the generic or the PagerDuty Events v2 shape; AlertRefused naming the field."""
    if "event_action" in payload:  # PagerDuty Events API v2
        inner = payload.get("payload") or {}
        if not isinstance(inner, dict):
            raise AlertRefused("payload must be an object (PagerDuty Events v2)")
        action = str(payload.get("event_action"))
        source = clean_text(inner.get("source") or payload.get("routing_key") or "pagerduty", 100)
        title, severity = inner.get("summary"), inner.get("severity") or "error"
        summary = clean_text(orjson.dumps(inner.get("custom_details") or {}).decode(), 2000)
        entities: Any = {}
        scope = "pagerduty"
    else:
        action = str(payload.get("action") or TRIGGER)
        source = clean_text(payload.get("source") or "webhook", 100)
        title, severity = payload.get("title"), payload.get("severity") or "high"
        summary = clean_text(payload.get("summary"), 2000)
        entities = payload.get("entities") or {}
        scope = ""
    if action not in (TRIGGER, ACKNOWLEDGE, RESOLVE):
        raise AlertRefused(f"action {action!r}: use trigger, acknowledge or resolve")
    if action != TRIGGER and not clean_text(payload.get("dedup_key"), 200):
        raise AlertRefused(f"dedup_key is required to {action} an alert")
    if str(severity).lower() not in SEVERITIES:
        raise AlertRefused(f"severity {severity!r}: use one of {', '.join(SEVERITIES)}")
    title_text = clean_text(title, MAX_TITLE)
    if action == TRIGGER and not title_text:
        raise AlertRefused("title (or payload.summary) is required for a trigger")
    dedup = (
        clean_text(payload.get("dedup_key"), 200)
        or hashlib.sha256(f"{source}:{title_text}".encode()).hexdigest()[:32]
    )
    if not isinstance(entities, dict):
        raise AlertRefused("entities must be an object of lists")
    kinds = {k.value for k in EntityKind}
    clean = {
        str(kind): [clean_text(v, 320) for v in values][:50]
        for kind, values in entities.items()
        if str(kind) in kinds and isinstance(values, list)
    }
    clean.setdefault(EntityKind.APPS.value, [f"alert-source:{source}"])
    return Alert(
        source=source,
        dedup_key=dedup,
        title=title_text,
        severity=SEVERITIES[str(severity).lower()],
        action=action,
        summary=summary,
        entities=clean,
        context={k: v for k, v in {"drill": payload.get("drill") is True}.items() if v},
        scope=scope,
    )


def parse_alerts(payload: Mapping[str, Any]) -> list[Alert]:
    """Every alert in a request: Alertmanager groups several, the other shapes carry one."""
    if isinstance(payload.get("alerts"), list) and "groupKey" in payload:
        return [_alertmanager(item) for item in payload["alerts"][:100] if isinstance(item, dict)]
    return [parse_alert(payload)]


def _alertmanager(item: Mapping[str, Any]) -> Alert:
    labels = item.get("labels") or {}
    annotations = item.get("annotations") or {}
    if not isinstance(labels, dict) or not isinstance(annotations, dict):
        raise AlertRefused("alerts[].labels and alerts[].annotations must be objects (Alertmanager)")
    name = str(labels.get("alertname") or "alert")
    identity = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return parse_alert(
        {
            "title": annotations.get("summary") or name,
            "summary": annotations.get("description") or "",
            "severity": str(labels.get("severity") or "warning").lower(),
            "source": labels.get("job") or "alertmanager",
            "dedup_key": item.get("fingerprint") or hashlib.sha256(identity.encode()).hexdigest()[:32],
            "action": RESOLVE if item.get("status") == "resolved" else TRIGGER,
            "entities": {"ips": [str(labels["instance"]).split(":")[0]]} if labels.get("instance") else {},
        }
    )


def intake_actor(source: str, message_id: str) -> Actor:
    return Actor(f"alert:{source}"[:200], Channel.API, message_id[:100])


def ingest(
    session: Session,
    alert: Alert,
    *,
    actor: Actor,
    dedup_hours: float = 24.0,
    now: datetime | None = None,
    rule_prefix: str = "alert",
) -> IntakeResult:
    """Store (or fold, or resolve) the alert's finding and audit its receipt, in the caller's transaction."""
    when = as_utc(now or utcnow())
    finding_id: int | None = None
    created = False
    if alert.action == RESOLVE:
        resolve_findings(session, [alert.finding_key], reason=f"resolved by {alert.source}", actor=actor)
    elif alert.action == ACKNOWLEDGE:
        # Acknowledged in the sending tool: said on the audit chain; the incident's own ack is ours.
        finding_id = session.exec(
            select(Finding.id).where(Finding.dedup_key == alert.finding_key).order_by(col(Finding.id).desc())
        ).first()
    else:
        draft = FindingDraft(
            rule_id=f"{rule_prefix}:{alert.source}"[:200],
            kind=FindingKind.DETECTION,
            severity=alert.severity,
            title=alert.title,
            description=alert.summary or alert.title,
            dedup_key=alert.finding_key,
            first_seen=when,
            last_seen=when,
            confidence=1.0,
            entities=alert.entities,
            context={"alert_source": alert.source, "alert_dedup_key": alert.dedup_key, **alert.context},
        )
        stored = store_finding(session, draft, actor=actor, dedup_period=timedelta(hours=dedup_hours))
        finding_id, created = stored.finding.id, stored.created
    record(
        session,
        actor=actor,
        action=AuditAction.RESPONSE_ALERT_RECEIVED,
        object_type="finding",
        object_id=finding_id or alert.finding_key,
        details={
            "source": alert.source,
            "dedup_key": alert.dedup_key,
            "action": alert.action,
            "severity": alert.severity.value,
            "created": created,
            **alert.context,
        },
        at=when,
    )
    return IntakeResult(finding_id, created, alert.action, alert.finding_key)


def record_refusal(session: Session, reason: str, *, message_id: str = "") -> None:
    record(
        session,
        actor=Actor("alert:unverified", Channel.API, message_id[:100]),
        action=AuditAction.RESPONSE_ALERT_REFUSED,
        object_type="alert_request",
        object_id=message_id or "-",
        details={"reason": reason[:300]},
    )
