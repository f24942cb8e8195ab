"""The anomaly watermark: the event time every stream anomaly detection reads is collected to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from core.db import Database
from core.models import Checkpoint, Connection
from core.models.enums import Health
from core.settings import Settings
from pipeline.cycle import Cycle
from pipeline.watermark import EPOCH, HOLD_SECONDS, anomaly_watermark

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
T = NOW - timedelta(minutes=5)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _connection(db: Database, provider: str, streams: list[str]) -> int:
    with db.session() as session:
        row = Connection(
            name=f"{provider}-1", provider=provider, tenant="t", config={"streams": streams}, created_at=NOW
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def _checkpoint(db: Database, connection_id: int, stream: str, cursor: dict, **fields) -> None:
    with db.session() as session:
        session.add(
            Checkpoint(
                connection_id=connection_id,
                stream=stream,
                cursor=cursor,
                updated_at=fields.pop("updated_at", NOW),
                **fields,
            )
        )


def test_nothing_collected_holds_nothing(db: Database) -> None:
    assert anomaly_watermark(db, now=NOW) is None
    _connection(db, "google", ["admin"])  # not a stream anomaly detection reads
    assert anomaly_watermark(db, now=NOW) is None


def test_the_slowest_stream_and_sub_stream_sets_it_and_a_stream_not_started_holds_everything(
    db: Database,
) -> None:
    google = _connection(db, "google", ["login", "drive"])
    m365 = _connection(db, "m365", ["signins"])
    _checkpoint(db, google, "login", {"high_water": _iso(T)})
    # drive has no checkpoint yet, signins only its first sub-stream: nothing is complete
    assert anomaly_watermark(db, now=NOW) == EPOCH
    _checkpoint(db, google, "drive", {"high_water": _iso(T - timedelta(hours=2))})
    _checkpoint(db, m365, "signins", {"interactiveUser": {"high_water": _iso(T)}})
    assert anomaly_watermark(db, now=NOW) == EPOCH
    with db.session() as session:
        checkpoint = session.exec(select(Checkpoint).where(Checkpoint.stream == "signins")).one()
        checkpoint.cursor = {
            "interactiveUser": {"high_water": _iso(T)},
            "nonInteractiveUser": {"high_water": _iso(T - timedelta(hours=1))},
        }
        session.add(checkpoint)
    assert anomaly_watermark(db, now=NOW) == T - timedelta(hours=2)


def test_a_failing_or_stalled_stream_does_not_hold_it(db: Database) -> None:
    google = _connection(db, "google", ["login", "drive"])
    slack = _connection(db, "slack", ["audit"])
    _checkpoint(db, google, "login", {"high_water": _iso(T)})
    _checkpoint(db, slack, "audit", {}, health=Health.UNHEALTHY)
    stalled = NOW - timedelta(seconds=HOLD_SECONDS + 60)
    _checkpoint(db, google, "drive", {"high_water": _iso(T - timedelta(days=1))}, updated_at=stalled)
    assert anomaly_watermark(db, now=NOW) == T
    # while the same drive checkpoint, moving, holds it back
    assert anomaly_watermark(db, now=stalled + timedelta(seconds=1)) == T - timedelta(days=1)


class _Recorder:
    """A `pipeline.jobs.Scheduler` that keeps what it was asked for (and the cycle PageTrigger reads)."""

    def __init__(self, cycle: Cycle) -> None:
        self.cycle = cycle
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, job: str, **args: Any) -> None:
        self.asked.append((job, args))


def test_an_anomaly_stream_read_to_its_end_asks_for_its_partitions_anomaly_pass(
    db: Database, settings: Settings
) -> None:
    from detectors.partitions import partition_of
    from pipeline.embedded import PageTrigger

    with db.session() as session:
        session.add(
            Connection(name="contoso-m365", provider="m365", tenant="t", config={"organisation": "contoso"})
        )
    recorder = _Recorder(Cycle(db, settings))
    trigger = PageTrigger(recorder)  # type: ignore[arg-type]
    partition = partition_of("contoso", settings.pipeline_partitions)
    # a sign-in run that stored nothing new still moved the tenant's watermark: its anomaly pass
    trigger.finished("contoso-m365/signins", "succeeded")
    assert recorder.asked == [("anomaly", {"partition": partition})]
    # a snapshot stream, a failed run, a connection gone meanwhile: nothing
    trigger.finished("contoso-m365/users", "succeeded")
    trigger.finished("contoso-m365/signins", "failed: HTTP 503")
    trigger.finished("gone/signins", "succeeded")
    assert recorder.asked == [("anomaly", {"partition": partition})]
