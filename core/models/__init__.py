"""Domain tables (SQLModel), one file per domain; importing this module registers them all."""

from core.models.anomaly import AnalysisCursor, AnomalyModel, PersonBaseline
from core.models.audit import AuditCheckpoint, AuditRecord
from core.models.compliance import ComplianceException, ErasureRequest, LegalHold
from core.models.connection import Checkpoint, Connection
from core.models.enums import (
    ActionStatus,
    Decision,
    FindingKind,
    FindingStatus,
    Health,
    IncidentStatus,
    Priority,
    Provider,
    Role,
    Severity,
    TimelineEntryKind,
)
from core.models.event import ConfigSnapshot, Event, QuarantinedRecord
from core.models.finding import Finding, Suppression
from core.models.identity import Account, Person
from core.models.incident import Incident, Message, TimelineEntry
from core.models.noise import ChangeWindow, Digest, GroupingLesson
from core.models.oncall import Escalation, OncallDefinition, Page
from core.models.posture import PostureResult, PostureScore
from core.models.principal import ApiPrincipal
from core.models.remediation import Approval, RemediationAction
from core.models.response import Drill, IncidentResponse, StakeholderUpdate

__all__ = [
    "Account",
    "ActionStatus",
    "AnalysisCursor",
    "AnomalyModel",
    "ApiPrincipal",
    "Approval",
    "AuditCheckpoint",
    "AuditRecord",
    "ChangeWindow",
    "GroupingLesson",
    "Checkpoint",
    "ComplianceException",
    "ConfigSnapshot",
    "Connection",
    "Decision",
    "Digest",
    "Drill",
    "ErasureRequest",
    "Escalation",
    "Event",
    "Finding",
    "FindingKind",
    "FindingStatus",
    "Health",
    "Incident",
    "IncidentResponse",
    "IncidentStatus",
    "LegalHold",
    "Message",
    "OncallDefinition",
    "Page",
    "Person",
    "PersonBaseline",
    "PostureResult",
    "PostureScore",
    "Priority",
    "Provider",
    "QuarantinedRecord",
    "RemediationAction",
    "Role",
    "Severity",
    "StakeholderUpdate",
    "Suppression",
    "TimelineEntry",
    "TimelineEntryKind",
]
