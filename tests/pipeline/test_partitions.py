"""Detection per tenant partition: each organisation's events through its own cursor, nothing
crossing tenants, the single cursor of before upgraded without reading anything twice, and the
lag of each partition visible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from sqlmodel import select

from core.db import Database
from core.models import Connection, Event, Finding
from core.models.anomaly import AnalysisCursor
from core.settings import Settings
from detectors.cursor import GapCursor
from detectors.partitions import LEGACY_CURSOR, cursor_name, partition_of
from detectors.pipeline import DetectionPipeline, detect_new
from pipeline.health import read_lag

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
P = 16
_ids = count(1)
# two organisations that hash into different partitions (checked below)
NORTHWIND, CONTOSO = "northwind", "contoso"


def _connection(db: Database, name: str, organisation: str | None) -> int:
    with db.session() as session:
        config = {"organisation": organisation} if organisation else {}
        row = Connection(name=name, provider="m365", tenant=f"{name}.example", config=config)
        session.add(row)
        session.flush()
        return int(row.id or 0)


def _spray(
    db: Database,
    connection_id: int | None,
    users: range,
    start: datetime,
    domain: str,
    ip: str = "185.220.101.34",
) -> list[int]:
    """Failed sign-ins of many users from one IP: the password-spray correlation."""
    events = []
    for n, i in enumerate(users):
        at = start + timedelta(seconds=30 * n)
        raw = {
            "id": f"signin-{next(_ids)}",
            "createdDateTime": at.isoformat().replace("+00:00", "Z"),
            "userPrincipalName": f"user{i}@{domain}",
            "ipAddress": ip,
            "clientAppUsed": "Browser",
            "status": {"errorCode": 50126},
        }
        events.append(
            Event(
                connection_id=connection_id,
                provider="m365",
                stream="signins",
                provider_event_id=raw["id"],
                occurred_at=at,
                actor=raw["userPrincipalName"],
                ip=raw["ipAddress"],
                raw=raw,
            )
        )
    with db.session() as session:
        session.add_all(events)
        session.flush()
        return [int(e.id or 0) for e in events]


def _sprays(db: Database) -> list[Finding]:
    with db.session(readonly=True) as session:
        rows = session.exec(
            select(Finding).where(Finding.rule_id == "m365_password_spray").order_by(Finding.id)
        )
        return list(rows.all())


def _cursor(db: Database, name: str) -> AnalysisCursor | None:
    with db.session(readonly=True) as session:
        return session.get(AnalysisCursor, name)


def test_two_organisations_are_detected_apart_and_each_partition_moves_alone(
    db: Database, settings: Settings
) -> None:
    north, contoso = partition_of(NORTHWIND, P), partition_of(CONTOSO, P)
    assert north != contoso
    # given two tenants, each sprayed at the same time (from two IPs: the finding store keys a
    # spray by rule and IP alone, so one IP's sprays of two tenants would land in one finding)
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    north_ids = _spray(db, a, range(12), T0, "northwind.example")
    contoso_ids = _spray(db, b, range(12), T0, "contoso.example", ip="185.220.101.99")
    # when only northwind's partition runs
    first = detect_new(db, settings, partition=north, with_anomaly=False)
    # then only its events were read, into a finding of its own
    assert first.events == 12 and not first.pending
    (finding,) = _sprays(db)
    assert sorted(finding.evidence_event_ids) == north_ids
    assert _cursor(db, cursor_name(contoso, P)) is None
    # and when every partition runs, contoso's spray is its own finding: nothing crosses tenants
    rest = detect_new(db, settings, with_anomaly=False)
    assert rest.events == 12
    assert [sorted(f.evidence_event_ids) for f in _sprays(db)] == [north_ids, contoso_ids]
    assert detect_new(db, settings, with_anomaly=False).events == 0


def test_connections_without_an_organisation_and_events_without_a_connection_share_one_partition(
    db: Database, settings: Settings
) -> None:
    # given a deployment that names no organisation: an Entra connection and imported events
    entra = _connection(db, "acme-entra", None)
    with_connection = _spray(db, entra, range(6), T0, "acme.example")
    without = _spray(db, None, range(6, 12), T0 + timedelta(minutes=3), "acme.example")
    # when detection runs, then they correlate as one tenant, as with the single cursor before
    result = detect_new(db, settings, with_anomaly=False)
    assert result.events == 12
    (finding,) = _sprays(db)
    assert sorted(finding.evidence_event_ids) == with_connection + without
    assert _cursor(db, cursor_name(partition_of("", P), P)) is not None


def test_the_single_cursor_of_before_is_upgraded_without_reading_anything_twice(
    db: Database, settings: Settings
) -> None:
    # given a deployment detected by the single cursor: a spray read, then one more failure it
    # passed over as a gap (its writer committed late) while reading an admin event after it
    connection = _connection(db, "acme-entra", None)
    _spray(db, connection, range(12), T0, "acme.example")
    DetectionPipeline(cursor_name=LEGACY_CURSOR).run(db)
    (late,) = _spray(db, connection, range(12, 13), T0 + timedelta(minutes=6), "acme.example")
    with db.session() as session:
        admin = Event(
            connection_id=connection,
            provider="m365",
            stream="directory_audits",
            provider_event_id="audit-1",
            occurred_at=T0,
            raw={},
        )
        session.add(admin)
        session.flush()
        row = session.get(AnalysisCursor, LEGACY_CURSOR)
        assert row is not None
        row.position = int(admin.id or 0)
        row.gaps = [[float(late), float(late), datetime.now(UTC).timestamp()]]
        session.add(row)
    legacy = _cursor(db, LEGACY_CURSOR)
    assert legacy is not None
    # when three more failures arrive and the partitioned detection runs
    later = _spray(db, connection, range(13, 16), T0 + timedelta(minutes=7), "acme.example")
    result = detect_new(db, settings, with_anomaly=False)
    # then its partition's cursor started where the single cursor stood, with its gap: it read
    # the late failure and the three new ones, nothing the single cursor had read
    partition = _cursor(db, cursor_name(partition_of("", P), P))
    assert partition is not None and partition.position == later[-1] and partition.gaps == []
    assert result.events == 1 + 3
    (finding,) = _sprays(db)
    assert sorted(set(finding.evidence_event_ids)) == sorted(finding.evidence_event_ids)
    assert len(finding.evidence_event_ids) == 16
    # and the old cursor no longer moves
    after = _cursor(db, LEGACY_CURSOR)
    assert after is not None and after.position == legacy.position


def test_a_new_partition_layout_starts_from_the_lowest_cursor_of_the_last_one(
    db: Database, settings: Settings
) -> None:
    # given partitions of P=16 that detected everything stored
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    _spray(db, a, range(12), T0, "northwind.example")
    _spray(db, b, range(12), T0, "contoso.example", ip="185.220.101.99")
    detect_new(db, settings, with_anomaly=False)
    lowest = min(
        c.position
        for name in (cursor_name(partition_of(NORTHWIND, P), P), cursor_name(partition_of(CONTOSO, P), P))
        if (c := _cursor(db, name)) is not None
    )
    # when the operator changes to 4 partitions and new events arrive
    four = settings.model_copy(update={"pipeline_partitions": 4})
    more = _spray(db, a, range(12, 15), T0 + timedelta(minutes=7), "northwind.example")
    result = detect_new(db, four, with_anomaly=False)
    # then the new cursors started at the lowest old one: at most the events between it and the
    # others' are read again, never fewer than those stored since
    assert set(more) <= set(range(lowest + 1, more[-1] + 1))
    assert 3 <= result.events <= 3 + (max(more) - lowest)
    assert all(f.count >= 12 for f in _sprays(db))


def test_an_event_neither_mine_nor_certainly_anothers_stays_a_gap(db: Database) -> None:
    # given a reader of sign-ins that knows admin events are another's (but not drive events)
    reader = GapCursor("test.partition", Event, where=col_stream("signins"), skip=col_stream("admin"))
    ids = []
    with db.session() as session:
        for n, stream in enumerate(["signins", "admin", "drive", "signins"]):
            event = Event(provider="m365", stream=stream, provider_event_id=f"e{n}", occurred_at=T0, raw={})
            session.add(event)
            session.flush()
            ids.append(int(event.id or 0))
    # when it reads and advances
    with db.session() as session:
        rows = reader.read(session, 100)
        reader.advance(session, rows)
        gaps = [g[:2] for g in reader.row(session).gaps]
    # then the drive event (say, a connection created after the filter was made) stays a gap
    assert [r.id for r in rows] == [ids[0], ids[3]]
    assert gaps == [[ids[2], ids[2]]]


def col_stream(name: str):  # noqa: ANN201 - a SQL expression
    from sqlmodel import col

    return col(Event.stream) == name


def test_health_names_the_lagging_partition(db: Database, settings: Settings) -> None:
    # given two tenants, and northwind's events waiting two hours for detection
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    _spray(db, a, range(3), T0, "northwind.example")
    _spray(db, b, range(2), T0, "contoso.example")
    detect_new(db, settings, partition=partition_of(CONTOSO, P), with_anomaly=False)
    with db.session() as session:
        for event in session.exec(select(Event).where(Event.connection_id == a)).all():
            event.ingested_at = datetime.now(UTC) - timedelta(hours=2)
            session.add(event)
    # when the lag is read
    lag = read_lag(db, partitions=P)
    stages = {s.stage: s for s in lag.stages}
    # then the total and each partition show, and /health names the lagging partition alone
    north = f"detect:p{partition_of(NORTHWIND, P)}"
    assert stages["detect"].backlog == 3
    assert stages[north].backlog == 3 and stages[north].connections == 1
    assert stages[f"detect:p{partition_of(CONTOSO, P)}"].backlog == 0
    problems = [p for p in lag.problems(600) if "detect" in p]
    assert len(problems) == 1 and problems[0].startswith(f"stage {north} (1 connection(s)) lags: 3 waiting")


def test_a_committed_page_asks_for_its_connections_partition_alone(db: Database, settings: Settings) -> None:
    from pipeline.cycle import Cycle
    from pipeline.embedded import PageTrigger

    class Asked:
        def __init__(self) -> None:
            self.cycle = Cycle(db, settings)
            self.jobs: list[tuple[str, dict]] = []

        def enqueue(self, job: str, **args: object) -> None:
            self.jobs.append((job, args))

    # given serve's page trigger and a northwind connection
    _connection(db, "northwind-entra", NORTHWIND)
    asked = Asked()
    trigger = PageTrigger(asked)  # type: ignore[arg-type]
    # when a page with new events is committed, and one with nothing new
    trigger.page("northwind-entra/signins", records=5, new=5, window=None)
    trigger.page("northwind-entra/signins", records=5, new=0, window=None)
    # then detection of northwind's partition alone was asked for, once
    assert asked.jobs == [("detect", {"partition": partition_of(NORTHWIND, P)})]
