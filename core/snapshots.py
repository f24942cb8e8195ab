"""Reading the current configuration state from stored snapshots.

The newest `ConfigSnapshot` row of an object is its state; a newest row marked `deleted` means
the object is gone, so it is not current state (collectors write a new row when it comes back).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from core.models import ConfigSnapshot


@dataclass(frozen=True)
class SnapshotObject:
    """One configuration object as it is now."""

    object_id: str
    data: Mapping[str, Any]
    snapshot_id: int | None = None
    content_hash: str = ""
    collected_at: datetime | None = None


Grouped = dict[tuple[int | None, str], dict[str, list[SnapshotObject]]]


def current_objects(
    session: Session,
    object_types: Iterable[str],
    *,
    connection_id: int | None = None,
    as_of: datetime | None = None,
) -> Grouped:
    """The newest non-deleted snapshot of every object of these types (of one connection, or all),
    grouped by (connection, provider) then object type. With `as_of`: the state as it was then
    (the newest snapshot collected at or before it)."""
    types = sorted(set(object_types))
    newest = sa_select(func.max(col(ConfigSnapshot.id))).where(col(ConfigSnapshot.object_type).in_(types))
    if connection_id is not None:
        newest = newest.where(col(ConfigSnapshot.connection_id) == connection_id)
    if as_of is not None:
        newest = newest.where(col(ConfigSnapshot.collected_at) <= as_of)
    newest = newest.group_by(
        col(ConfigSnapshot.connection_id), col(ConfigSnapshot.object_type), col(ConfigSnapshot.object_id)
    )
    rows = session.execute(
        sa_select(
            col(ConfigSnapshot.id),
            col(ConfigSnapshot.connection_id),
            col(ConfigSnapshot.provider),
            col(ConfigSnapshot.object_type),
            col(ConfigSnapshot.object_id),
            col(ConfigSnapshot.data),
            col(ConfigSnapshot.content_hash),
            col(ConfigSnapshot.collected_at),
        ).where(col(ConfigSnapshot.id).in_(newest), col(ConfigSnapshot.deleted).is_(False))
    ).all()
    grouped: Grouped = defaultdict(lambda: defaultdict(list))
    for snapshot_id, conn, provider, object_type, object_id, data, digest, collected_at in rows:
        grouped[(conn, provider)][object_type].append(
            SnapshotObject(object_id, data, snapshot_id, digest, collected_at)
        )
    return grouped
