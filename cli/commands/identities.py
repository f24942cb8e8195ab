"""`tenantguard identities ...`: people across providers, their risk explained, and who can access what."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import typer

from cli.context import console, database
from cli.output import JsonOption, Output, OutputOption, chosen, emit, print_json

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
def list_people(
    limit: Annotated[int, typer.Option(help="How many, riskiest first.")] = 20,
    output: OutputOption = Output.TABLE,
    as_json: JsonOption = False,
) -> None:
    """The riskiest people, with the factors behind each score."""
    from sqlmodel import col, select

    from core.models import Person

    with database().session(readonly=True) as session:
        people = session.exec(select(Person).order_by(col(Person.risk_score).desc()).limit(limit)).all()
    rows = [
        {
            "person": p.primary_email,
            "score": round(p.risk_score, 1),
            "level": p.risk_level,
            "factors": [f"{f['factor']} (+{f['weight']:.0f})" for f in p.risk_factors],
        }
        for p in people
    ]
    emit(
        rows,
        chosen(output, as_json),
        title="Identity risk",
        columns={"person": "person", "score": "score", "level": "level", "factors": "factors"},
    )


@app.command("show")
def show(email: str, as_json: JsonOption = False) -> None:
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
    grants = what_can_access(db, person.primary_email, aliases=tuple(person.aliases))
    if as_json:
        print_json(
            {
                **person.model_dump(mode="json"),
                "accounts": [a.model_dump(mode="json") for a in accounts],
                "can_access": [asdict(g) for g in grants],
            }
        )
        return
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
    for grant in grants:
        console.print(
            f"  can reach {grant.kind} {grant.resource_name or grant.resource_id} ({grant.provider}) via {grant.via} as {grant.role}",
            highlight=False,
        )


@app.command("access")
def access(
    resource: Annotated[str, typer.Argument(help="A file or app id, or its name.")],
    output: OutputOption = Output.TABLE,
    as_json: JsonOption = False,
) -> None:
    """Who can reach a file or an app, and how."""
    from identity import who_can_access

    grants = who_can_access(database(), resource)
    if not grants:
        console.print(
            f"nothing known about {resource!r} in the newest snapshots", highlight=False, markup=False
        )
        raise typer.Exit(1)
    rows = [
        {
            "provider": g.provider,
            "who": g.principal or "?",
            "role": g.role,
            "via": g.via,
            "owner": g.owner,
            "high_risk": g.high_risk,
        }
        for g in grants
    ]
    emit(
        rows,
        chosen(output, as_json),
        title=f"Who can access {resource}",
        columns={
            "provider": "provider",
            "who": "who",
            "role": "role",
            "via": "via",
            "owner": "owner",
            "high_risk": "high-risk scopes",
        },
    )


COMMANDS: dict[str, Callable[..., Any]] = {}
