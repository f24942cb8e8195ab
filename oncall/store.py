"""Stored on-call configuration: apply a whole document (audited), read it back as validated specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.audit import Actor, AuditAction, record
from core.clock import utcnow
from core.models.oncall import OncallDefinition
from oncall.errors import OncallInputError, OncallNotFound
from oncall.spec import Channels, Kind, OncallDocument, Override, Schedule

_FIELDS = {
    Kind.RESPONDER: "responders",
    Kind.SCHEDULE: "schedules",
    Kind.POLICY: "policies",
    Kind.ROUTE: "routes",
}


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0


def _specs(document: OncallDocument) -> dict[tuple[str, str], dict[str, Any]]:
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, name in _FIELDS.items():
        for item in getattr(document, name):
            wanted[(kind.value, item.name)] = item.model_dump(mode="json")
    if document.channels is not None:
        wanted[(Kind.CHANNEL.value, document.channels.name)] = document.channels.model_dump(mode="json")
    return wanted


def apply_document(session: Session, document: OncallDocument, *, actor: Actor) -> ApplyResult:
    """Make the stored configuration exactly `document`; every change audited in this transaction."""
    result = ApplyResult()
    wanted = _specs(document)
    rows = {(row.kind, row.name): row for row in session.exec(select(OncallDefinition)).all()}
    now = utcnow()
    for key, spec in wanted.items():
        row = rows.get(key)
        label = f"{key[0]}/{key[1]}"
        if row is not None and row.spec == spec:
            result.unchanged += 1
            continue
        if row is None:
            row = OncallDefinition(kind=key[0], name=key[1], spec=spec, updated_by=actor.name, updated_at=now)
            action = AuditAction.ONCALL_DEFINITION_CREATED
            result.created.append(label)
        else:
            row.spec, row.version, row.updated_by, row.updated_at = spec, row.version + 1, actor.name, now
            action = AuditAction.ONCALL_DEFINITION_UPDATED
            result.updated.append(label)
        session.add(row)
        session.flush()
        record(
            session,
            actor=actor,
            action=action,
            object_type=f"oncall.{key[0]}",
            object_id=key[1],
            details={"version": row.version, "spec": spec},
        )
    for key, row in rows.items():
        if key not in wanted:
            session.delete(row)
            result.deleted.append(f"{key[0]}/{key[1]}")
            record(
                session,
                actor=actor,
                action=AuditAction.ONCALL_DEFINITION_DELETED,
                object_type=f"oncall.{key[0]}",
                object_id=key[1],
                details={"version": row.version},
            )
    session.flush()
    return result


def load_document(session: Session) -> OncallDocument:
    rows = session.exec(select(OncallDefinition).order_by(col(OncallDefinition.id))).all()
    data: dict[str, Any] = {name: [] for name in _FIELDS.values()}
    for row in rows:
        if row.kind == Kind.CHANNEL:
            data["channels"] = row.spec
        else:
            data[_FIELDS[Kind(row.kind)]].append(row.spec)
    return OncallDocument.model_validate(data)


def _one(session: Session, kind: Kind, name: str) -> dict[str, Any]:
    row = session.exec(
        select(OncallDefinition).where(OncallDefinition.kind == kind.value, OncallDefinition.name == name)
    ).first()
    if row is None:
        raise OncallNotFound(f"no {kind.value} named {name!r}; `tenantguard oncall show` lists them")
    return row.spec


def get_schedule(session: Session, name: str) -> Schedule:
    return Schedule.model_validate(_one(session, Kind.SCHEDULE, name))


def get_channels(session: Session) -> Channels:
    row = session.exec(select(OncallDefinition).where(OncallDefinition.kind == Kind.CHANNEL.value)).first()
    return Channels.model_validate(row.spec) if row is not None else Channels()


def add_overrides(
    session: Session, schedule_name: str, overrides: list[Override], *, actor: Actor, reason: str
) -> Schedule:
    """Append overrides to a stored schedule (a new version of its spec; audited in this transaction)."""
    row = session.exec(
        select(OncallDefinition).where(
            OncallDefinition.kind == Kind.SCHEDULE.value, OncallDefinition.name == schedule_name
        )
    ).first()
    if row is None:
        raise OncallNotFound(f"no schedule named {schedule_name!r}; `tenantguard oncall show` lists them")
    current = Schedule.model_validate(row.spec)
    people = {r.name for r in load_document(session).responders}
    for override in overrides:
        if override.user not in people:
            raise OncallInputError(f"override: unknown responder {override.user!r}")
    try:
        updated = Schedule.model_validate(
            {
                **row.spec,
                "overrides": [
                    *row.spec.get("overrides", []),
                    *(o.model_dump(mode="json") for o in overrides),
                ],
            }
        )
    except ValueError as exc:
        raise OncallInputError(f"schedule {schedule_name!r}: {exc}") from None
    before = len(current.overrides)
    row.spec, row.version, row.updated_by, row.updated_at = (
        updated.model_dump(mode="json"),
        row.version + 1,
        actor.name,
        utcnow(),
    )
    session.add(row)
    record(
        session,
        actor=actor,
        action=AuditAction.ONCALL_DEFINITION_UPDATED,
        object_type="oncall.schedule",
        object_id=schedule_name,
        before={"overrides": before},
        after={"overrides": len(updated.overrides)},
        details={
            "version": row.version,
            "reason": reason,
            "added": [o.model_dump(mode="json") for o in overrides],
        },
    )
    session.flush()
    return updated


def swap_overrides(
    schedule: Schedule, giver: str, taker: str, start: datetime, end: datetime
) -> list[Override]:
    """Overrides handing every stretch `giver` is on call within [start, end) to `taker`."""
    from oncall.schedules import coverage

    if end <= start:
        raise OncallInputError("swap: end must be after start")
    shifts = [s for s in coverage(schedule, start, end).shifts if s.user == giver]
    if not shifts:
        raise OncallInputError(
            f"swap: {giver} is not on call on {schedule.name} between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
        )
    return [Override(user=taker, start=s.start, end=s.end) for s in shifts]


def trade_overrides(
    schedule: Schedule,
    first: str,
    second: str,
    window: tuple[datetime, datetime],
    in_return: tuple[datetime, datetime],
) -> list[Override]:
    """A two-way swap: `first` takes `second`'s stretches within `window`, and `second` takes
    `first`'s within `in_return`, both read off the schedule as it stands (the two hand-overs never
    cover the same moment: the two were never on call at once)."""
    return swap_overrides(schedule, second, first, *window) + swap_overrides(
        schedule, first, second, *in_return
    )


def import_schedule(
    session: Session,
    name: str,
    data: bytes,
    start: datetime,
    end: datetime,
    *,
    actor: Actor,
    timezone: str = "UTC",
) -> ApplyResult:
    """Store an iCalendar feed as schedule `name` (one override per occurrence in [start, end),
    recurrences expanded), replacing a schedule of that name; the rest of the configuration stays.
    Every shift must name a known responder ("On call: NAME" or just NAME as the summary)."""
    from oncall.files import validate
    from oncall.ical import import_ical

    schedule = import_ical(name, data, start, end, timezone=timezone)
    current = load_document(session).model_dump(mode="json", exclude_none=True)
    current["schedules"] = [s for s in current["schedules"] if s["name"] != name]
    current["schedules"].append(schedule.model_dump(mode="json", exclude_none=True))
    return apply_document(session, validate(current, where=f"calendar for {name}"), actor=actor)
