"""Okta collection over real HTTP against the simulator: the System Log in full under faults
(0 lost, 0 duplicated), both ways to authenticate, and the inventory with factors and roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import ConnectionDefinition, sync_connections
from collectors.options import CollectorOptions
from collectors.report import RunStatus
from core.db import Database
from core.models import ConfigSnapshot, Event
from core.settings import Settings

SMALL_PAGES = CollectorOptions(threads=2, page_size=7, backoff_base=0.01, backoff_max=0.05)


def _results(report: Any) -> dict[str, Any]:
    return {f"{r.provider}/{r.stream}": r for r in report.results}


def _okta_ids(db: Database) -> list[str]:
    with db.session(readonly=True) as s:
        return list(s.exec(select(Event.provider_event_id).where(Event.provider == "okta")).all())


def test_the_system_log_is_collected_whole_through_throttling_errors_and_bad_pages(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given an Okta org that throttles (429 with X-Rate-Limit-Reset, no Retry-After), fails with
    # 5xx and truncates bodies now and then, read in pages of 3 (about 75 requests: each kind of
    # fault fires with a chance of missing below 1e-6, whatever the day's request keys hash to)
    sim = past_simulator(
        "okta_mfa_fatigue",
        faults="429=0.2@okta:logs,500=0.25@okta:logs,truncated=0.05@okta:logs,retry_after=0:0,max_consecutive=2",
    )
    sync_connections(db, connections_from_simulator(sim.info, providers=["okta"], streams={"okta": ["logs"]}))
    tiny_pages = CollectorOptions(threads=2, page_size=3, backoff_base=0.01, backoff_max=0.05)
    # when collecting twice (the second pass re-reads the overlap)
    first = _results(collect_once(db, settings, options=tiny_pages))
    collect_once(db, settings, options=tiny_pages)
    # then every System Log event is stored exactly once
    assert first["okta/logs"].status == RunStatus.SUCCEEDED, first["okta/logs"].error
    stored = _okta_ids(db)
    truth = sim.events("okta:logs", visible=True, ids=True)["ids"]
    assert len(stored) == len(set(stored))
    assert set(stored) == set(truth)
    fired = sim.faults_fired()
    assert fired.get("429", 0) >= 1 and fired.get("500", 0) >= 1
    # and Okta's own headers carried the wait: no request carried a Retry-After to lean on
    throttled = [r for r in sim.requests if r["status"] == 429]
    assert throttled and all(r["provider"] == "okta" for r in throttled)


def test_a_service_app_signs_its_client_assertion_and_reads_with_scoped_tokens(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given an Okta connection through an OAuth 2.0 service app (private_key_jwt), not an API token
    sim = past_simulator("okta_mfa_fatigue")
    info = sim.info
    key = Path(info["okta.private_key_file"])
    definition = ConnectionDefinition(
        name="okta-app",
        provider="okta",
        tenant=info["okta.domain"],
        config={
            "org_url": info["okta.org_url"],
            "client_id": info["okta.client_id"],
            "backfill_start": info["start"],
        },
        secrets={"private_key": f"file:{key}"},
        streams=("logs", "users", "policies"),
    )
    sync_connections(db, [definition])
    # when collecting
    report = _results(collect_once(db, settings, options=CollectorOptions(threads=2, page_size=200)))
    # then the token endpoint issued bearer tokens and every stream read through them
    assert {k: v.status for k, v in report.items()} == {
        "okta/logs": RunStatus.SUCCEEDED,
        "okta/users": RunStatus.SUCCEEDED,
        "okta/policies": RunStatus.SUCCEEDED,
    }
    assert any(r["path"] == "/oauth2/v1/token" and r["status"] == 200 for r in sim.requests)
    assert {r["audience"] for r in sim.requests if r["path"].startswith("/api/v1/")} == {"okta_oauth"}
    assert set(_okta_ids(db)) == set(sim.events("okta:logs", visible=True, ids=True)["ids"])
    with db.session(readonly=True) as s:
        users = s.exec(select(ConfigSnapshot).where(ConfigSnapshot.object_type == "user")).all()
    by_login = {u.data["profile"]["login"]: u.data for u in users}
    truth = sim.truth["stories"][0]
    assert len(by_login) == sim.info["users"]
    # the story's new super admin is in the inventory with the role it was granted
    granted = next(s for s in truth["steps"] if s["id"] == "super_admin")
    assert granted["events"]
    assert any(r["type"] == "SUPER_ADMIN" for u in by_login.values() for r in u["_roles"])
    assert all(isinstance(u["_factors"], list) for u in by_login.values())


def test_a_service_app_without_a_scope_is_told_which_scope_to_grant(
    db: Database, settings: Settings, past_simulator
) -> None:
    sim = past_simulator("okta_mfa_fatigue")
    info = sim.info
    definition = ConnectionDefinition(
        name="okta-narrow",
        provider="okta",
        tenant=info["okta.domain"],
        config={
            "org_url": info["okta.org_url"],
            "client_id": info["okta.client_id"],
            "scopes": ["okta.users.read"],
        },
        secrets={"private_key": f"file:{info['okta.private_key_file']}"},
        streams=("logs",),
    )
    sync_connections(db, [definition])
    report = _results(collect_once(db, settings, options=CollectorOptions(threads=1, page_size=200)))
    assert report["okta/logs"].status == RunStatus.FAILED
    assert "okta.logs.read" in report["okta/logs"].error
