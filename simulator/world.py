"""One generated world: scenario + options -> tenant, state, story output, event store, conversations, truth.

Building a world is cheap (O(users) plus the stories); events are generated lazily by the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simulator.conversations import CONVERSATION_STREAMS, Conversations
from simulator.render import event_ids
from simulator.render.context import RenderContext
from simulator.scenario import Options, Scenario, load_scenario, make_options
from simulator.state import State
from simulator.store import EVENT_STREAMS, EventStore
from simulator.stories import StoryBuilder, StoryOutput
from simulator.tenant import Tenant, build_tenant
from simulator.timestamps import graph_time


@dataclass
class World:
    scenario: Scenario
    options: Options
    tenant: Tenant
    state: State
    stories: StoryOutput
    store: EventStore
    conversations: Conversations
    ctx: RenderContext

    def truth(self) -> dict[str, Any]:
        """The ground truth JSON (see README.md, 'Ground truth')."""
        return {
            "scenario": self.scenario.id,
            "title": self.scenario.title,
            "seed": self.options.seed,
            "users": self.options.users,
            "days": self.options.days,
            "start": graph_time(self.options.start),
            "end": graph_time(self.options.end),
            "tenant": {
                "domain": self.tenant.domain,
                "m365_tenant_id": self.tenant.tenant_id,
                "google_customer_id": self.tenant.customer_id,
                "slack_team_id": self.tenant.slack_team_id,
            },
            "stories": self.stories.truth_stories,
            "decoys": self.stories.truth_decoys,
        }

    def event_ids(self, stream: str) -> Iterator[str]:
        """Every provider event id of a stream (events and conversation messages), in time order."""
        if stream in EVENT_STREAMS:
            for record in self.store.all_records(stream):
                yield from event_ids(self.ctx, stream, record)
        elif stream in CONVERSATION_STREAMS:
            for message in sorted(self.conversations.all_messages(stream), key=lambda m: (m.ts, m.id)):
                yield message.provider_id
        else:
            raise KeyError(stream)

    def digest(self, stream: str) -> dict[str, Any]:
        """Count and order-independent digest (sha256 of the sorted ids, one per line)."""
        ids = sorted(self.event_ids(stream))
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        return {"stream": stream, "count": len(ids), "distinct": len(set(ids)), "sha256": digest}


def build_world(
    scenario: str | Scenario,
    users: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    start: str | int | None = None,
    now: int | None = None,
) -> World:
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    options = make_options(loaded, users=users, days=days, seed=seed, start=start, now=now)
    tenant = build_tenant(loaded, options)
    state = State(tenant)
    stories = StoryBuilder(tenant, state).build_all()
    store = EventStore(tenant, stories.records)
    conversations = Conversations(tenant, stories.messages)
    return World(loaded, options, tenant, state, stories, store, conversations, RenderContext(tenant))
