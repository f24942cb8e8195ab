"""The approval policy: how many approvals a step needs, how long they last, what is auto-approved.

Who may request, approve, execute or roll back is not policy: the permission matrix
(core.permissions) decides roles, for the API and every other channel alike. Loaded from YAML
(remediation/policy.yaml by default) into the pydantic model :class:`PolicyFile` (errors name
file, line and field). Pure: the decisions take the step's facts (action, blast radius, risk,
whether the target is an admin, the incident's priority) and return numbers and booleans;
remediation.approvals applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from core import durations, loading
from core.settings import Settings
from remediation.catalogue import BlastRadius, Risk, get_action
from remediation.config import policy_file
from remediation.errors import CatalogueError, PolicyError

_KEYS = {"approval_ttl", "approvals", "auto_approve"}
# Keys of earlier policy files that named roles; roles are the permission matrix's alone now.
_ROLE_KEYS = {"approver_roles", "requester_roles"}


@dataclass(frozen=True)
class AutoApproveRule:
    action: str
    priorities: tuple[str, ...] = ()
    target_is_admin: bool | None = False

    def applies(self, action: str, priority: str, target_is_admin: bool) -> bool:
        if action != self.action:
            return False
        if self.priorities and priority not in self.priorities:
            return False
        return self.target_is_admin is None or self.target_is_admin == target_is_admin


@dataclass(frozen=True)
class ApprovalPolicy:
    approval_ttl: timedelta = timedelta(hours=24)
    default_approvals: int = 1
    by_blast_radius: dict[str, int] = field(default_factory=dict)
    by_risk: dict[str, int] = field(default_factory=dict)
    auto_approve: tuple[AutoApproveRule, ...] = ()

    def approvals_required(self, blast_radius: str, risk: str) -> int:
        return max(
            self.default_approvals,
            self.by_blast_radius.get(blast_radius, 0),
            self.by_risk.get(risk, 0),
        )

    def auto_approves(self, action: str, priority: str, target_is_admin: bool) -> AutoApproveRule | None:
        return next((r for r in self.auto_approve if r.applies(action, priority, target_is_admin)), None)


def configured_policy(settings: Settings) -> ApprovalPolicy:
    """The approval policy the settings name (TENANTGUARD_REMEDIATION_POLICY_FILE), else the shipped one."""
    return load_policy(policy_file(settings))


def load_policy(path: Path) -> ApprovalPolicy:
    try:
        loaded = loading.load_path(path, kind="yaml")
    except loading.LoadError as exc:
        raise PolicyError(f"cannot read the approval policy: {exc}") from None
    if loaded.data is None:
        loaded.documents[:] = [{}]
    return _policy(loaded)


def parse_policy(raw: Any, source: str = "<memory>") -> ApprovalPolicy:
    return _policy(loading.Loaded(source, [raw]))


# --------------------------------------------------------------------------- the file format

_FILE = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
Count = Annotated[int, Field(ge=1, strict=True)]


def _named_counts(enum: Any) -> Any:
    def check(value: Any) -> Any:
        bad = set(value or {}) - {str(e) for e in enum}
        if bad:
            raise ValueError(
                f"unknown {', '.join(sorted(map(str, bad)))}; use {', '.join(str(e) for e in enum)}"
            )
        return value or {}

    return check


class ApprovalsEntry(BaseModel):
    """How many approvals a step needs: the largest of default, its blast radius's and its risk's."""

    model_config = _FILE

    default: Count = 1
    by_blast_radius: Annotated[dict[str, Count], BeforeValidator(_named_counts(BlastRadius))] = Field(
        default_factory=dict
    )
    by_risk: Annotated[dict[str, Count], BeforeValidator(_named_counts(Risk))] = Field(default_factory=dict)


class AutoApproveEntry(BaseModel):
    """A reversible, one-user/one-object action approved by the policy itself."""

    model_config = _FILE

    action: str
    priorities: list[str] = Field(default_factory=list, description="e.g. [P1]; empty: any priority.")
    target_is_admin: bool | None = Field(default=False, description="true, false, or null (either).")

    @field_validator("action")
    @classmethod
    def _auto_approvable(cls, name: str) -> str:
        try:
            spec = get_action(name)
        except CatalogueError as exc:
            raise ValueError(str(exc)) from None
        if not spec.reversible or spec.blast_radius.rank > BlastRadius.USER.rank:
            raise ValueError(
                f"{spec.name} cannot be auto-approved: only reversible actions on one user or one object may be "
                f"(it is {'reversible' if spec.reversible else 'irreversible'}, blast radius {spec.blast_radius})"
            )
        return spec.name


class PolicyFile(BaseModel):
    """The approval policy (remediation/policy.yaml); `tenantguard schema policy` prints its JSON Schema."""

    model_config = _FILE

    approval_ttl: str = Field(default="24h", description="How long an approval stays valid, e.g. 24h.")
    approvals: ApprovalsEntry = Field(default_factory=ApprovalsEntry)
    auto_approve: list[AutoApproveEntry] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            raise ValueError("the approval policy is a mapping")
        roles = sorted(set(raw) & _ROLE_KEYS)
        if roles:
            raise ValueError(
                f"{', '.join(roles)} is no longer part of the approval policy: who may request or approve "
                "remediation is the permission matrix (core/permissions.py: actions:request, actions:decide); "
                "remove the key"
            )
        unknown = set(raw) - _KEYS
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; use {', '.join(sorted(_KEYS))}"
            )
        return {key: value for key, value in raw.items() if value is not None}

    @field_validator("approval_ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        try:
            durations.parse_duration(value, positive=True)
        except durations.DurationError:
            raise ValueError(f"{value!r} is not a duration (use 90s, 15m, 24h, 7d)") from None
        return value


def _policy(loaded: loading.Loaded) -> ApprovalPolicy:
    parsed = loading.validate(PolicyFile, loaded, error=PolicyError)
    return ApprovalPolicy(
        approval_ttl=durations.parse_duration(parsed.approval_ttl),
        default_approvals=parsed.approvals.default,
        by_blast_radius=dict(parsed.approvals.by_blast_radius),
        by_risk=dict(parsed.approvals.by_risk),
        auto_approve=tuple(
            AutoApproveRule(
                action=a.action, priorities=tuple(a.priorities), target_is_admin=a.target_is_admin
            )
            for a in parsed.auto_approve
        ),
    )
