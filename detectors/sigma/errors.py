"""The detection engine's exception hierarchy: every message names the rule file/line or the event."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import TenantguardError


class DetectionError(TenantguardError):
    """Base of every error the detection engine raises on purpose."""


@dataclass(frozen=True)
class RuleProblem:
    """One reason a rule file (or one rule in it) was refused; kept as data so a pack can list them all."""

    path: str
    line: int | None
    rule: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        who = f" (rule {self.rule})" if self.rule else ""
        return f"{where}{who}: {self.reason}"


class EventError(DetectionError):
    """An event cannot be evaluated (bad bytes, too deep, unreadable time); names the event."""

    def __init__(self, event_ref: str, reason: str) -> None:
        super().__init__(f"event {event_ref}: {reason}")
        self.event_ref = event_ref
        self.reason = reason
