"""`tenantguard suppressions add|list|remove`: silence a rule for given field values, with a reason."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli.context import cli_actor, console, database, settings

app = typer.Typer(
    help="Suppressions: silence one rule for given field values, until an expiry.", no_args_is_help=True
)


def _parse_match(pairs: list[str]) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip():
            raise typer.BadParameter(f"--match {pair!r}: write FIELD=VALUE, e.g. ipAddress=203.0.113.7")
        existing = match.get(field.strip())
        if existing is None:
            match[field.strip()] = value
        else:  # the same field twice: any of the values
            match[field.strip()] = [*existing, value] if isinstance(existing, list) else [existing, value]
    return match


@app.command("add")
def add(
    rule: Annotated[str, typer.Argument(help="Rule id or name, as in `tenantguard rules list`.")],
    reason: Annotated[str, typer.Option("--reason", help="Why this is safe to silence (required).")],
    match: Annotated[
        list[str] | None,
        typer.Option(
            "--match", "-m", help="FIELD=VALUE the event must have (repeatable; * and ? wildcards)."
        ),
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="30d, 12h, 2w, or an ISO 8601 time (default: never).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Accept a rule id that is not in the loaded pack.")
    ] = False,
) -> None:
    """Silence RULE for events matching every --match (no --match: the whole rule)."""
    from core.clock import parse_time, utcnow
    from core.durations import until
    from detectors.pipeline import load_default_pack
    from detectors.suppressions import create_suppression

    expires_at = None
    if expires:
        try:
            expires_at = until(expires, utcnow()) or parse_time(expires)
        except ValueError:
            raise typer.BadParameter(f"--expires {expires!r}: write 30d, 12h, 2w or an ISO 8601 time")
    pack = None if force else load_default_pack(settings())
    with database().session() as session:
        row = create_suppression(
            session,
            rule_id=rule,
            match=_parse_match(match or []),
            reason=reason,
            actor=cli_actor(),
            expires_at=expires_at,
            pack=pack,
        )
        console.print(f"suppression {row.id} added for {row.rule_id}", highlight=False)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include expired suppressions.")] = False,
) -> None:
    """Suppressions with what each has silenced so far."""
    from detectors.suppressions import list_suppressions

    with database().session(readonly=True) as session:
        rows = list_suppressions(session, include_expired=all_)
    table = Table(title=f"{len(rows)} suppressions")
    for column in ("id", "rule", "match", "reason", "by", "expires", "suppressed"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.id),
            row.rule_id,
            ", ".join(f"{k}={v}" for k, v in (row.match or {}).items()) or "(whole rule)",
            row.reason,
            row.created_by,
            row.expires_at.isoformat() if row.expires_at else "never",
            str(row.suppressed_count),
        )
    console.print(table)


@app.command("remove")
def remove(
    suppression_id: Annotated[int, typer.Argument(help="Suppression id from `suppressions list`.")],
) -> None:
    """Delete a suppression (audited); matching events alert again from the next detection run."""
    from detectors.suppressions import remove_suppression

    with database().session() as session:
        row = remove_suppression(session, suppression_id, actor=cli_actor())
    console.print(f"suppression {suppression_id} for {row.rule_id} removed", highlight=False)
