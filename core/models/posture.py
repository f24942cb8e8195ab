"""Posture evaluations over time: one result per check per run, and the scores they add up to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from core.clock import utcnow
from core.models.types import JSONType, UTCDateTime


class PostureResult(SQLModel, table=True):
    """How one check fared on one connection's snapshots in one evaluation run."""

    __table_args__ = (Index("ix_posture_result_check_time", "check_id", "evaluated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=40, index=True)
    evaluated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    provider: str = Field(max_length=20)
    check_id: str = Field(max_length=200)
    category: str = Field(max_length=50)
    severity: str = Field(max_length=20)
    status: str = Field(max_length=20)  # pass | fail | error | not_applicable
    objects_total: int = 0
    objects_failing: int = 0
    failing_object_ids: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))


class PostureScore(SQLModel, table=True):
    """A weighted pass rate (0-100) per connection and category ("overall" too), kept as history."""

    __table_args__ = (Index("ix_posture_score_scope_time", "connection_id", "category", "evaluated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=40, index=True)
    evaluated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    connection_id: int | None = Field(default=None, foreign_key="connection.id")
    provider: str = Field(max_length=20)
    category: str = Field(max_length=50)
    score: float
    checks_passed: int = 0
    checks_failed: int = 0
    weight_passed: float = 0.0
    weight_total: float = 0.0
