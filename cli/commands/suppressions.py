"""`tenantguard suppressions add|list|remove`: silence a rule for given field values, with a reason."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.context import cli_actor, console, database, settings, when
from cli.output import JsonOption, Output, OutputOption, chosen, emit

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
    from detectors.pipeline import load_default_pack
    from detectors.suppressions import create_suppression

    expires_at = when(expires, "--expires", ahead=True) if expires else None
    pack = None if force else load_default_pack(settings())
    with database().session() as session:
        row = create_suppression(
            session,
            rule_id=rule,
            match=_parse_match(match or []),
            reason=reason,
            actor=cli_actor(permission="suppressions:write"),
            expires_at=expires_at,
            pack=pack,
        )
        console.print(f"suppression {row.id} added for {row.rule_id}", highlight=False)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include expired suppressions.")] = False,
    output: OutputOption = Output.TABLE,
    as_json: JsonOption = False,
) -> None:
    """Suppressions with what each has silenced so far."""
    from detectors.suppressions import list_suppressions

    with database().session(readonly=True) as session:
        rows = list_suppressions(session, include_expired=all_)
    fmt = chosen(output, as_json)
    shown = [
        {
            "id": row.id,
            "rule": row.rule_id,
            "match": (row.match or {})
            if fmt is not Output.TABLE
            else ", ".join(f"{k}={v}" for k, v in (row.match or {}).items()) or "(whole rule)",
            "reason": row.reason,
            "by": row.created_by,
            "expires": row.expires_at if row.expires_at or fmt is not Output.TABLE else "never",
            "suppressed": row.suppressed_count,
        }
        for row in rows
    ]
    emit(
        shown,
        fmt,
        title=f"{len(rows)} suppressions",
        columns={k: k for k in ("id", "rule", "match", "reason", "by", "expires", "suppressed")},
    )


@app.command("remove")
def remove(
    suppression_id: Annotated[int, typer.Argument(help="Suppression id from `suppressions list`.")],
) -> None:
    """Delete a suppression (audited); matching events alert again from the next detection run."""
    from detectors.suppressions import remove_suppression

    with database().session() as session:
        row = remove_suppression(session, suppression_id, actor=cli_actor(permission="suppressions:write"))
    console.print(f"suppression {suppression_id} for {row.rule_id} removed", highlight=False)
