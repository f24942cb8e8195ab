"""`tenantguard identities ...`: people across providers, their risk explained, and who can access what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.context import console, database

app = typer.Typer(
    help="People across M365, Google and Slack: resolution, risk, access.", no_args_is_help=True
)


@app.command("resolve")
def resolve() -> None:
    """Resolve people from the newest user snapshots and score their risk."""
    from identity import resolve_people, score_people

    db = database()
    report = resolve_people(db)
    scored = score_people(db)
    console.print(
        f"{report.people} people from {report.accounts} accounts ({report.linked_across_providers} across providers); {scored} scored"
    )


@app.command("list")
def list_people(limit: Annotated[int, typer.Option(help="How many, riskiest first.")] = 20) -> None:
    """The riskiest people, with the factors behind each score."""
    from sqlmodel import col, select

    from core.models import Person

    with database().session(readonly=True) as session:
        people = session.exec(select(Person).order_by(col(Person.risk_score).desc()).limit(limit)).all()
    table = Table(title="Identity risk")
    for column in ("person", "score", "level", "factors"):
        table.add_column(column)
    for person in people:
        factors = ", ".join(f"{f['factor']} (+{f['weight']:.0f})" for f in person.risk_factors)
        table.add_row(person.primary_email, f"{person.risk_score:.0f}", person.risk_level, factors)
    console.print(table)


@app.command("show")
def show(email: str) -> None:
    """One person: accounts per provider, risk factors with weights, and what they can reach."""
    from sqlmodel import select

    from core.models import Account, Person
    from identity import what_can_access

    db = database()
    with db.session(readonly=True) as session:
        person = session.exec(select(Person).where(Person.primary_email == email.lower())).first()
        if person is None:
            raise typer.BadParameter(
                f"no person with primary e-mail {email}; run `tenantguard identities resolve` first"
            )
        accounts = session.exec(select(Account).where(Account.person_id == person.id)).all()
    console.print(
        f"[bold]{person.primary_email}[/bold] risk {person.risk_score:.0f} ({person.risk_level}); aliases: {', '.join(person.aliases) or '-'}"
    )
    for account in accounts:
        console.print(
            f"  {account.provider}: {account.provider_user_id} admin={account.is_admin} mfa={account.mfa_registered} enabled={account.enabled}",
            highlight=False,
        )
    for factor in person.risk_factors:
        console.print(f"  +{factor['weight']:.0f} {factor['factor']}: {factor['detail']}", highlight=False)
    for grant in what_can_access(db, person.primary_email, aliases=tuple(person.aliases)):
        console.print(
            f"  can reach {grant.kind} {grant.resource_name or grant.resource_id} ({grant.provider}) via {grant.via} as {grant.role}",
            highlight=False,
        )


@app.command("access")
def access(resource: Annotated[str, typer.Argument(help="A file or app id, or its name.")]) -> None:
    """Who can reach a file or an app, and how."""
    from identity import who_can_access

    grants = who_can_access(database(), resource)
    if not grants:
        console.print(f"nothing known about {resource!r} in the newest snapshots")
        raise typer.Exit(1)
    table = Table(title=f"Who can access {resource}")
    for column in ("provider", "who", "role", "via", "owner", "high-risk scopes"):
        table.add_column(column)
    for g in grants:
        table.add_row(
            g.provider, g.principal or "?", g.role, g.via, g.owner or "", "yes" if g.high_risk else ""
        )
    console.print(table)


COMMANDS: dict[str, Callable[..., Any]] = {}
