"""`tenantguard response show|update|publish|postmortem|tick`: channels, updates, tickets, postmortems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.context import cli_actor, console, database, settings

app = typer.Typer(
    help="Response: incident channels, stakeholder updates, status page, Jira, postmortems.",
    no_args_is_help=True,
)


@app.command("show")
def show(incident_id: Annotated[int, typer.Argument(help="Incident id.")]) -> None:
    """An incident's response: channel, Jira issue, next update due, updates."""
    from response.journal import state_for
    from response.updates import updates_of

    with database().session() as session:
        row = state_for(session, incident_id)
        view = row.model_dump(mode="json", exclude={"own_ts", "postmortem_markdown"})
        view["updates"] = [u.model_dump(mode="json") for u in updates_of(session, incident_id)]
    console.print_json(json.dumps(view))


@app.command("update")
def update(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    text: Annotated[str, typer.Option(help="What to say.")],
    audience: Annotated[str, typer.Option(help="responders, executives or customers.")] = "responders",
    state: Annotated[str, typer.Option(help="Status-page state for customers.")] = "investigating",
    component: Annotated[
        list[str] | None, typer.Option(help="Affected status-page component (repeat).")
    ] = None,
) -> None:
    """Write a stakeholder update (customers' wording waits for someone else's `publish`)."""
    from response.config import load_config
    from response.updates import write_update

    with database().session() as session:
        made = write_update(
            session,
            incident_id,
            audience=audience,
            text=text,
            actor=cli_actor(permission="incidents:write"),
            config=load_config(settings()),
            state=state,
            components=list(component or []),
        )
        console.print(f"update #{made.id} ({made.audience}) {made.status}")


@app.command("publish")
def publish(update_id: Annotated[int, typer.Argument(help="Stakeholder update id.")]) -> None:
    """Approve a public update's wording: it shows on the status page (not by its author)."""
    from response.updates import publish_update

    with database().session() as session:
        made = publish_update(session, update_id, actor=cli_actor(permission="status:publish", approves=True))
        console.print(f"update #{made.id} published by {made.approved_by}")


@app.command("postmortem")
def postmortem(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    html: Annotated[bool, typer.Option("--html", help="HTML instead of Markdown.")] = False,
    pdf: Annotated[Path | None, typer.Option("--pdf", help="Write it as a PDF to this file.")] = None,
) -> None:
    """Print the postmortem drafted from the incident's timeline (or write it as a PDF)."""
    from response.config import load_config
    from response.postmortem import render, render_pdf

    with database().session(readonly=True) as session:
        if pdf is not None:
            pdf.write_bytes(render_pdf(session, incident_id, load_config(settings())))
            console.print(f"postmortem of incident {incident_id} written to {pdf}")
            return
        print(render(session, incident_id, load_config(settings()), "html" if html else "markdown"))


@app.command("review")
def review_command(
    incident_id: Annotated[int, typer.Argument(help="Incident id.")],
    comment: Annotated[str, typer.Option("--comment", help="What the reviewer says.")] = "",
) -> None:
    """Review the incident's postmortem; it is signed off once every required reviewer reviewed."""
    from response.config import load_config
    from response.postmortem import review

    with database().session() as session:
        row = review(session, incident_id, load_config(settings()), actor=cli_actor(), comment=comment)
        signed = row.postmortem_signed_off_at
    console.print(f"postmortem of incident {incident_id} reviewed" + ("; signed off" if signed else ""))


@app.command("tick")
def tick() -> None:
    """Run the response stage once (what `serve` does every cycle)."""
    from response import run_due

    report = run_due(database(), settings())
    console.print(
        f"channels opened {len(report.channels.created)}, mirrored {report.channels.mirrored}, "
        f"reminders {len(report.updates.reminders)}, tickets {len(report.tickets.created)}, "
        f"postmortems {len(report.postmortems)}"
    )
    for error in report.errors:
        console.print(f"  [red]{error}[/red]")
