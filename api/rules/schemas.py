"""Shapes for rules, rule validation/testing and suppressions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from core.models import Provider

MAX_RULE_BYTES = 256 * 1024

_EXAMPLE_RULE = """\
title: Sign-in from a country never seen for this user
id: 9d4c3b7e-5c1f-4a4e-9b0c-1f2e3d4c5b6a
name: m365_demo_rule
status: test
level: medium
logsource: {product: m365, service: signins}
detection:
  selection: {status.errorCode: 0, location.countryOrRegion: KP}
  condition: selection
tests:
  - name: fires on a sign-in from KP
    match: true
    event: {id: "1", createdDateTime: "2025-03-02T08:00:00Z", userPrincipalName: a@x.com,
            status: {errorCode: 0}, location: {countryOrRegion: KP}}
"""


class RuleOut(BaseModel):
    rule_id: str
    kind: str = Field(description="rule or correlation")
    title: str
    description: str
    level: str
    status: str | None
    provider: str | None
    streams: list[str]
    tags: list[str]
    mitre: list[str]
    emits: bool = Field(description="False for signal-only rules (used by correlations, never a finding).")
    tests: int
    source: str


class RuleProblemOut(BaseModel):
    line: int | None
    rule: str | None
    reason: str


class RuleDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"yaml": _EXAMPLE_RULE}]})

    yaml: str = Field(
        min_length=1, max_length=MAX_RULE_BYTES, description="One or more Sigma YAML documents."
    )


class ValidationOut(BaseModel):
    ok: bool
    rules: list[str] = Field(description="Ids of the rules and correlations that loaded.")
    problems: list[RuleProblemOut]


class TestEventIn(BaseModel):
    provider: Provider
    stream: str = Field(min_length=1, max_length=100)
    data: dict[str, Any] = Field(description="The event as the provider's API returns it.")


class RuleTestIn(RuleDocumentIn):
    events: list[TestEventIn] = Field(
        default_factory=list, max_length=1000, description="Extra events: does each rule fire on them?"
    )


class TestOutcomeOut(BaseModel):
    rule_id: str
    test: str
    passed: bool
    details: list[str]


class RuleTestOut(ValidationOut):
    outcomes: list[TestOutcomeOut] = Field(
        description="The rules' own tests, then one per rule for `events`."
    )


MatchScalar = Annotated[str, Field(max_length=500)] | int | float | bool
# Bounded: every suppression is stored in the audit chain, whose CSV export must stay verifiable.
MatchValue = MatchScalar | Annotated[list[MatchScalar], Field(max_length=100)]


class SuppressionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_id: str
    match: dict[str, Any]
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    suppressed_count: int


class SuppressionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rule_id": "m365_legacy_auth_signin",
                    "match": {"userPrincipalName": "scanner@contoso.com"},
                    "reason": "vulnerability scanner, ticket SEC-142",
                    "expires_at": "2025-06-30T00:00:00Z",
                }
            ]
        },
    )

    rule_id: str = Field(min_length=1, max_length=200)
    match: dict[Annotated[str, Field(min_length=1, max_length=200)], MatchValue] = Field(
        default_factory=dict, max_length=20, description="Field -> value(s); `*` and `?` are wildcards."
    )
    reason: str = Field(min_length=1, max_length=2000)
    expires_at: datetime | None = None
