"""MTTA per policy and per responder: two P1s paged on the simulated clock, acknowledged after 3
and 7 minutes by two people (one from the API, one by resolving from a page); a third never
acknowledged. `tenantguard oncall report` prints the same figures the service computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from core.audit import Actor, Channel
from core.clock import utcnow
from oncall import acknowledge, run_due
from oncall.actions import resolve
from oncall.service import mtta_report
from tests.oncall.conftest import oncall_document


def test_mtta_per_policy_and_responder(
    db, settings, database_url, paging_sim, smtp, configure, make_incident
):
    configure(oncall_document(paging_sim, smtp[0].port))
    t0 = utcnow() - timedelta(hours=1)
    first, second, third = (make_incident().id for _ in range(3))
    run_due(db, settings, now=t0)
    with db.session() as session:
        acknowledge(
            session,
            incident_id=first,
            actor=Actor("principal:alice", Channel.API),
            via="api",
            now=t0 + timedelta(minutes=3),
        )
        resolve(
            session,
            incident_id=second,
            actor=Actor("responder:bob", Channel.API),
            via="sms",
            now=t0 + timedelta(minutes=7),
        )

    with db.session(readonly=True) as session:
        found = mtta_report(session, t0 - timedelta(days=1), utcnow())

    [policy] = found["policies"]
    assert (policy["policy"], policy["escalations"], policy["acknowledged"]) == ("security", 3, 2)
    assert (policy["mtta_seconds"], policy["median_seconds"], policy["max_seconds"]) == (300.0, 300.0, 420.0)
    assert [(r["responder"], r["mtta_seconds"]) for r in found["responders"]] == [
        ("alice", 180.0),
        ("bob", 420.0),
    ]
    assert third  # never acknowledged: counted in escalations only

    cli = subprocess.run(
        [sys.executable, "-c", "from cli.main import run; run()", "oncall", "report", "--json"],
        env={
            **os.environ,
            "TENANTGUARD_DATABASE_URL": database_url,
            "TENANTGUARD_DATA_DIR": str(settings.data_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    printed = json.loads(cli.stdout)
    assert printed["policies"] == found["policies"] and printed["responders"] == found["responders"]
