"""`tenantguard keys`: the encryption-at-rest keys (core.crypto) — which key encrypts what, and rotation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli.context import console, database, err_console

app = typer.Typer(help="Encryption keys of the data at rest: status and rotation.", no_args_is_help=True)
COMMANDS: dict[str, Callable[..., Any]] = {}


@app.command("status")
def status() -> None:
    """The key file's keys by fingerprint (never the keys) and how many stored values each encrypts."""
    from core.crypto import key_name, scan

    db = database()
    ring = db.keyring.get()
    counts: Counter[str] = Counter(kid or "" for _, kid in scan(db.engine))
    console.print(f"key file: {ring.path}")
    for index, known in enumerate(ring.ids):
        role = "primary (encrypts)" if index == 0 else "decrypts only"
        console.print(f"  {key_name(known)}  {role:<18}  {counts.pop(known, 0)} values")
    if counts.get(""):
        console.print(f"  in clear: {counts.pop('')} values (`tenantguard keys rotate` encrypts them)")
    for unknown, count in sorted(counts.items()):
        console.print(f"  [red]{key_name(unknown)}  NOT IN THE KEY FILE  {count} values (unreadable)[/red]")


@app.command("rotate")
def rotate(
    retire: Annotated[
        bool,
        typer.Option(
            "--retire",
            help="Drop the old keys from the key file once every value is under the new one (stop "
            "serve and workers first: a process still holding an old key keeps writing with it).",
        ),
    ] = False,
) -> None:
    """Put a new key first in the key file and re-encrypt every stored value under it (audited)."""
    from cli.identity import operator
    from core.audit import AuditAction, record
    from core.crypto import key_name, new_key, reencrypt, scan, write_keys

    db = database()
    actor = operator(db)
    old = db.keyring.get()
    path = old.path
    assert path is not None
    write_keys(path, [new_key(), *old.keys])
    db.keyring.reset()
    ring = db.keyring.get()
    counts = reencrypt(db.engine, ring)
    left = sum(1 for _, kid in scan(db.engine) if kid != ring.primary_id)
    retired = retire and left == 0
    if retired:
        write_keys(path, ring.keys[:1])
        db.keyring.reset()
    with db.session() as session:
        record(
            session,
            actor=actor,
            action=AuditAction.ENCRYPTION_KEY_ROTATED,
            object_type="encryption_key",
            object_id=ring.fingerprint,
            details={
                "previous": [key_name(k) for k in old.ids],
                "reencrypted": counts,
                "retired": retired,
            },
        )
    console.print(
        f"new primary key {ring.fingerprint}; {sum(counts.values())} values re-encrypted "
        f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items())) or 'none'})"
    )
    if retire and not retired:
        err_console.print(
            f"[yellow]{left} values were written meanwhile under an old key: old keys kept[/yellow]"
        )
        raise typer.Exit(1)
    console.print("old keys retired" if retired else f"old keys kept in {path} (they only decrypt now)")
