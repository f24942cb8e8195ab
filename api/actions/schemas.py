"""Shapes for remediation plans, decisions and execution reports."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PlanStepOut(BaseModel):
    id: int
    incident_id: int
    position: int
    phase: str
    action: str
    title: str
    provider: str
    subject: str
    target: dict[str, Any]
    params: dict[str, Any]
    reason: str
    risk: str
    blast_radius: str
    reversible: bool
    inverse: str | None
    status: str
    version: int = Field(description="Bumped each time a re-plan changes what the step does.")
    fingerprint: str = Field(description="Hash of what the step does; approvals are bound to it.")
    requested_by: str
    approvals_required: int
    approved_by: list[str]
    depends_on: list[int]
    verification: str
    permission: str = Field(description="The provider permission the action needs.")
    connection_id: int | None
    finding_ids: list[int]


class PlanOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "incident_id": 31,
                    "steps": [],
                    "notes": ["m365.revoke_sessions: no person in finding 812; step left out"],
                }
            ]
        }
    )

    incident_id: int
    steps: list[PlanStepOut]
    notes: list[str]


class DecisionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"comment": "confirmed with Alice", "fingerprint": "9f2c4e1a0b3d5f67"}]
        },
    )

    comment: str = Field(default="", max_length=2000)
    fingerprint: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{16,64}$",
        description=(
            "The step's fingerprint as you saw it (GET /actions/{id}: `fingerprint`, or its first 16+ hex "
            "digits): when the step has changed since, the decision is refused (409 stale_step)."
        ),
    )


class DecisionOut(BaseModel):
    action_id: int
    status: str
    approvals: int
    approvals_required: int
    approved_by: list[str]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"dry_run": True}]})

    dry_run: bool = Field(default=False, description="Read and list the writes without making them.")


class StepResultOut(BaseModel):
    action_id: int
    action: str
    subject: str
    outcome: str
    message: str
    calls: list[dict[str, Any]] = Field(description="Every HTTP call made (or, in a dry run, that would be).")
    verification: dict[str, Any]


class ExecutionOut(BaseModel):
    dry_run: bool
    ok: bool
    results: list[StepResultOut]


class SlackAnswer(BaseModel):
    response_type: str
    replace_original: bool
    text: str
