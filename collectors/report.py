"""What a collection pass did, per (connection, stream) — returned to the CLI, the API and the demo."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"  # a later run claimed the stream mid-run; nothing uncommitted was kept


@dataclass(frozen=True)
class StreamResult:
    connection: str
    provider: str
    stream: str
    status: RunStatus
    pages: int = 0
    records_read: int = 0
    records_new: int = 0
    snapshot_rows: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED


@dataclass(frozen=True)
class CollectionReport:
    results: tuple[StreamResult, ...] = ()
    connection_errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.connection_errors and all(r.ok for r in self.results)

    @property
    def records_new(self) -> int:
        return sum(r.records_new for r in self.results)

    @property
    def failures(self) -> list[StreamResult]:
        return [r for r in self.results if not r.ok]

    def summary(self) -> str:
        failed = len(self.failures) + len(self.connection_errors)
        return (
            f"{len(self.results)} stream runs, {self.records_new} new records, "
            f"{sum(r.snapshot_rows for r in self.results)} snapshot changes, {failed} failed"
        )
