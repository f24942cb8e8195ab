"""The record of the calls a write-side gateway made (or, in a dry run, would have made).

Remediation results name the exact calls (method, URL, body, status, the provider's request id);
in dry-run mode a gateway performs reads but only records writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HttpCall:
    """One call to a SaaS API, as made (or, in a dry run, as it would be made)."""

    kind: str  # "read" or "write"
    method: str
    url: str
    body: Any = None
    status: int | None = None
    response_id: str | None = None
    sent: bool = True

    def describe(self) -> str:
        text = f"{self.method} {self.url}"
        if self.body not in (None, "", {}):
            body = self.body if isinstance(self.body, str) else json.dumps(self.body, sort_keys=True)
            text += f" {body}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "url": self.url,
            "body": self.body,
            "status": self.status,
            "response_id": self.response_id,
            "sent": self.sent,
        }


@dataclass
class CallLog:
    """The calls one step made, in order."""

    dry_run: bool = False
    calls: list[HttpCall] = field(default_factory=list)

    def add(self, call: HttpCall) -> None:
        self.calls.append(call)

    @property
    def writes(self) -> list[HttpCall]:
        return [c for c in self.calls if c.kind == "write"]

    @property
    def response_ids(self) -> list[str]:
        return [c.response_id for c in self.calls if c.kind == "write" and c.response_id]
