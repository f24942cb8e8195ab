"""`tenantguard ingest`: load exported logs through the collectors' normalisers (the CLI then detects).

Accepted files: a JSON array, JSON Lines (one record per line; blank lines skipped), one API
page or export batch (a Graph page's `value`, an Azure Monitor / Event Hub `records` batch, a
Reports API page's `items`, a Slack audit page's `entries`; JSON Lines of such pages too), or a
CSV export (the unified audit log export from Purview, whose `AuditData` column is the record;
the sign-ins CSV downloaded from the Entra admin centre, whose portal columns — `Date (UTC)`,
`Request ID`, `Username`, `IP address`, `Location`, `Sign-in error code` ... — become the Graph
signIn's properties, non-interactive when the file name says so; any other CSV is one record per
row, its JSON cells parsed and True/False as booleans), in any format the
stream's normaliser takes — Graph sign-ins or directory audits (plain, wrapped by an Azure
Monitor diagnostic export, or Log Analytics `SigninLogs` rows), unified audit records, Google
raw activities or one-record-per-event records, Slack audit entries (numeric or text
`date_create`).

Events are stored under a connection (``--connection``, else ``ingest:<provider>``) and keyed by
the provider's ids, so loading the same export twice, or an export that overlaps what the
collectors read, adds nothing twice. A line that is not JSON or not a usable record is
quarantined with ``file:line`` and the reason; the rest of the file still loads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlmodel import select

from collectors.errors import IngestError
from collectors.store import insert_events
from core.audit import Actor, AuditAction, record
from core.db import Database
from core.models import Connection
from core.normalise import EVENT_NORMALISERS, NormalisedEvent, NormaliseError, normalise
from core.normalise.google import is_raw_activity
from core.paths import dig, lookup
from core.quarantine import quarantine

BATCH = 2000
ACTOR = Actor.system("ingest")


@dataclass(frozen=True)
class IngestReport:
    files: int
    records: int
    events_read: int
    events_new: int
    quarantined: int
    connection: str
    problems: tuple[str, ...] = ()

    @property
    def duplicates(self) -> int:
        return self.events_read - self.events_new


@dataclass
class _Totals:
    records: int = 0
    read: int = 0
    new: int = 0
    quarantined: int = 0
    problems: list[str] = field(default_factory=list)


def ingest_connection(db: Database, provider: str, name: str | None = None) -> Connection:
    """The connection ingested events belong to; `ingest:<provider>` is created (audited) on first use."""
    wanted = name or f"ingest:{provider}"
    with db.session() as session:
        row = session.exec(select(Connection).where(Connection.name == wanted)).first()
        if row is not None:
            if row.provider != provider:
                raise IngestError(f"connection {wanted!r} is a {row.provider} connection, not {provider}")
            return row
        if name is not None:
            raise IngestError(f"no connection named {name!r}; omit --connection to use ingest:{provider}")
        row = Connection(
            name=wanted,
            provider=provider,
            tenant="file-import",
            enabled=False,  # nothing to poll: it only owns imported events
            config={"kind": "ingest"},
            source="ingest",
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor=ACTOR,
            action=AuditAction.CONNECTION_CREATED,
            object_type="connection",
            object_id=str(row.id),
            details={"name": wanted, "provider": provider, "source": "ingest"},
        )
        return row


# The records of one API page or export batch sit under one of these keys (the others are paging).
PAGE_KEYS = ("value", "records", "items", "entries")
_RECORD_KEYS = {"id", "uuid", "creationtime", "createddatetime", "date_create", "events"}


def page_items(item: Any) -> list[Any] | None:
    """The records of a page (`{"value": [...]}`, `{"records": [...]}` ...); None for a record."""
    if not isinstance(item, dict) or any(str(key).lower() in _RECORD_KEYS for key in item):
        return None
    for key in PAGE_KEYS:
        value = lookup(item, key)
        if isinstance(value, list):
            return value
    return None


def _expand(where: str, item: Any) -> Iterator[tuple[str, Any, str | None]]:
    items = page_items(item)
    if items is None:
        yield where, item, None
        return
    for index, entry in enumerate(items):
        yield f"{where}[{index}]", entry, None


def _cell(value: str | None) -> Any:
    if value is None:
        return None
    if value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


# The Entra admin centre's sign-ins download (Monitoring > Sign-in logs > Download > CSV): portal
# column -> Graph signIn property (the portal writes "Application ID " with a trailing space and
# "Autonomous system  number" with two; names are compared with their whitespace collapsed).
_ENTRA_SIGNIN_COLUMNS = {
    "Date (UTC)": "createdDateTime",
    "Request ID": "id",
    "User agent": "userAgent",
    "Correlation ID": "correlationId",
    "User ID": "userId",
    "User": "userDisplayName",
    "Username": "userPrincipalName",
    "Cross tenant access type": "crossTenantAccessType",
    "Incoming token type": "incomingTokenType",
    "Authentication Protocol": "authenticationProtocol",
    "Unique token identifier": "uniqueTokenIdentifier",
    "Original transfer method": "originalTransferMethod",
    "Client credential type": "clientCredentialType",
    "Application": "appDisplayName",
    "Application ID": "appId",
    "App owner tenant ID": "appOwnerTenantId",
    "Resource": "resourceDisplayName",
    "Resource ID": "resourceId",
    "Resource tenant ID": "resourceTenantId",
    "Home tenant ID": "homeTenantId",
    "Home tenant name": "homeTenantName",
    "IP address": "ipAddress",
    "Client app": "clientAppUsed",
    "Sign-in identifier": "signInIdentifier",
    "Session ID": "sessionId",
    "IP address (seen by resource)": "ipAddressFromResourceProvider",
    "Global Secure Access IP address": "globalSecureAccessIpAddress",
    "Autonomous system number": "autonomousSystemNumber",
    "Token issuer type": "tokenIssuerType",
    "Token issuer name": "tokenIssuerName",
    "Latency": "processingTimeInMilliseconds",
    "Service principal ID": "servicePrincipalId",
    "Service principal name": "servicePrincipalName",
    "Credential key ID": "servicePrincipalCredentialKeyId",
    "Credential thumbprint": "servicePrincipalCredentialThumbprint",
    "Managed Identity type": "managedIdentityType",
}
_ENTRA_ENUMS = {  # portal wording -> the Graph enum value
    "single-factor authentication": "singleFactorAuthentication",
    "multifactor authentication": "multiFactorAuthentication",
    "not applied": "notApplied",
    "success": "success",
    "failure": "failure",
    "member": "member",
    "guest": "guest",
}


def _column(name: str) -> str:
    return " ".join(name.split())


def is_entra_signin_csv(columns: Sequence[str]) -> bool:
    names = {_column(c) for c in columns if c}
    return {"Date (UTC)", "Request ID", "Sign-in error code"} <= names


def _enum(value: Any) -> Any:
    return _ENTRA_ENUMS.get(value.strip().lower(), value) if isinstance(value, str) else value


def entra_signin_from_portal_row(row: dict[str, Any], *, interactive: bool = True) -> dict[str, Any]:
    """One row of the Entra admin centre's sign-ins CSV as the Graph signIn it shows."""
    cells = {_column(k): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k}
    cells = {k: v for k, v in cells.items() if v not in (None, "")}
    signin: dict[str, Any] = {
        prop: cells[column] for column, prop in _ENTRA_SIGNIN_COLUMNS.items() if column in cells
    }
    code = str(cells.get("Sign-in error code") or "")
    status: dict[str, Any] = {
        "errorCode": int(code) if code.isascii() and code.lstrip("-").isdigit() else (code or None)
    }
    if cells.get("Failure reason"):
        status["failureReason"] = cells["Failure reason"]
    if cells.get("Status"):
        status["additionalDetails"] = cells["Status"]  # Success | Failure | Interrupted
    signin["status"] = status
    location = cells.get("Location")
    if isinstance(location, str):
        parts = [p.strip() for p in location.split(",")]
        place = {"city": None, "state": None, "countryOrRegion": parts[-1] or None}
        if len(parts) >= 2:
            place["city"] = parts[0] or None
        if len(parts) >= 3:
            place["state"] = ", ".join(parts[1:-1]) or None
        signin["location"] = place
    device = {
        key: cells[column]
        for column, key in (
            ("Device ID", "deviceId"),
            ("Browser", "browser"),
            ("Operating System", "operatingSystem"),
            ("Join Type", "trustType"),
        )
        if column in cells
    }
    for column, key in (("Compliant", "isCompliant"), ("Managed", "isManaged")):
        if column in cells:
            device[key] = str(cells[column]).lower() == "true"
    if device:
        signin["deviceDetail"] = device
    if cells.get("User type"):
        signin["userType"] = _enum(cells["User type"])
    if cells.get("Authentication requirement"):
        signin["authenticationRequirement"] = _enum(cells["Authentication requirement"])
    if cells.get("Conditional Access"):
        signin["conditionalAccessStatus"] = _enum(cells["Conditional Access"])
    if cells.get("Multifactor authentication auth method") or cells.get("Multifactor authentication result"):
        signin["mfaDetail"] = {
            "authMethod": cells.get("Multifactor authentication auth method"),
            "authDetail": cells.get("Multifactor authentication auth detail"),
        }
        signin["authenticationDetails"] = [
            {
                "authenticationMethod": cells.get("Multifactor authentication auth method"),
                "authenticationStepResultDetail": cells.get("Multifactor authentication result"),
                "succeeded": status["errorCode"] == 0,
            }
        ]
    for column, key in (
        ("Flagged for review", "flaggedForReview"),
        ("Through Global Secure Access", "isThroughGlobalSecureAccess"),
    ):
        if column in cells:
            signin[key] = str(cells[column]).lower() in ("true", "yes")
    signin["isInteractive"] = interactive
    if "servicePrincipalId" in signin and "userPrincipalName" not in signin:
        signin["signInEventTypes"] = ["servicePrincipal"]
        signin["isInteractive"] = False
    return signin


def _csv_records(path: Path, data: bytes) -> Iterator[tuple[str, Any, str | None]]:
    """One record per row: the row's `AuditData` JSON (unified audit log exports), a Graph signIn
    (the Entra admin centre's sign-ins CSV), else the row."""
    csv.field_size_limit(max(csv.field_size_limit(), 16 << 20))
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig", "replace"), newline=""))
    entra = is_entra_signin_csv(reader.fieldnames or [])
    interactive = "noninteractive" not in path.name.lower().replace("-", "").replace("_", "")
    seen: dict[str, int] = {}
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if entra:
                signin = entra_signin_from_portal_row(row, interactive=interactive)
                request = str(signin.get("id") or "")
                # rows of one request (an interrupt, then the success) share the request ID
                repeat = seen.get(request, 0)
                seen[request] = repeat + 1
                if request and repeat:
                    signin["id"] = f"{request}#{repeat}"
                    signin["originalRequestId"] = request
                yield where, signin, None
                continue
            audit = lookup(row, "AuditData")
            if audit not in (None, ""):
                try:
                    yield where, orjson.loads(audit), None
                except orjson.JSONDecodeError as exc:
                    yield where, audit, f"AuditData is not JSON ({exc})"
                continue
            yield where, {key: _cell(value) for key, value in row.items() if key}, None
    except csv.Error as exc:
        yield f"{path}:{reader.line_num}", "", f"not CSV ({exc})"


def read_records(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    """(where, record or raw text, problem) for every record of a JSON array, JSON Lines, page
    or CSV file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark (Windows exports)
    head = data.lstrip()[:1]
    if head == b"{":
        try:
            whole = orjson.loads(data)
        except orjson.JSONDecodeError:
            whole = None  # JSON Lines
        if whole is not None:
            items = page_items(whole)
            if items is None:
                yield f"{path}:1", whole, None
            else:
                yield from _expand(str(path), whole)
            return
    elif head not in (b"[", b""):
        yield from _csv_records(path, data)
        return
    if head == b"[":
        try:
            items = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            yield (
                f"{path}:{_line_of(data, exc.pos)}",
                data.decode("utf-8", "replace"),
                f"not a JSON array ({exc})",
            )
            return
        for index, item in enumerate(items):
            yield f"{path}[{index}]", item, None
        return
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield f"{path}:{lineno}", line.decode("utf-8", "replace"), f"not JSON ({exc})"
            continue
        yield from _expand(f"{path}:{lineno}", parsed)


def _line_of(data: bytes, pos: int | None) -> int:
    return data.count(b"\n", 0, pos or 0) + 1


class _GoogleIndexer:
    """Per-event exports carry no position in `events[]`; number records of one activity in file order."""

    def __init__(self) -> None:
        self._seen: dict[tuple[Any, Any], int] = {}

    def __call__(self, item: Any) -> Any:
        if not isinstance(item, dict) or is_raw_activity(item) or "event_index" in item:
            return item
        key = (dig(item, "id", "time"), dig(item, "id", "uniqueQualifier"))
        index = self._seen.get(key, 0)
        self._seen[key] = index + 1
        return {**item, "event_index": index}


def ingest_files(
    db: Database,
    *,
    provider: str,
    stream: str,
    files: Sequence[Path],
    connection: str | None = None,
) -> IngestReport:
    """Load `files` into `provider`/`stream`; the caller runs detection over what is new."""
    if (provider, stream) not in EVENT_NORMALISERS:
        known = ", ".join(f"{p}/{s}" for p, s in sorted(EVENT_NORMALISERS))
        raise IngestError(f"cannot ingest {provider}/{stream}: event streams are {known}")
    for path in files:
        if not Path(path).is_file():
            raise IngestError(f"{path} is not a file")
    target = ingest_connection(db, provider, connection)
    totals = _Totals()
    for path in files:
        _ingest_file(db, target, provider, stream, Path(path), totals)
    return IngestReport(
        files=len(files),
        records=totals.records,
        events_read=totals.read,
        events_new=totals.new,
        quarantined=totals.quarantined,
        connection=target.name,
        problems=tuple(totals.problems),
    )


def _ingest_file(
    db: Database, target: Connection, provider: str, stream: str, path: Path, totals: _Totals
) -> None:
    indexer = _GoogleIndexer() if provider == "google" else (lambda item: item)
    batch: list[NormalisedEvent] = []
    bad: list[tuple[str, str, Any]] = []

    def flush() -> None:
        with db.session() as session:
            totals.new += insert_events(
                session, connection_id=target.id, provider=provider, stream=stream, events=batch
            )
            for where, reason, raw in bad:
                quarantine(
                    session,
                    connection_id=target.id,
                    provider=provider,
                    stream=stream,
                    source=where,
                    reason=reason,
                    raw=raw,
                )
        totals.read += len(batch)
        totals.quarantined += len(bad)
        totals.problems.extend(f"{where}: {reason}" for where, reason, _ in bad[:20])
        batch.clear()
        bad.clear()

    for where, item, problem in read_records(path):
        totals.records += 1
        if problem is not None:
            bad.append((where, problem, item))
        else:
            try:
                batch.extend(normalise(provider, stream, indexer(item)))
            except NormaliseError as exc:
                bad.append((where, str(exc), item))
        if len(batch) + len(bad) >= BATCH:
            flush()
    flush()
