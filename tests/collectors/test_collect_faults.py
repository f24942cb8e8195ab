"""How collection behaves when the provider misbehaves: refused permissions, rejected tokens,
pages that stay malformed, missing secrets — each contained to its stream or connection."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.options import CollectorOptions
from collectors.report import RunStatus
from collectors.retry import RetryPolicy
from core.db import Database
from core.models import AuditRecord, Connection, Event, QuarantinedRecord
from core.models.connection import Checkpoint
from core.settings import Settings
from providers.errors import Throttled

OPTIONS = CollectorOptions(threads=2, page_size=50, backoff_base=0.01, backoff_max=0.05)
SMALL_PAGES = CollectorOptions(threads=2, page_size=5, backoff_base=0.01, backoff_max=0.05)


def _connect(db: Database, sim: Any, streams: dict[str, list[str]]) -> None:
    sync_connections(
        db, connections_from_simulator(sim.info, providers=list(streams), streams=streams), source="simulator"
    )


def _results(report: Any) -> dict[str, Any]:
    return {f"{r.provider}/{r.stream}": r for r in report.results}


def _checkpoint(db: Database, stream: str) -> Checkpoint:
    with db.session(readonly=True) as s:
        return s.exec(select(Checkpoint).where(Checkpoint.stream == stream)).one()


def test_a_refused_permission_marks_only_that_stream_unhealthy_naming_the_permission(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given a tenant whose app registration lacks the permission to read sign-ins
    sim = past_simulator(faults="403=m365:signins")
    _connect(db, sim, {"m365": ["signins", "directory_audits"]})
    # when collecting
    report = _results(collect_once(db, settings, options=OPTIONS))
    # then the sign-in stream is unhealthy and says what to grant; directory audits were collected
    assert report["m365/signins"].status == RunStatus.FAILED
    assert "AuditLog.Read.All" in report["m365/signins"].error
    assert report["m365/directory_audits"].status == RunStatus.SUCCEEDED
    signins = _checkpoint(db, "signins")
    assert signins.health == "unhealthy" and "AuditLog.Read.All" in signins.health_reason
    with db.session(readonly=True) as s:
        health_changes = s.exec(
            select(AuditRecord).where(AuditRecord.action == "collector.stream_health_changed")
        ).all()
    assert any(r.details["stream"] == "signins" and r.details["to"] == "unhealthy" for r in health_changes)


def test_a_token_rejected_once_is_refreshed_and_the_read_continues(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given a Graph that rejects every request's first attempt with 401 (an expired token)
    sim = past_simulator(faults="401=1@m365:directory_audits,max_consecutive=1")
    _connect(db, sim, {"m365": ["directory_audits"]})
    # when collecting, then one fresh token per rejection lets every page through
    report = _results(collect_once(db, settings, options=OPTIONS))
    assert report["m365/directory_audits"].status == RunStatus.SUCCEEDED
    truth = set(sim.events("m365:directory_audits", visible=True, ids=True)["ids"])
    with db.session(readonly=True) as s:
        assert set(s.exec(select(Event.provider_event_id)).all()) == truth
    rejected = sim.faults_fired().get("401", 0)
    token_requests = [
        r for r in sim.requests if r["method"] == "POST" and r["path"].endswith("/oauth2/v2.0/token")
    ]
    assert rejected >= 1 and len(token_requests) == rejected + 1  # the first token, then one per 401


def test_credentials_rejected_after_a_refresh_stop_that_connection_only(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given an M365 connection whose token is always rejected, and a healthy Slack connection
    sim = past_simulator(faults="401=1@m365:signins,max_consecutive=0")
    _connect(db, sim, {"m365": ["signins"], "slack": ["audit"]})
    # when collecting
    report = _results(collect_once(db, settings, options=OPTIONS))
    # then M365 is unhealthy with a reason, and Slack was collected in full
    assert report["m365/signins"].status == RunStatus.FAILED
    assert "401" in report["m365/signins"].error
    assert report["slack/audit"].status == RunStatus.SUCCEEDED
    with db.session(readonly=True) as s:
        m365 = s.exec(select(Connection).where(Connection.provider == "m365")).one()
        slack_ids = set(s.exec(select(Event.provider_event_id).where(Event.provider == "slack")).all())
    assert m365.health == "unhealthy" and "401" in m365.health_reason
    assert slack_ids == set(sim.events("slack:audit", visible=True, ids=True)["ids"])


@pytest.mark.parametrize(
    ("scenario", "provider", "stream"),
    [("slack_session_theft", "slack", "audit"), ("okta_mfa_fatigue", "okta", "logs")],
)
def test_a_page_that_stays_malformed_is_quarantined_and_nothing_after_it_is_skipped(
    db: Database, settings: Settings, past_simulator, scenario: str, provider: str, stream: str
) -> None:
    # given an audit API (Slack's audit logs, Okta's System Log) whose pages are always corrupt
    sim = past_simulator(scenario, faults=f"malformed=1@{provider}:{stream},max_consecutive=0")
    _connect(db, sim, {provider: [stream]})
    # when collecting, then the run fails loudly, the page is quarantined and the checkpoint stays
    first = collect_once(db, settings, options=OPTIONS)
    assert not first.ok
    assert "quarantined" in first.failures[0].error
    with db.session(readonly=True) as s:
        quarantined = s.exec(select(QuarantinedRecord)).all()
    assert len(quarantined) == 1 and quarantined[0].stream == stream
    assert "not JSON" in quarantined[0].reason and quarantined[0].raw
    assert _checkpoint(db, stream).cursor == {}
    # and once the API recovers, the next run stores every event
    sim.set_faults("")
    assert collect_once(db, settings, options=OPTIONS).ok
    with db.session(readonly=True) as s:
        stored = set(s.exec(select(Event.provider_event_id)).all())
    assert stored == set(sim.events(f"{provider}:{stream}", visible=True, ids=True)["ids"])


def test_a_connection_with_an_unset_secret_does_not_stop_the_others(
    db: Database, settings: Settings, past_simulator, monkeypatch
) -> None:
    # given two connections, one of whose secret variables is not set in this process
    sim = past_simulator()
    _connect(db, sim, {"google": ["login"], "slack": ["audit"]})
    with db.session(readonly=True) as s:
        slack = s.exec(select(Connection).where(Connection.provider == "slack")).one()
    monkeypatch.delenv(slack.secret_refs["audit_token"].removeprefix("env:"))
    # when collecting
    report = _results(collect_once(db, settings, options=OPTIONS))
    # then Slack says which variable is missing and Google was collected
    assert report["slack/audit"].status == RunStatus.FAILED
    assert "is not set" in report["slack/audit"].error
    assert report["google/login"].status == RunStatus.SUCCEEDED and report["google/login"].records_new > 0


def test_a_429_waits_exactly_retry_after() -> None:
    # given a call throttled twice, with Retry-After 0.7 then 2
    waits: list[float] = []
    answers = iter([Throttled("busy", retry_after=0.7), Throttled("busy", retry_after=2.0), "page"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    # when retried, then it slept exactly what the provider asked, and got the page
    assert RetryPolicy(sleep=waits.append).run(call) == "page"
    assert waits == [0.7, 2.0]


def test_tokens_expiring_mid_run_are_renewed_for_every_provider(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given a simulator where about one request in seven finds its token expired (the retry with a
    # fresh token then succeeds: max_consecutive=1), and pages small enough
    # for dozens of requests (0.85^50 < 0.0003: the fault fires in every run, not most)
    sim = past_simulator(faults="expire_tokens=0.15,max_consecutive=1")
    streams = {"m365": ["signins", "directory_audits"], "google": ["login", "drive"], "slack": ["audit"]}
    _connect(db, sim, streams)
    # when collecting, then every stream completes with exactly the simulator's events
    report = collect_once(db, settings, options=SMALL_PAGES)
    assert report.ok, [r.error for r in report.failures]
    with db.session(readonly=True) as s:
        stored = set(s.exec(select(Event.provider, Event.stream, Event.provider_event_id)).all())
    truth = {
        (provider, stream, eid)
        for provider, names in streams.items()
        for stream in names
        for eid in sim.events(f"{provider}:{stream}", visible=True, ids=True)["ids"]
    }
    assert stored == truth
    assert len(sim.requests) > 50, len(sim.requests)
    assert sim.faults_fired().get("expire_token", 0) > 0
