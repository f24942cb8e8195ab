"""What /health and /metrics read: streams that fail and stages that lag, anomaly detection included."""

from __future__ import annotations

from datetime import timedelta

from core.clock import utcnow
from core.db import Database
from core.models import Checkpoint, Connection, Event
from core.models.enums import Health
from core.settings import Settings
from detectors.anomaly import detect_anomalies
from pipeline.health import read_lag


def test_a_failing_stream_and_events_waiting_for_anomaly_detection_are_named(
    db: Database, settings: Settings
) -> None:
    now = utcnow()
    # given a failing stream and a sign-in stored two hours ago that anomaly detection has not judged
    with db.session() as session:
        connection = Connection(name="acme-google", provider="google", tenant="acme.test")
        session.add(connection)
        session.flush()
        session.add(
            Checkpoint(
                connection_id=int(connection.id or 0),
                stream="login",
                health=Health.UNHEALTHY,
                health_reason="401 from the Reports API",
            )
        )
        session.add(
            Event(
                connection_id=int(connection.id or 0),
                provider="google",
                stream="login",
                provider_event_id="login-1",
                occurred_at=now - timedelta(hours=3),
                ingested_at=now - timedelta(hours=2),
                actor="a@acme.test",
                action="login_success",
                raw={"name": "login_success", "actor": {"email": "a@acme.test"}},
            )
        )
    # then health names the stream and the anomaly stage's backlog and wait
    lag = read_lag(db, now=now)
    [anomaly] = [s for s in lag.stages if s.stage == "anomaly"]
    assert anomaly.backlog == 1 and anomaly.oldest_seconds >= 7200
    problems = lag.problems(60)
    assert "stream acme-google/login failing: 401 from the Reports API" in problems
    # named by its tenant partition, as detection is
    assert any(p.startswith("stage anomaly:p") and "lags: 1 waiting" in p for p in problems)
    # and once judged, the anomaly stage no longer lags
    detect_anomalies(db, settings)
    [anomaly] = [s for s in read_lag(db, now=now).stages if s.stage == "anomaly"]
    assert anomaly.backlog == 0 and not any(
        p.startswith("stage anomaly") for p in read_lag(db, now=now).problems(60)
    )


def test_health_names_anomaly_detection_s_cursors_and_streams_as_detectors_anomaly_does() -> None:
    from detectors.anomaly.engine import READ_STREAMS, WHOLE_SCOPE
    from detectors.partitions import ANOMALY
    from pipeline.health import ANOMALY_STREAMS

    assert (
        (ANOMALY.legacy, ANOMALY.streams)
        == (WHOLE_SCOPE, frozenset(READ_STREAMS))
        == (WHOLE_SCOPE, ANOMALY_STREAMS)
    )
