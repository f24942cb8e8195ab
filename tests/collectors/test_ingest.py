"""`tenantguard ingest`: exported logs load through the same normalisers, twice adds nothing, and
a bad line is quarantined with file:line and the reason while the rest loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from collectors.errors import IngestError
from collectors.ingest import ingest_files
from core.db import Database
from core.models import Connection, Event, QuarantinedRecord

SLACK = {
    "id": "e1",
    "date_create": "1763632801",
    "action": "user_login",
    "actor": {"type": "user", "user": {"id": "W1", "email": "a@x.example"}},
    "context": {"ip_address": "1.2.3.4"},
}


def _jsonl(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_with_a_bad_line_loads_the_rest_and_quarantines_the_line(db: Database, tmp_path: Path) -> None:
    export = _jsonl(
        tmp_path / "slack.jsonl",
        json.dumps(SLACK),
        '{"id": "e2", "date_create": 17636',
        "",
        json.dumps({**SLACK, "id": "e3"}),
        json.dumps({"id": "e4"}),
    )
    report = ingest_files(db, provider="slack", stream="audit", files=[export])
    assert (report.records, report.events_new, report.quarantined) == (4, 2, 2)
    with db.session(readonly=True) as s:
        sources = {q.source: q.reason for q in s.exec(select(QuarantinedRecord)).all()}
        connection = s.exec(select(Connection).where(Connection.name == "ingest:slack")).one()
    assert set(sources) == {f"{export}:2", f"{export}:5"}
    assert "not JSON" in sources[f"{export}:2"] and "date_create" in sources[f"{export}:5"]
    assert connection.enabled is False


def test_ingesting_the_same_export_twice_adds_nothing(db: Database, tmp_path: Path) -> None:
    export = tmp_path / "audit.json"
    export.write_text(json.dumps([SLACK, {**SLACK, "id": "e2"}]))
    first = ingest_files(db, provider="slack", stream="audit", files=[export])
    second = ingest_files(db, provider="slack", stream="audit", files=[export])
    assert (first.events_new, second.events_new, second.duplicates) == (2, 0, 2)


def test_google_per_event_exports_get_their_position_from_file_order(db: Database, tmp_path: Path) -> None:
    ident = {"time": "2026-11-20T10:00:01.123Z", "uniqueQualifier": "-7", "applicationName": "drive"}
    records = [
        {
            "id": ident,
            "actor": {"email": "a@x"},
            "type": "acl_change",
            "name": "change_user_access",
            "parameters": {},
        },
        {
            "id": ident,
            "actor": {"email": "a@x"},
            "type": "acl_change",
            "name": "change_document_visibility",
            "parameters": {},
        },
    ]
    export = _jsonl(tmp_path / "drive.jsonl", *(json.dumps(r) for r in records))
    ingest_files(db, provider="google", stream="drive", files=[export])
    with db.session(readonly=True) as s:
        ids = sorted(s.exec(select(Event.provider_event_id)).all())
    assert ids == ["2026-11-20T10:00:01.123Z/-7/0", "2026-11-20T10:00:01.123Z/-7/1"]


def test_an_unknown_stream_is_refused_before_anything_is_read(db: Database, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="slack/audit"):
        ingest_files(db, provider="slack", stream="messages", files=[tmp_path / "x"])
