"""Graph delta queries (`users/delta`, `groups/delta`, `servicePrincipals/delta`).

As in Graph, the server keeps a sync state per delta link: what the caller has been shown. A round
without a token returns every object; following the `@odata.deltaLink` returns the objects whose
content changed since (in full: Graph promises "at least the changed properties") and
`{"id": ..., "@removed": {"reason": "deleted"}}` for the ones that went away. A round pages with
`@odata.nextLink` and ends with a new `@odata.deltaLink`. `$deltatoken=latest` returns no objects,
only a link from now on. Sync states are bounded: an evicted or unknown token is a 400 asking the
caller to restart without it, as Graph answers a token it no longer knows.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_SYNC_STATES = 64


def _digest(item: dict[str, Any]) -> bytes:
    return hashlib.blake2b(
        orjson.dumps(item, option=orjson.OPT_SORT_KEYS, default=str), digest_size=12
    ).digest()


@dataclass
class SyncState:
    seen: dict[str, bytes]  # object id -> digest of what the caller was shown
    pending: list[dict[str, Any]] = field(default_factory=list)  # this round's items, paged out


class SyncStates:
    """The server side of delta links, shared by every delta collection of one simulator."""

    def __init__(self, limit: int = MAX_SYNC_STATES) -> None:
        self._states: OrderedDict[int, SyncState] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, state_id: Any) -> SyncState | None:
        with self._lock:
            return self._states.get(state_id) if isinstance(state_id, int) else None

    def start_round(
        self, items: list[dict[str, Any]], since: SyncState | None, *, latest: bool = False
    ) -> int:
        """A new sync state holding `items`; its pending page list is what changed since `since`."""
        seen = {str(item["id"]): _digest(item) for item in items}
        if latest:
            pending: list[dict[str, Any]] = []
        else:
            before = since.seen if since is not None else {}
            pending = [item for item in items if before.get(str(item["id"])) != seen[str(item["id"])]]
            pending += [
                {"id": gone, "@removed": {"reason": "deleted"}} for gone in before if gone not in seen
            ]
        with self._lock:
            state_id = next(self._ids)
            self._states[state_id] = SyncState(seen, pending)
            while len(self._states) > self._limit:
                self._states.popitem(last=False)
            return state_id

    def finish_round(self, state_id: Any) -> None:
        """The round was paged out: keep only what the caller has seen."""
        state = self.get(state_id)
        if state is not None:
            state.pending = []
