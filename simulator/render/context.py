"""What renderers need besides the record: the tenant, id derivation and a few lookups."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.identifiers import Ids
from simulator.tenant import Person, Tenant


@dataclass(frozen=True)
class RenderContext:
    tenant: Tenant

    @property
    def ids(self) -> Ids:
        return self.tenant.ids

    def guid(self, stream: str, uid: int) -> str:
        return self.tenant.ids.fast_guid(stream, uid)

    def person(self, index: int) -> Person:
        return self.tenant.people[index]
