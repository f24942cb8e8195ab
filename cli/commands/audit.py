"""`tenantguard audit`: export the chain (with its signed head), verify an export, an evidence package
or the live chain, and print the newest signed checkpoint and the public key for anchoring them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from cli.context import console, database, err_console, settings, when

if TYPE_CHECKING:
    from core.audit import VerifyResult
    from core.audit_keys import TrustedKeys

app = typer.Typer(
    help="Audit trail: export, verify, and the signed checkpoints to anchor outside.", no_args_is_help=True
)


@app.command("export")
def audit_export(
    format: Annotated[str, typer.Option("--format", help="jsonl or csv")] = "jsonl",
    since: Annotated[
        str | None, typer.Option(help="Only records at or after this time: 7d, yesterday, ISO 8601.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Export the audit chain, ending with its signed head (start and end seq, signed with the
    installation's key); verify the file later with `tenantguard audit verify`."""
    if format not in ("jsonl", "csv"):
        raise typer.BadParameter(f"--format must be jsonl or csv, not {format!r}")
    from core.audit import stream_export
    from core.audit_keys import load_signing_key

    since_at = when(since, "--since") if since else None
    key = load_signing_key(settings().signing_key_path)
    db = database()
    with db.session(readonly=True) as session:
        data = b"".join(stream_export(session, format, since=since_at, key=key))
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        err_console.print(f"wrote {output}")


def _trusted(public_keys: list[str]) -> TrustedKeys:
    """The keys given with --public-key (a file or the base64 key), else this installation's own key
    when its file is here; none: unpinned (the fingerprint is printed to compare)."""
    from core.audit_keys import TrustedKeys, load_signing_key, public_raw, read_public_key

    raws = []
    for given in public_keys:
        path = Path(given)
        try:
            raws.append(read_public_key(path.read_text() if path.is_file() else given))
        except ValueError as exc:
            raise typer.BadParameter(f"--public-key {given}: {exc}") from None
    if not raws:
        key_path = settings().signing_key_path
        if key_path.is_file():
            raws.append(public_raw(load_signing_key(key_path, create=False)))
    return TrustedKeys.of(raws)


def _signer(result: VerifyResult) -> str:
    if not result.signed_by:
        return "no signatures"
    names = ", ".join(result.signed_by)
    if result.pinned:
        return f"signed by {names} (a trusted key)"
    return f"signed by {names} (NOT pinned: compare with the published fingerprint, or pass --public-key)"


@app.command("verify")
def audit_verify(
    file: Annotated[
        Path | None,
        typer.Argument(help="An export (JSONL or CSV) or an evidence package; omit with --database."),
    ] = None,
    live: Annotated[bool, typer.Option("--database", help="Verify the live chain in the database.")] = False,
    public_key: Annotated[
        list[str] | None,
        typer.Option(
            "--public-key",
            help="Trusted public key (a PEM file, or the base64 key `audit public-key` prints); repeatable "
            "(old keys after a rotation). Default: this installation's key when its file is here.",
        ),
    ] = None,
    anchor: Annotated[
        list[Path] | None,
        typer.Option(
            "--anchor",
            help="A checkpoint printed by `audit checkpoint` and kept outside (mailed, published); "
            "repeatable. The chain must still hold it.",
        ),
    ] = None,
    allow_unsigned: Annotated[
        bool,
        typer.Option("--allow-unsigned", help="Accept an export without a signed head (links checked only)."),
    ] = False,
) -> None:
    """Check that an export, an evidence package (.zip) or the live chain has not been altered, cut at
    either end or rewritten, and that its signatures are the installation's; exit 1 naming what is wrong."""
    from core.audit import anchor_path, read_anchor, verify_database, verify_export

    if file is None and not live:
        raise typer.BadParameter("give an export FILE, or --database")
    trusted = _trusted(public_key or [])
    anchors = [read_anchor(path) for path in anchor or []]
    if file is not None:
        if not file.exists():
            raise typer.BadParameter(f"{file} does not exist")
        from compliance.evidence import is_package, verify_package

        if is_package(file):
            package = verify_package(file, trusted)
            if package.ok:
                console.print(
                    f"OK: evidence package, {package.files} files verified, signed by {package.key_fingerprint}; "
                    f"{package.audit_records} audit records, head hash {package.audit_head_hash}"
                )
                return
            err_console.print(f"[red]FAILED[/red]: {package.reason}")
            raise typer.Exit(1)
        result = verify_export(file, trusted=trusted, anchors=anchors, require_signed=not allow_unsigned)
    else:
        local = anchor_path(settings().signing_key_path)
        if local.is_file():
            anchors.append(read_anchor(local))
        with database().session(readonly=True) as session:
            result = verify_database(session, trusted=trusted, anchors=anchors)
    if result.ok:
        span = f" (seq {result.start_seq}..{result.end_seq})" if result.records else ""
        console.print(
            f"OK: {result.records} records verified{span}; head hash {result.head_hash}; "
            f"{result.checkpoints} signed checkpoint(s); {_signer(result)}",
            soft_wrap=True,
        )
        if result.reason:
            console.print(result.reason, soft_wrap=True)
        for note in result.notes:
            console.print(f"note: {note}", soft_wrap=True)
        return
    where = f" at seq {result.first_bad_seq}" if result.first_bad_seq is not None else ""
    err_console.print(f"[red]FAILED[/red]{where}: {result.reason}", soft_wrap=True)
    raise typer.Exit(1)


@app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Print the newest signed checkpoint (seq, head hash, time, signature, public key) as JSON, to mail
    to the auditor or publish; `audit verify --anchor FILE` later proves the chain still holds it."""
    from core.audit import checkpoint_document, latest_checkpoint

    with database().session(readonly=True) as session:
        latest = latest_checkpoint(session)
        doc = checkpoint_document(latest) if latest is not None else None
    if doc is None:
        err_console.print(
            "no signed checkpoint yet: `tenantguard serve` (or a worker) signs the head every "
            "TENANTGUARD_AUDIT_CHECKPOINT_INTERVAL"
        )
        raise typer.Exit(1)
    body = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if output is None:
        sys.stdout.buffer.write(body)
    else:
        output.write_bytes(body)
        err_console.print(f"wrote {output}")


@app.command("public-key")
def audit_public_key() -> None:
    """Print the installation's public key (PEM) and its fingerprint, to publish for auditors."""
    from core.audit_keys import fingerprint, load_signing_key, public_pem, public_raw

    key = load_signing_key(settings().signing_key_path)
    console.print(public_pem(key), end="")
    console.print(f"fingerprint {fingerprint(public_raw(key))}")
