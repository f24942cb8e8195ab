"""A drill from a simulator attack story: given the connections file `tenantguard simulator serve
--write-connections` writes for a simulator running the account_takeover story, when
`tenantguard drill start account_takeover --connections FILE` registers them as a drill's (source
`drill`) and the deployment collects,
detects and builds incidents as usual and the response stage runs, then the story's incident is
marked a drill end to end (channel `drill-…`, `[DRILL]` lines, Jira label), no other incident is,
its remediation plan runs through the story's connection only, and once it is resolved the drill's report is written and its connections are disabled."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from sqlmodel import select

from collectors import collect_once
from collectors.simulator_link import write_connections_file
from core.audit import Actor
from core.models import Connection, Drill, Incident, IncidentResponse
from detectors.pipeline import detect_new
from identity import resolve_people
from remediation.planner import plan_for_incident
from response import run_due
from tests.response.conftest import response_document
from timeline import build_incidents
from timeline.lifecycle import transition

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
LEAD = Actor.cli("principal:lead")


@pytest.mark.usefixtures("secrets_env")
def test_a_simulator_story_runs_as_a_drill(
    db,
    settings,
    database_url,
    tmp_path,
    response_sim,
    make_simulator,
    make_incident,
    make_connection,
    configure_response,
) -> None:
    configure_response(response_document(response_sim))
    real = make_incident("A real P2 elsewhere", priority="P2")
    real_m365 = make_connection("northwind-m365", "m365")
    story = make_simulator("account_takeover", users=20, days=2, seed=7)
    written = tmp_path / "story-connections.toml"
    write_connections_file(story.info, written, providers=["m365"])
    env = dict(os.environ, TENANTGUARD_DATA_DIR=str(settings.data_dir), TENANTGUARD_DATABASE_URL=database_url)
    command = ["drill", "start", "account_takeover", "--connections", str(written)]
    started = subprocess.run(
        [sys.executable, "-c", "from cli.main import run; run()", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr + started.stdout
    assert "started through 1 simulator connections: drill-" in started.stdout
    with db.session(readonly=True) as session:
        drill = session.exec(select(Drill)).one()
        [name] = drill.report["connections"]
        assert session.exec(select(Connection).where(Connection.name == name)).one().source == "drill"
    collect_once(db, settings)
    detect_new(db, settings)
    resolve_people(db)
    build_incidents(db, settings, notify=False)
    run_due(db, settings)
    run_due(db, settings)  # the Jira issue of a channel opened in the first run
    with db.session(readonly=True) as session:
        drill = session.get(Drill, drill.id)
        incident = session.get(Incident, drill.incident_id)
        marked = {r.incident_id: r for r in session.exec(select(IncidentResponse)).all()}
    assert incident is not None and incident.priority == "P1"
    assert marked[incident.id].drill and marked[incident.id].channel_name.startswith(
        f"drill-inc-{incident.id}"
    )
    assert not marked[real.id].drill and marked[real.id].channel_name.startswith(f"inc-{real.id}")
    issues = requests.get(response_sim.info["admin_url"] + "/jira/issues", timeout=10).json()["issues"]
    labels = {i["key"]: i["fields"]["labels"] for i in issues}
    assert "drill" in labels[marked[incident.id].jira_key] and "drill" not in labels[marked[real.id].jira_key]
    # Its remediation plan runs through the story's connection (the simulator), never the real tenant's.
    plan = plan_for_incident(db, incident.id, Actor.system("remediation"))
    with db.session(readonly=True) as session:
        drill_connection = session.exec(select(Connection.id).where(Connection.name == name)).one()
    assert plan.steps and {step.connection_id for step in plan.steps} == {drill_connection}
    assert real_m365.id != drill_connection
    transition(db, incident.id, "resolved", actor=LEAD)
    run_due(db, settings)
    with db.session(readonly=True) as session:
        drill = session.get(Drill, drill.id)
        enabled = {c.name: c.enabled for c in session.exec(select(Connection)).all()}
    assert drill.finished_at is not None and drill.report["seconds_to"]["channel"] is not None
    assert drill.report["connections"] == [name] and name.startswith("drill-")
    assert enabled[name] is False and all(v for k, v in enabled.items() if not k.startswith("drill-"))
