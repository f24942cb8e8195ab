"""The permission matrix: the one place that says which role may do what.

Every API endpoint names exactly one :class:`Permission` (or is public), and the stages that act
for a person outside the API (remediation requested, approved, executed or rolled back from the
CLI, Slack or the scheduler) ask the same matrix; roles map to permission sets here and nowhere
else. viewer < analyst < approver is a ladder (each has everything the one below has); auditor
reads everything and exports the audit trail but changes nothing; compliance officer reads what an
auditor reads and manages risk-acceptance exceptions, legal holds and data-subject
requests (export; erasure four eyes); admin may do all.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from core.models import Role


class Permission(StrEnum):
    CONNECTIONS_READ = "connections:read"
    CONNECTIONS_WRITE = "connections:write"
    FINDINGS_READ = "findings:read"
    INCIDENTS_READ = "incidents:read"
    INCIDENTS_WRITE = "incidents:write"
    # Redacted chat/mail excerpts in timelines and reports: not an endpoint, a part of their answers.
    CONVERSATIONS_READ = "conversations:read"
    ACTIONS_READ = "actions:read"
    ACTIONS_REQUEST = "actions:request"
    ACTIONS_DECIDE = "actions:decide"
    ACTIONS_EXECUTE = "actions:execute"
    ACTIONS_ROLLBACK = "actions:rollback"
    RULES_READ = "rules:read"
    RULES_TEST = "rules:test"
    SUPPRESSIONS_WRITE = "suppressions:write"
    POSTURE_READ = "posture:read"
    IDENTITIES_READ = "identities:read"
    METRICS_READ = "metrics:read"
    AUDIT_EXPORT = "audit:export"
    PRINCIPALS_ADMIN = "principals:admin"
    ONCALL_READ = "oncall:read"
    ONCALL_WRITE = "oncall:write"
    ONCALL_ACK = "oncall:ack"
    COMPLIANCE_READ = "compliance:read"
    COMPLIANCE_WRITE = "compliance:write"
    COMPLIANCE_APPROVE = "compliance:approve"
    # Public stakeholder wording (the status page) needs someone who may approve it.
    STATUS_PUBLISH = "status:publish"
    # Place and release legal holds (they suspend retention and erasure of what they cover).
    LEGAL_HOLD_WRITE = "legal_hold:write"
    # A data subject's records across tables; erasure is asked by one holder and approved by another.
    PRIVACY_EXPORT = "privacy:export"
    PRIVACY_ERASE = "privacy:erase"


_READ = frozenset(
    {
        Permission.CONNECTIONS_READ,
        Permission.FINDINGS_READ,
        Permission.INCIDENTS_READ,
        Permission.ACTIONS_READ,
        Permission.RULES_READ,
        Permission.POSTURE_READ,
        Permission.IDENTITIES_READ,
        Permission.METRICS_READ,
        Permission.ONCALL_READ,
    }
)
_VIEWER = _READ
_ANALYST = _VIEWER | {
    Permission.CONVERSATIONS_READ,
    Permission.INCIDENTS_WRITE,
    Permission.ACTIONS_REQUEST,
    Permission.ACTIONS_EXECUTE,
    Permission.RULES_TEST,
    Permission.SUPPRESSIONS_WRITE,
    Permission.ONCALL_ACK,
}
_APPROVER = _ANALYST | {Permission.ACTIONS_DECIDE, Permission.ACTIONS_ROLLBACK, Permission.STATUS_PUBLISH}
_AUDITOR = _READ | {Permission.CONVERSATIONS_READ, Permission.AUDIT_EXPORT, Permission.COMPLIANCE_READ}
# Reads what an auditor reads, and manages risk acceptance (four eyes: never approves their own).
_COMPLIANCE_OFFICER = _AUDITOR | {
    Permission.COMPLIANCE_WRITE,
    Permission.COMPLIANCE_APPROVE,
    Permission.LEGAL_HOLD_WRITE,
    Permission.PRIVACY_EXPORT,
    Permission.PRIVACY_ERASE,
}

MATRIX: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.ANALYST: frozenset(_ANALYST),
    Role.APPROVER: frozenset(_APPROVER),
    Role.AUDITOR: frozenset(_AUDITOR),
    Role.COMPLIANCE_OFFICER: frozenset(_COMPLIANCE_OFFICER),
    Role.ADMIN: frozenset(Permission),
}


def allows(roles: Iterable[Role], permission: Permission) -> bool:
    """True when any of the caller's roles carries `permission`."""
    return any(permission in MATRIX[role] for role in roles)


def roles_allowed(permission: Permission) -> list[Role]:
    return [role for role in Role if permission in MATRIX[role]]


def role_allows(role: Role | str | None, permission: Permission) -> bool:
    """True when `role` carries `permission`; None (no role: unknown or disabled) carries nothing."""
    if role is None:
        return False
    try:
        return permission in MATRIX[Role(role)]
    except ValueError:
        return False
