"""The approval policy: how many approvals a step needs, how long they last, what is auto-approved.

Who may request, approve, execute or roll back is not policy: the permission matrix
(core.permissions) decides roles, for the API and every other channel alike. Loaded from YAML
(remediation/policy.yaml by default). Pure: the decisions take the step's facts (action, blast
radius, risk, whether the target is an admin, the incident's priority) and return numbers and
booleans; remediation.approvals applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from core import durations
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


def parse_duration(value: Any, where: str) -> timedelta:
    try:
        return durations.parse_duration(value, positive=True)
    except durations.DurationError:
        raise PolicyError(f"{where}: {value!r} is not a duration (use 90s, 15m, 24h, 7d)") from None


def configured_policy(settings: Settings) -> ApprovalPolicy:
    """The approval policy the settings name (TENANTGUARD_REMEDIATION_POLICY_FILE), else the shipped one."""
    return load_policy(policy_file(settings))


def load_policy(path: Path) -> ApprovalPolicy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read the approval policy ({exc})") from None
    return parse_policy(raw, str(path))


def parse_policy(raw: Any, source: str = "<memory>") -> ApprovalPolicy:
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: the approval policy is a mapping")
    roles = sorted(set(raw) & _ROLE_KEYS)
    if roles:
        raise PolicyError(
            f"{source}: {', '.join(roles)} is no longer part of the approval policy: who may request or "
            "approve remediation is the permission matrix (core/permissions.py: actions:request, "
            "actions:decide); remove the key"
        )
    unknown = set(raw) - _KEYS
    if unknown:
        raise PolicyError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(_KEYS))}"
        )
    approvals = raw.get("approvals") or {}
    return ApprovalPolicy(
        approval_ttl=parse_duration(raw.get("approval_ttl", "24h"), f"{source}: approval_ttl"),
        default_approvals=_count(approvals.get("default", 1), f"{source}: approvals.default"),
        by_blast_radius=_counts(
            approvals.get("by_blast_radius"), BlastRadius, f"{source}: approvals.by_blast_radius"
        ),
        by_risk=_counts(approvals.get("by_risk"), Risk, f"{source}: approvals.by_risk"),
        auto_approve=tuple(
            _auto(entry, f"{source}: auto_approve[{i}]")
            for i, entry in enumerate(raw.get("auto_approve") or [])
        ),
    )


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise PolicyError(f"{where}: {value!r} must be a whole number of approvers, at least 1")
    return value


def _counts(value: Any, enum: Any, where: str) -> dict[str, int]:
    value = value or {}
    bad = set(value) - {str(e) for e in enum}
    if bad:
        raise PolicyError(f"{where}: unknown {', '.join(sorted(bad))}; use {', '.join(str(e) for e in enum)}")
    return {str(k): _count(v, f"{where}.{k}") for k, v in value.items()}


def _auto(raw: Any, where: str) -> AutoApproveRule:
    if not isinstance(raw, dict) or "action" not in raw:
        raise PolicyError(f"{where}: an auto-approve entry names an action")
    try:
        spec = get_action(str(raw["action"]))
    except CatalogueError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    if not spec.reversible or spec.blast_radius.rank > BlastRadius.USER.rank:
        raise PolicyError(
            f"{where}: {spec.name} cannot be auto-approved: only reversible actions on one user or one "
            f"object may be (it is {'reversible' if spec.reversible else 'irreversible'}, blast radius {spec.blast_radius})"
        )
    target_is_admin = raw.get("target_is_admin", False)
    if target_is_admin is not None and not isinstance(target_is_admin, bool):
        raise PolicyError(f"{where}: target_is_admin is true, false, or null (either)")
    return AutoApproveRule(
        action=spec.name,
        priorities=tuple(str(p) for p in raw.get("priorities") or ()),
        target_is_admin=target_is_admin,
    )
