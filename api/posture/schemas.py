"""Shapes for posture scores, checks and their results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ScoreOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "run_id": "5f2…",
                    "evaluated_at": "2025-03-02T08:00:00Z",
                    "connection_id": 1,
                    "provider": "m365",
                    "category": "overall",
                    "score": 82.5,
                    "checks_passed": 33,
                    "checks_failed": 7,
                }
            ]
        },
    )

    run_id: str
    evaluated_at: datetime
    connection_id: int | None
    provider: str
    category: str
    score: float
    checks_passed: int
    checks_failed: int


class CheckResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    connection_id: int | None
    evaluated_at: datetime
    status: str
    objects_total: int
    objects_failing: int
    failing_object_ids: list[str]
    details: dict[str, Any]


class CheckOut(BaseModel):
    id: str
    provider: str
    title: str
    severity: str
    category: str
    object_type: str
    rationale: str
    references: list[str]
    mitre: list[str]
    drift: bool
    results: list[CheckResultOut]
