"""Anomaly detection per tenant partition: each organisation judged by its own engine (baselines,
cursors, watermark), one tenant's unfinished stream never holding another's judgement, the single
cursors of before upgraded without judging anything twice, and one job per partition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from core.db import Database
from core.findings import tenant_of
from core.models import Checkpoint, Connection, Event, Finding, PersonBaseline
from core.models.anomaly import AnalysisCursor
from core.settings import Settings
from detectors.anomaly import detect_anomalies
from detectors.partitions import ANOMALY, CLOCK_SUFFIX, cursor_name, partition_of
from pipeline.jobs import job_lock
from pipeline.watermark import EPOCH, anomaly_watermark
from tests.detectors.anomaly.conftest import (
    NEW_YORK,
    SAO_PAULO_HOSTING,
    START,
    entra_signin,
    signin_row,
    write_events,
)
from tests.pipeline.test_partitions import CONTOSO, NORTHWIND, P

USERS = [f"user{i}@shared.test" for i in range(12)]  # the same addresses in both tenants
ATTACK = START + timedelta(days=15, hours=20)


def _connection(db: Database, name: str, organisation: str) -> int:
    with db.session() as session:
        config = {"organisation": organisation, "streams": ["signins"]}
        row = Connection(name=name, provider="m365", tenant=f"{name}.example", config=config)
        session.add(row)
        session.flush()
        return int(row.id or 0)


def _habit(place: tuple[str, float, float, str, str], days: int = 14) -> list[tuple]:
    """Every user signs in from `place` twice each weekday."""
    rows = []
    for day in range(days):
        date = START + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        for index, user in enumerate(USERS):
            for session in range(2):
                at = date + timedelta(hours=13 + session, minutes=index)
                rows.append(signin_row(entra_signin(user, at, place, host=10 + index), at))
    return rows


def _brazil(user: str) -> list[tuple]:
    return [
        signin_row(entra_signin(user, ATTACK, SAO_PAULO_HOSTING, device=("Linux", "Firefox 120")), ATTACK)
    ]


def _new_countries(db: Database) -> list[Finding]:
    with db.session(readonly=True) as session:
        rows = session.exec(select(Finding).where(Finding.rule_id == "anomaly.new_country"))
        return list(rows.all())


def _cursor(db: Database, name: str) -> AnalysisCursor | None:
    with db.session(readonly=True) as session:
        return session.get(AnalysisCursor, name)


def test_each_tenant_is_judged_against_its_own_people(db: Database, settings: Settings) -> None:
    north, contoso = partition_of(NORTHWIND, P), partition_of(CONTOSO, P)
    # given two tenants whose people share their addresses: northwind's sign in from Brazil every
    # day, contoso's from New York
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    write_events(db, a, _habit(SAO_PAULO_HOSTING))
    write_events(db, b, _habit(NEW_YORK))
    # when user3 of each signs in from Brazil and anomaly detection runs
    write_events(db, a, _brazil("user3@shared.test"))
    write_events(db, b, _brazil("user3@shared.test"))
    report = detect_anomalies(db, settings)
    # then only contoso's user3 is in a new country: northwind's Brazilian habit is not contoso's
    assert report.signins > 0
    (finding,) = _new_countries(db)
    assert tenant_of(finding.dedup_key) == CONTOSO
    with db.session(readonly=True) as session:
        (event,) = session.exec(select(Event).where(col_id(finding.evidence_event_ids))).all()
        assert event.connection_id == b
        # and each tenant's engine keeps its own baselines, under its partition's cursor
        scopes = sorted(
            row.scope
            for row in session.exec(select(PersonBaseline)).all()
            if row.actor == "user3@shared.test"
        )
    assert scopes == sorted(cursor_name(p, P, ANOMALY) for p in (north, contoso))
    assert _cursor(db, ANOMALY.legacy) is None
    # and a second run judges nothing again
    assert detect_anomalies(db, settings).events == 0


def col_id(ids: list[int]) -> Any:
    from sqlmodel import col

    return col(Event.id).in_(ids)


def test_a_tenant_whose_stream_has_not_finished_its_first_window_holds_only_itself(
    db: Database, settings: Settings
) -> None:
    from core.audit import Actor
    from pipeline.stages import StageContext, detect_stage

    # given two tenants: contoso's sign-ins collected up to after the attack, northwind's sign-in
    # stream still in its first window (a new tenant's backlog)
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    write_events(db, a, _habit(NEW_YORK))
    write_events(db, b, _habit(NEW_YORK) + _brazil("user3@shared.test"))
    mark = {"high_water": (ATTACK + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    with db.session() as session:
        cursor = {"interactiveUser": mark, "nonInteractiveUser": mark}
        session.add(Checkpoint(connection_id=b, stream="signins", cursor=cursor))
    # then each partition's watermark is its own connections'
    assert anomaly_watermark(db, [a]) == EPOCH
    assert anomaly_watermark(db, [b]) == ATTACK + timedelta(hours=1)
    assert anomaly_watermark(db) == EPOCH  # the slowest of all: what held every tenant before
    # when the detect stage runs the anomaly detectors
    detect_stage(db, settings, Actor.system("test"), StageContext(with_rules=False))
    # then contoso's attack is judged although northwind's backlog is not collected yet
    (finding,) = _new_countries(db)
    assert tenant_of(finding.dedup_key) == CONTOSO
    north = _cursor(db, cursor_name(partition_of(NORTHWIND, P), P, ANOMALY) + CLOCK_SUFFIX)
    assert north is not None and north.position == 0


def test_the_single_anomaly_cursors_of_before_are_upgraded_without_judging_anything_twice(
    db: Database, settings: Settings
) -> None:
    from detectors.anomaly.engine import WHOLE_SCOPE

    # given a single-tenant deployment judged by the single cursors of before partitions
    connection = _connection(db, "acme-entra", "")
    write_events(db, connection, _habit(NEW_YORK) + _brazil("user3@shared.test"))
    detect_anomalies(db, settings)
    (finding,) = _new_countries(db)
    with db.session() as session:
        for row in session.exec(select(AnalysisCursor).where(col_name_starts(ANOMALY.prefix))).all():
            session.add(
                AnalysisCursor(
                    name=row.name.replace(row.name.split(".event_time")[0], WHOLE_SCOPE),
                    position=row.position,
                    gaps=row.gaps,
                )
            )
            session.delete(row)
    legacy = _cursor(db, WHOLE_SCOPE)
    clock = _cursor(db, WHOLE_SCOPE + CLOCK_SUFFIX)
    assert legacy is not None and legacy.position > 0 and clock is not None and clock.position > 0
    # when the partitioned detection runs with nothing new
    again = detect_anomalies(db, settings)
    # then its partition's cursors started where the single ones stood: nothing judged twice
    partition = cursor_name(partition_of("", P), P, ANOMALY)
    started = _cursor(db, partition)
    started_clock = _cursor(db, partition + CLOCK_SUFFIX)
    assert started is not None and started.position == legacy.position
    assert started_clock is not None and started_clock.position == clock.position
    assert again.events == 0
    (same,) = _new_countries(db)
    assert same.count == finding.count and same.updated_at == finding.updated_at


def col_name_starts(prefix: str) -> Any:
    from sqlmodel import col

    return col(AnalysisCursor.name).startswith(prefix)


def test_the_anomaly_job_runs_one_partition_at_a_time_and_every_partition_side_by_side(
    db: Database, settings: Settings
) -> None:
    from pipeline.cycle import Cycle
    from pipeline.jobs import JOBS

    class Asked:
        def __init__(self) -> None:
            self.jobs: list[tuple[str, dict]] = []

        def enqueue(self, job: str, **args: object) -> None:
            self.jobs.append((job, args))

    # given two tenants
    _connection(db, "northwind-entra", NORTHWIND)
    _connection(db, "contoso-entra", CONTOSO)
    north, contoso = partition_of(NORTHWIND, P), partition_of(CONTOSO, P)
    # then each partition's pass has its own lock
    assert job_lock("anomaly", {"partition": north}) == f"detect:anomaly:{north}"
    assert job_lock("anomaly", {"partition": north}) != job_lock("anomaly", {"partition": contoso})
    # and an anomaly job without a partition (deferred before partitions) asks for every one in use
    asked = Asked()
    cycle = Cycle(db, settings)
    assert JOBS["anomaly"](cycle, asked) is None
    used = sorted({north, contoso, partition_of("", P)})
    assert sorted(args["partition"] for job, args in asked.jobs if job == "anomaly") == used
    # and a partition's detection asks for that partition's anomaly pass
    asked.jobs.clear()
    JOBS["detect"](cycle, asked, partition=north)
    assert ("anomaly", {"partition": north}) in asked.jobs
    assert not any(job == "anomaly" and args != {"partition": north} for job, args in asked.jobs)
