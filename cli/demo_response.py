"""The demo's response part: the P1's Slack channel, a stakeholder update, its status-page entry,
its Jira issue, and the postmortem drafted once Jira says Done — through the simulator's Slack and Jira.

`configure` writes a response configuration (channels on P1/P2, a status page, Jira at the
simulator) before the cycle, so the cycle's response stage opens the channel and the issue by
itself; `show` writes and approves a customer update (four eyes), moves the issue to Done as a
person would in Jira, runs the response stage again and prints what happened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml
from sqlmodel import col, select

from cli.context import console
from core.audit import Actor
from core.db import Database
from core.models import Incident, IncidentResponse
from core.settings import Settings


def configure(demo_settings: Settings, info: dict[str, Any]) -> None:
    data_dir = Path(demo_settings.data_dir)
    token_file = data_dir / "jira-api-token"
    token_file.write_text(info["jira.token"])
    token_file.chmod(0o600)
    document = {
        "public_url": "http://127.0.0.1:8000",
        "status_page": {"title": "Demo status", "components": [{"name": "Sign-in"}, {"name": "Mail"}]},
        "jira": {
            "url": info["jira.base_url"],
            "project": "SEC",
            "user": info["jira.user"],
            "token_ref": f"file:{token_file}",
        },
    }
    (data_dir / "response.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def show(db: Database, demo_settings: Settings, info: dict[str, Any], writer: Actor, approver: Actor) -> None:
    from response import run_due
    from response.config import load_config
    from response.statuspage import summary
    from response.updates import publish_update, write_update

    with db.session(readonly=True) as session:
        state = session.exec(
            select(IncidentResponse)
            .where(IncidentResponse.channel_id != "")
            .order_by(col(IncidentResponse.id))
        ).first()
    if state is None:
        console.print("response: no P1/P2 incident, no channel")
        return
    config = load_config(demo_settings)
    incident_id = state.incident_id
    console.print(
        f"response: incident #{incident_id} has Slack channel #{state.channel_name} (summary pinned) "
        f"and Jira issue {state.jira_key or '—'}",
        highlight=False,
    )
    with db.session() as session:
        write_update(
            session,
            incident_id,
            audience="executives",
            text="Contained; no data left the tenant.",
            actor=writer,
            config=config,
        )
        update = write_update(
            session,
            incident_id,
            audience="customers",
            text="Some users may be asked to sign in again while we secure accounts.",
            actor=writer,
            config=config,
            state="identified",
            components=["Sign-in"],
        )
    with db.session() as session:
        publish_update(session, update.id or 0, actor=approver)
        page = summary(session, config)
    for shown in page["incidents"]:
        console.print(
            f"status page: {page['status']['description']} — {shown['name']} ({shown['status']})",
            highlight=False,
        )
    if state.jira_key:
        requests.post(
            f"{info['admin_url']}/jira/issues/{state.jira_key}/status", json={"status": "Done"}, timeout=30
        )
    run_due(db, demo_settings)
    with db.session(readonly=True) as session:
        incident = session.get(Incident, incident_id)
        state = session.exec(
            select(IncidentResponse).where(IncidentResponse.incident_id == incident_id)
        ).one()
    console.print(
        f"Jira {state.jira_key} moved to {state.jira_status or '—'}: incident #{incident_id} is "
        f"{incident.status if incident else '?'}; postmortem drafted ({len(state.postmortem_markdown)} chars):",
        highlight=False,
    )
    for line in state.postmortem_markdown.splitlines()[:12]:
        console.print(f"  {line}", highlight=False, markup=False)
