"""End to end: `tenantguard serve`, a real process against the simulator, builds the daily digest
of the low-signal findings by itself and posts it to the notification channel, opening no P4
incident for them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlmodel import select

from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor
from core.db import Database
from core.models import Incident
from core.models.noise import Digest
from core.settings import Settings
from tests.serve_process import serve_until

pytestmark = pytest.mark.slow


def _digest_posts(handle) -> list[str]:
    texts = [c["target"].get("text", "") for c in handle.changes if c["action"] == "post_message"]
    return [t for t in texts if t.startswith("Daily digest ")]


def test_serve_alone_builds_and_posts_the_daily_digest(
    make_simulator, db: Database, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    # given a quiet tenant (no attack) connected as an operator would, notifying #security-ops
    handle = make_simulator("quiet_week", users=20, days=3)
    sync_connections(
        db,
        connections_from_simulator(handle.info, extra_config={"notify_channel": "#security-ops"}),
        actor=Actor.cli("principal:test"),
    )
    env = dict(os.environ, TENANTGUARD_DATA_DIR=str(settings.data_dir), TENANTGUARD_DATABASE_URL=database_url)
    log = tmp_path / "serve.log"

    def every_digest_posted() -> list[Digest]:
        with db.session(readonly=True) as session:
            stored = list(session.exec(select(Digest).order_by(Digest.day)).all())
        posted = [d for d in stored if d.notifications.get("ts")]
        return stored if stored and len(posted) == len(stored) == len(_digest_posts(handle)) else []

    # when `tenantguard serve` runs by itself (one digest per day and tenant: each connection is one)
    serve_until(env, log, every_digest_posted, "every digest posted")
    # then the days that ended have a digest each with findings, each posted once, and the low
    # end opened nothing (serve may have built one more digest between the check and its stop)
    with db.session(readonly=True) as session:
        digests = list(session.exec(select(Digest).order_by(Digest.day)).all())
        incidents = list(session.exec(select(Incident)).all())
    posted = [d for d in digests if d.notifications.get("ts")]
    assert posted and all(d.finding_count > 0 for d in digests)
    assert len(_digest_posts(handle)) == len(posted)
    assert not [i for i in incidents if i.priority in ("P1", "P2")]
