"""Finite sets shared by every package (providers, severities, states)."""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    M365 = "m365"
    GOOGLE = "google"
    SLACK = "slack"
    OKTA = "okta"


class Health(StrEnum):
    UNKNOWN = "unknown"
    OK = "ok"
    UNHEALTHY = "unhealthy"


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFORMATIONAL: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class FindingKind(StrEnum):
    DETECTION = "detection"
    CORRELATION = "correlation"
    POSTURE = "posture"
    DRIFT = "drift"
    ANOMALY = "anomaly"
    IDENTITY = "identity"


class TimelineEntryKind(StrEnum):
    """The kind of a line on an incident's timeline (`TimelineEntry.kind`)."""

    EVIDENCE = "evidence"
    FINDING = "finding"
    MESSAGE = "message"
    STATUS = "status"
    ASSIGNMENT = "assignment"
    NOTE = "note"
    PRIORITY = "priority"
    MERGE = "merge"
    SPLIT = "split"
    LINK = "link"
    REMEDIATION = "remediation"
    POSTMORTEM = "postmortem"
    ONCALL = "oncall"  # on-call steps, delivery attempts, acknowledgements (written by oncall/)
    RESPONSE = "response"  # incident channel, stakeholder updates, ticket, drill (written by response/)


class FindingStatus(StrEnum):
    OPEN = "open"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"


class IncidentStatus(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    CONTAINED = "contained"
    RESOLVED = "resolved"
    CLOSED = "closed"
    FALSE_POSITIVE = "false_positive"
    DUPLICATE = "duplicate"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class ActionStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    APPROVER = "approver"
    AUDITOR = "auditor"
    COMPLIANCE_OFFICER = "compliance_officer"
    ADMIN = "admin"
