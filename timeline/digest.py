"""The daily digest: low-signal findings that joined no incident, one explained list a day.

A low or informational finding, one of a mass change (many people doing the same thing at once)
or a drift inside a declared change window never opens an incident (see :mod:`timeline.noise`);
when it joins none either, it is reported here instead of as a P4 incident of its own:

* `build_digests` — once a day has ended (plus ``digest_grace``, so a late stronger finding can
  still pull it into an incident), every such finding first seen before the end of that day and
  not yet in a digest goes into that day's digest (a late one of an earlier, already reported day
  goes into the next digest, marked late). Lines group findings by rule and severity, with the
  people, the time span and why they are there (mass change, declared change). Each finding
  points at its digest, so it is reported once; the creation is audited in the same transaction.
* `deliver_digests` — posts each digest once to the incident notification channel (the same
  Slack target as incident announcements), retried on failure, audited when posted.

One digest per day per tenant (connection): a finding belongs to the connection its first evidence
event was collected from (findings carry no connection of their own); findings no event ties to a
connection go into a digest of their own (tenant "").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlmodel import Session, col

from core.audit import Actor, AuditAction, record
from core.clock import isoformat, utcnow
from core.db import Database
from core.findings import finding_connections
from core.models.connection import Connection
from core.models.enums import FindingKind, FindingStatus
from core.models.finding import Finding
from core.models.noise import Digest
from timeline.assembly import BuildContext, check_keys, learn_common_keys
from timeline.config import TimelineConfig
from timeline.entities import IdentityIndex
from timeline.quieting import held_back

log = logging.getLogger(__name__)

DIGEST_ACTOR = Actor.system("digest")
DAY = timedelta(days=1)
MAX_LINE_FINDING_IDS = 500
MAX_LINE_PEOPLE = 20
MAX_POSTED_LINES = 12
_PG_DIGEST_LOCK = 0x7467_6469_6765  # "tgdige"


def day_of(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


@dataclass
class _Line:
    rule_id: str
    severity: str
    example: str
    finding_ids: list[int] = field(default_factory=list)
    people: dict[str, None] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    late: int = 0
    mass: dict[str, Any] | None = None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, row: Any, people: Sequence[str], note: dict[str, Any], late: bool) -> None:
        self.finding_ids.append(row.id)
        self.people.update(dict.fromkeys(people))
        self.first_seen = min(self.first_seen or row.first_seen, row.first_seen)
        self.last_seen = max(self.last_seen or row.last_seen, row.last_seen)
        self.late += 1 if late else 0
        if note.get("mass") and self.mass is None:
            self.mass = note["mass"]
        if note.get("change"):
            self.changes.setdefault(str(note["change"]["reference"]), note["change"])

    def as_item(self) -> dict[str, Any]:
        people = list(self.people)
        return {
            "rule_id": self.rule_id,
            "severity": self.severity,
            "example": self.example,
            "count": len(self.finding_ids),
            "people_count": len(people),
            "people": people[:MAX_LINE_PEOPLE],
            "first_seen": isoformat(self.first_seen) if self.first_seen else None,
            "last_seen": isoformat(self.last_seen) if self.last_seen else None,
            "finding_ids": self.finding_ids[:MAX_LINE_FINDING_IDS],
            "late": self.late,
            "mass": self.mass,
            "changes": list(self.changes.values()),
            "text": self.text(),
        }

    def text(self) -> str:
        people = list(self.people)
        who = ", ".join(people[:3]) + (f" and {len(people) - 3} more" if len(people) > 3 else "")
        line = f"{len(self.finding_ids)} × {self.rule_id} ({self.severity})"
        if who:
            line += f" about {who}"
        line += f", e.g. “{self.example}”"
        if self.mass:
            line += f" — {self.mass['why']}"
        for change in self.changes.values():
            line += f" — {change['why']}"
        if self.late:
            line += f" — {self.late} late from an earlier day"
        return line


def _eligible(session: Session, before: datetime) -> list[Any]:
    return list(
        session.execute(
            select(
                col(Finding.id),
                col(Finding.kind),
                col(Finding.rule_id),
                col(Finding.severity),
                col(Finding.title),
                col(Finding.first_seen),
                col(Finding.last_seen),
                col(Finding.entities),
                col(Finding.evidence_event_ids),
            )
            .where(
                col(Finding.incident_id).is_(None),
                col(Finding.digest_id).is_(None),
                col(Finding.status) == FindingStatus.OPEN,
                col(Finding.kind) != FindingKind.POSTURE.value,
                col(Finding.first_seen) < before,
            )
            .order_by(col(Finding.first_seen), col(Finding.id))
        ).all()
    )


def _example(row: Any, people: Sequence[str]) -> str:
    """The finding's title without the person it names (an example of what the line holds)."""
    title = str(row.title)
    for person in people:
        title = title.replace(f" for {person}", "").replace(person, "someone")
    return title[:200]


def build_digests(db: Database, settings: Any = None, *, now: datetime | None = None) -> list[int]:
    """Build the digests of every day that has ended; returns the ids of the digests created."""
    config = TimelineConfig.from_settings(settings)
    now = now or utcnow()
    last_end = day_of(now - config.digest_grace)
    created: list[int] = []
    with db.session() as session:
        if db.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_DIGEST_LOCK})
        rows = _eligible(session, last_end)
        if not rows:
            return []
        latest: dict[int, datetime] = {
            int(tenant): day
            for tenant, day in session.execute(
                select(col(Digest.connection_id), func.max(col(Digest.day))).group_by(
                    col(Digest.connection_id)
                )
            ).all()
        }
        tenants = finding_connections(session, ((row.id, row.evidence_event_ids) for row in rows))
        names = _connection_names(session, set(tenants.values()))
        ctx = BuildContext(config, IdentityIndex.load(session), now, actor=DIGEST_ACTOR)
        learn_common_keys(session, ctx, since=rows[0].first_seen)
        check_keys(session, (k for r in rows for k in ctx.keys_of(r.id, r.entities).keys), ctx)
        notes = held_back(session, ctx, rows)
        days: dict[tuple[datetime, int], dict[tuple[str, str], _Line]] = {}
        for row in rows:
            tenant = tenants.get(row.id, 0)
            reported = day_of(latest[tenant]) if tenant in latest else None
            day = day_of(row.first_seen)
            late = reported is not None and day <= reported
            if reported is not None and late:
                day = reported + DAY
            if day >= last_end:
                continue  # that day's digest is not due yet
            found = ctx.keys_of(row.id, row.entities)
            people = [
                found.labels.get(k, k.partition(":")[2])
                for k in found.keys
                if k.startswith(("person:", "email:", "account:"))
            ]
            lines = days.setdefault((day, tenant), {})
            line = lines.get((row.rule_id, row.severity))
            if line is None:
                line = lines[(row.rule_id, row.severity)] = _Line(
                    row.rule_id, row.severity, _example(row, people)
                )
            line.add(row, people, notes.get(row.id, {}), late)
        for (day, tenant), lines in sorted(days.items()):
            digest = _store(session, day, (tenant, names.get(tenant, "")), list(lines.values()), now)
            created.append(digest.id or 0)
    return created


def _connection_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        int(i): str(name)
        for i, name in session.execute(
            select(col(Connection.id), col(Connection.name)).where(col(Connection.id).in_(sorted(ids)))
        ).all()
    }


def _store(
    session: Session, day: datetime, tenant: tuple[int, str], lines: list[_Line], now: datetime
) -> Digest:
    lines.sort(key=lambda line: (line.mass is None, -len(line.finding_ids), line.rule_id))
    items = [line.as_item() for line in lines]
    finding_ids = [f for line in lines for f in line.finding_ids]
    people = {p for line in lines for p in line.people}
    digest = Digest(
        day=day,
        connection_id=tenant[0],
        tenant=tenant[1],
        finding_count=len(finding_ids),
        people_count=len(people),
        items=items,
        summary=summarise(day, len(finding_ids), len(people), items, tenant=tenant[1]),
        created_at=now,
    )
    session.add(digest)
    session.flush()
    table: Any = Finding.__table__  # type: ignore[attr-defined]
    for start in range(0, len(finding_ids), 1000):
        session.execute(
            update(table)
            .where(table.c.id.in_(finding_ids[start : start + 1000]), table.c.digest_id.is_(None))
            .values(digest_id=digest.id)
        )
    record(
        session,
        actor=DIGEST_ACTOR,
        action=AuditAction.DIGEST_CREATED,
        object_type="digest",
        object_id=digest.id or 0,
        details={
            "day": isoformat(day),
            "connection_id": tenant[0],
            "tenant": tenant[1],
            "findings": len(finding_ids),
            "lines": len(items),
            "mass_changes": sum(1 for i in items if i["mass"]),
            "inside_changes": sum(1 for i in items if i["changes"]),
        },
        at=now,
    )
    return digest


def summarise(
    day: datetime, findings: int, people: int, items: Sequence[dict[str, Any]], *, tenant: str = ""
) -> str:
    mass = [i for i in items if i.get("mass")]
    changes = sorted({c["reference"] for i in items for c in i.get("changes") or []})
    parts = [
        f"{day:%Y-%m-%d}{f' ({tenant})' if tenant else ''}: {findings} low-signal finding{'s' if findings != 1 else ''} about "
        f"{people} {'person' if people == 1 else 'people'} joined no incident, in {len(items)} line(s)"
    ]
    if mass:
        parts.append(
            "mass change"
            + ("s" if len(mass) > 1 else "")
            + ": "
            + "; ".join(f"{m['mass']['people']} people ({m['rule_id']})" for m in mass)
        )
    if changes:
        parts.append("inside declared changes " + ", ".join(changes))
    return "; ".join(parts) + "."


# ------------------------------------------------------------------------------- notification


@dataclass
class DigestDelivery:
    posted: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def digest_message(digest: Digest, link: str) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, Block Kit blocks) for one digest."""
    from timeline.notify import _escape, _mrkdwn, _plain

    where = f" of {digest.tenant}" if digest.tenant else ""
    text = (
        f"Daily digest{where} {digest.day:%Y-%m-%d}: {digest.finding_count} low-signal findings, no incident"
    )
    lines = "\n".join(f"• {_escape(item['text'])}" for item in digest.items[:MAX_POSTED_LINES])
    more = len(digest.items) - MAX_POSTED_LINES
    if more > 0:
        lines += f"\n… and {more} more line(s)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(text, 150)},
        {"type": "section", "text": _mrkdwn(_escape(digest.summary))},
        {"type": "section", "text": _mrkdwn(lines or "—")},
        {"type": "context", "elements": [_mrkdwn(f"<{link}|Open the digest>")]},
    ]
    return text, blocks


def deliver_digests(
    db: Database, settings: Any = None, *, target: Any = None, now: datetime | None = None
) -> DigestDelivery:
    """Post every digest not posted yet to the notification channel; returns what happened."""
    from timeline.notify import MAX_ATTEMPTS, delivered, delivery_failed, notification_target

    config = TimelineConfig.from_settings(settings)
    report = DigestDelivery()
    with db.session(readonly=True) as session:
        pending = [
            d
            for d in session.execute(select(Digest).order_by(col(Digest.id))).scalars()
            if not (d.notifications or {}).get("ts")
            and int((d.notifications or {}).get("attempts", 0)) < MAX_ATTEMPTS
        ]
        if not pending:
            return report
        target = target or notification_target(session, config)
    if target is None:
        return report
    from slack_sdk.errors import SlackApiError, SlackClientError

    for digest in pending:
        state = dict(digest.notifications or {})
        link = f"{config.public_url.rstrip('/')}/digests/{digest.id}"
        try:
            message, blocks = digest_message(digest, link)
            response = target.client.chat_postMessage(channel=target.channel, text=message, blocks=blocks)
            state.update(channel=response.get("channel") or target.channel, ts=response.get("ts"))
            delivered(state, now)
            report.posted.append(digest.id or 0)
        except (SlackApiError, SlackClientError, OSError) as exc:
            reason = delivery_failed(state, exc)
            report.failed[digest.id or 0] = reason
            log.warning("Slack digest %s not posted: %s", digest.id, reason)
        _save(db, digest.id or 0, state, now)
    return report


def _save(db: Database, digest_id: int, state: dict[str, Any], now: datetime | None) -> None:
    with db.session() as session:
        digest = session.get(Digest, digest_id, with_for_update=True)
        if digest is None:
            return
        digest.notifications = state
        session.add(digest)
        if state.get("error") is None:
            record(
                session,
                actor=DIGEST_ACTOR,
                action=AuditAction.DIGEST_NOTIFIED,
                object_type="digest",
                object_id=digest_id,
                details={"channel": state.get("channel"), "ts": state.get("ts")},
                at=now,
            )
