"""Storing what the collectors read: events once per provider id, snapshots only when they change,
messages only redacted, unusable input quarantined with its reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import func, select

from collectors.store import insert_events, insert_messages, store_snapshots
from core.db import Database
from core.models import ConfigSnapshot, Event, Message, QuarantinedRecord
from core.normalise import NormalisedEvent, NormalisedMessage
from core.quarantine import quarantine

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _event(eid: str) -> NormalisedEvent:
    return NormalisedEvent(
        provider_event_id=eid, occurred_at=AT, raw={"id": eid}, actor="a@x", action="login"
    )


def test_reading_the_same_events_twice_stores_them_once(db: Database, make_connection) -> None:
    conn = make_connection(provider="slack")
    with db.session() as s:
        first = insert_events(
            s, connection_id=conn.id, provider="slack", stream="audit", events=[_event("1"), _event("2")]
        )
    with db.session() as s:
        second = insert_events(
            s,
            connection_id=conn.id,
            provider="slack",
            stream="audit",
            events=[_event("2"), _event("3"), _event("3")],
        )
    with db.session(readonly=True) as s:
        stored = sorted(s.exec(select(Event.provider_event_id)).all())
    assert (first, second, stored) == (2, 1, ["1", "2", "3"])


def test_a_snapshot_row_is_written_only_when_an_object_changes_and_deletions_are_recorded(
    db: Database, make_connection
) -> None:
    conn = make_connection(provider="google")

    def read(objects: dict) -> tuple[int, int, int, int]:
        with db.session() as s:
            c = store_snapshots(
                s, connection_id=conn.id, provider="google", object_type="user", objects=objects
            )
        return c.added, c.changed, c.deleted, c.unchanged

    alice, bob = {"id": "1", "isEnrolledIn2Sv": True}, {"id": "2", "suspended": False}
    assert read({"1": alice, "2": bob}) == (2, 0, 0, 0)
    assert read({"1": alice, "2": bob}) == (0, 0, 0, 2)
    assert read({"1": {**alice, "isEnrolledIn2Sv": False}, "2": bob}) == (0, 1, 0, 1)
    assert read({"1": {**alice, "isEnrolledIn2Sv": False}}) == (0, 0, 1, 1)
    assert read({"1": {**alice, "isEnrolledIn2Sv": False}, "2": bob}) == (1, 0, 0, 1)  # back again
    with db.session(readonly=True) as s:
        rows = s.exec(
            select(ConfigSnapshot).where(ConfigSnapshot.object_id == "2").order_by(ConfigSnapshot.id)
        ).all()
    assert [r.deleted for r in rows] == [False, True, False]


def test_messages_are_stored_redacted_never_in_clear(db: Database, make_connection) -> None:
    conn = make_connection(provider="slack")
    secret = "xoxb-123456789012-123456789012-abcdefghijklmnopqrstuvwx"
    message = NormalisedMessage(
        provider_message_id="C1:1.0", sent_at=AT, text=f"here is the bot token {secret} use it", channel="C1"
    )
    with db.session() as s:
        assert (
            insert_messages(s, connection_id=conn.id, provider="slack", stream="messages", messages=[message])
            == 1
        )
    with db.session(readonly=True) as s:
        stored = s.exec(select(Message)).one()
    assert secret not in stored.text_redacted
    assert "[REDACTED:secret]" in stored.text_redacted
    assert stored.redactions == {"secret": 1}


def test_quarantine_keeps_the_input_verbatim_with_the_reason(db: Database) -> None:
    with db.session() as s:
        quarantine(
            s,
            connection_id=None,
            provider="m365",
            stream="signins",
            source="page 3",
            reason="not JSON",
            raw=b'{"va',
        )
    with db.session(readonly=True) as s:
        row = s.exec(select(QuarantinedRecord)).one()
        count = s.exec(select(func.count()).select_from(QuarantinedRecord)).one()
    assert (row.source, row.reason, row.raw, count) == ("page 3", "not JSON", '{"va', 1)


def test_the_raw_record_is_stored_once_compressed_and_read_back_as_it_was(
    db: Database, make_connection
) -> None:
    import orjson
    from sqlalchemy import text

    # given a sign-in record shaped like Graph's, with a time that is not JSON
    conn = make_connection(provider="m365")
    raw = {
        "id": "6f5c9a1e-0000-4000-8000-000000000001",
        "createdDateTime": "2026-11-20T10:00:00Z",
        "userPrincipalName": "alice@example.com",
        "appDisplayName": "Office 365 Exchange Online",
        "ipAddress": "203.0.113.9",
        "location": {"city": "Paris", "countryOrRegion": "FR", "geoCoordinates": {"latitude": 48.85}},
        "status": {"errorCode": 0, "failureReason": "Other."},
        "deviceDetail": {"browser": "Edge 120", "operatingSystem": "Windows 10"},
        "seen": AT,
    }
    event = NormalisedEvent(provider_event_id=raw["id"], occurred_at=AT, raw=raw, actor="alice@example.com")
    with db.session() as s:
        insert_events(s, connection_id=conn.id, provider="m365", stream="signins", events=[event])
    # when it is read back, through the model and as the stored bytes
    with db.session(readonly=True) as s:
        stored = s.exec(select(Event)).one()
        column = s.execute(text("SELECT raw FROM event")).scalar_one()
    # then the record is what was read (times as text, as JSON keeps them), in fewer bytes than its JSON
    assert stored.raw == {**raw, "seen": AT.isoformat()}
    assert len(bytes(column)) < len(orjson.dumps(raw, default=str)) / 2


def test_a_payload_needing_a_dictionary_not_shipped_is_named() -> None:
    import pytest
    import zstandard

    from core.packing import PackingError, unpack

    # given a frame written with a dictionary this build does not ship
    other = zstandard.train_dictionary(
        4096, [f'{{"n": {i}, "user": "u{i}@example.com"}}'.encode() for i in range(400)]
    )
    frame = zstandard.ZstdCompressor(dict_data=other).compress(b'{"n": 1}')
    # then reading it names the dictionary
    with pytest.raises(PackingError, match=str(other.dict_id())):
        unpack(frame)


def test_a_frame_written_with_an_earlier_shipped_dictionary_still_reads() -> None:
    import zstandard

    from core.packing import CURRENT_DICTIONARY, _dictionary, dumps, pack, unpack

    # given a record packed with the dictionary shipped before the current one
    record = {"id": "6f5c9a1e", "userPrincipalName": "alice@example.com", "status": {"errorCode": 0}}
    earlier = 492587826
    assert earlier != CURRENT_DICTIONARY
    frame = zstandard.ZstdCompressor(dict_data=_dictionary(earlier), write_content_size=True).compress(
        dumps(record)
    )
    # then it reads back as it was, and so does one written now (with the current dictionary)
    assert zstandard.get_frame_parameters(frame).dict_id == earlier
    assert unpack(frame) == record
    assert zstandard.get_frame_parameters(pack(record)).dict_id == CURRENT_DICTIONARY
    assert unpack(pack(record)) == record


def test_a_batch_rolled_back_with_its_page_leaves_nothing_and_batches_in_one_transaction_count_right(
    db: Database, make_connection
) -> None:
    conn = make_connection(provider="slack")

    def store(session: Any, *ids: str) -> int:
        events = [_event(i) for i in ids]
        return insert_events(session, connection_id=conn.id, provider="slack", stream="audit", events=events)

    with pytest.raises(RuntimeError), db.session() as s:
        store(s, "1", "2")
        raise RuntimeError("the checkpoint was refused: the page goes with it")
    with db.session() as s:
        counts = (store(s, "1"), store(s, "1", "2"), store(s, "2"))
    with db.session(readonly=True) as s:
        stored = sorted(s.exec(select(Event.provider_event_id)).all())
    assert (counts, stored) == ((1, 1, 0), ["1", "2"])
