"""The fields each stream's stored events can carry, and the "can fire" check built on them.

A rule whose condition reads a field our stored shape never has cannot match anything we
collect, however many events arrive: `rules validate --report` and `rules list` say so instead
of counting it as coverage. The catalogue is the provider's documented schema for the object we
store (Graph `signIn`, `directoryAudit`, `riskDetection`; the Management Activity API's common,
Exchange, SharePoint, Azure AD and alert schemas; the Reports API activity fanned out per
`events[]` entry; the Slack audit entry; the Okta LogEvent), plus the Azure Monitor wrapper's
fields the normaliser keeps beside the Graph object. Paths are case-insensitive and dotted; an
entry ending in `.*` admits any sub-path (parameter bags such as Google `parameters` or Slack
`details`, whose keys depend on the event).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from detectors.sigma.compiler import And, FieldPath, Leaf, LeafKind, Node, Not, Or
from detectors.sigma.definitions import CompiledRule
from detectors.sigma.events import EventRecord, EventView

_AZURE_MONITOR_WRAPPER = (
    "time",
    "category",
    "operationName",
    "operationVersion",
    "resultType",
    "resultSignature",
    "resultDescription",
    "callerIpAddress",
    "durationMs",
    "tenantId",
    "resourceId",
    "identity",
    "level",
    "Level",
)
# Streams whose Azure Monitor export keeps its own view: `properties.<Graph field>` (see known_field)
_EXPORT_VIEW_STREAMS = {("m365", "signins"), ("m365", "directory_audits")}

_SIGNIN = (
    "id",
    "createdDateTime",
    "userDisplayName",
    "userPrincipalName",
    "userId",
    "userType",
    "appId",
    "appDisplayName",
    "ipAddress",
    "clientAppUsed",
    "clientCredentialType",
    "correlationId",
    "conditionalAccessStatus",
    "isInteractive",
    "riskDetail",
    "riskLevelAggregated",
    "riskLevelDuringSignIn",
    "riskState",
    "riskEventTypes",
    "riskEventTypes_v2",
    "resourceDisplayName",
    "resourceId",
    "resourceTenantId",
    "homeTenantId",
    "homeTenantName",
    "crossTenantAccessType",
    "status.errorCode",
    "status.failureReason",
    "status.additionalDetails",
    "deviceDetail.deviceId",
    "deviceDetail.displayName",
    "deviceDetail.operatingSystem",
    "deviceDetail.browser",
    "deviceDetail.isCompliant",
    "deviceDetail.isManaged",
    "deviceDetail.trustType",
    "location.city",
    "location.state",
    "location.countryOrRegion",
    "location.geoCoordinates.altitude",
    "location.geoCoordinates.latitude",
    "location.geoCoordinates.longitude",
    "appliedConditionalAccessPolicies.*",
    "authenticationRequirement",
    "authenticationRequirementPolicies.*",
    "authenticationProtocol",
    "authenticationDetails.authenticationMethod",
    "authenticationDetails.authenticationMethodDetail",
    "authenticationDetails.authenticationStepDateTime",
    "authenticationDetails.authenticationStepRequirement",
    "authenticationDetails.authenticationStepResultDetail",
    "authenticationDetails.succeeded",
    "authenticationMethodsUsed",
    "authenticationContextClassReferences.*",
    "mfaDetail.authMethod",
    "mfaDetail.authDetail",
    "userAgent",
    "tokenIssuerType",
    "tokenIssuerName",
    "incomingTokenType",
    "originalTransferMethod",
    "signInEventTypes",
    "signInIdentifier",
    "signInIdentifierType",
    "uniqueTokenIdentifier",
    "sessionId",
    "networkLocationDetails.networkType",
    "networkLocationDetails.networkNames",
    "originalRequestId",
    "servicePrincipalId",
    "servicePrincipalName",
    "flaggedForReview",
    "isTenantRestricted",
    "autonomousSystemNumber",
    "processingTimeInMilliseconds",
    "managedServiceIdentity.*",
    "appTokenProtectionStatus",
    "conditionalAccessAudiences",
    *_AZURE_MONITOR_WRAPPER,
)

_DIRECTORY_AUDIT = (
    "id",
    "category",
    "correlationId",
    "result",
    "resultReason",
    "activityDisplayName",
    "activityDateTime",
    "loggedByService",
    "operationType",
    "userAgent",
    "initiatedBy.user.id",
    "initiatedBy.user.displayName",
    "initiatedBy.user.userPrincipalName",
    "initiatedBy.user.ipAddress",
    "initiatedBy.user.userType",
    "initiatedBy.user.homeTenantId",
    "initiatedBy.user.homeTenantName",
    "initiatedBy.app.appId",
    "initiatedBy.app.displayName",
    "initiatedBy.app.servicePrincipalId",
    "initiatedBy.app.servicePrincipalName",
    "targetResources.id",
    "targetResources.displayName",
    "targetResources.type",
    "targetResources.userPrincipalName",
    "targetResources.groupType",
    "targetResources.modifiedProperties.displayName",
    "targetResources.modifiedProperties.oldValue",
    "targetResources.modifiedProperties.newValue",
    "additionalDetails.key",
    "additionalDetails.value",
    *_AZURE_MONITOR_WRAPPER,
)

_RISK_DETECTION = (
    "id",
    "requestId",
    "correlationId",
    "riskEventType",
    "riskType",
    "riskState",
    "riskLevel",
    "riskDetail",
    "source",
    "detectionTimingType",
    "activity",
    "tokenIssuerType",
    "ipAddress",
    "location.city",
    "location.state",
    "location.countryOrRegion",
    "location.geoCoordinates.*",
    "activityDateTime",
    "detectedDateTime",
    "lastUpdatedDateTime",
    "userId",
    "userDisplayName",
    "userPrincipalName",
    "userType",
    "additionalInfo",
    *_AZURE_MONITOR_WRAPPER,
)

_SECURITY_ALERT = (
    "id",
    "providerAlertId",
    "incidentId",
    "status",
    "severity",
    "classification",
    "determination",
    "serviceSource",
    "detectionSource",
    "productName",
    "detectorId",
    "tenantId",
    "title",
    "description",
    "recommendedActions",
    "category",
    "assignedTo",
    "alertWebUrl",
    "incidentWebUrl",
    "actorDisplayName",
    "threatDisplayName",
    "threatFamilyName",
    "mitreTechniques",
    "createdDateTime",
    "lastUpdateDateTime",
    "resolvedDateTime",
    "firstActivityDateTime",
    "lastActivityDateTime",
    "comments.*",
    "systemTags",
    "alertPolicyId",
    "additionalData.*",
    "customDetails.*",
    "evidence.*",
)

# Management Activity API: the common schema, then the Exchange admin/mailbox, SharePoint/OneDrive,
# Azure AD, Security & Compliance alert, Teams, DLP and eDiscovery extensions.
_UNIFIED_AUDIT = (
    "Id",
    "RecordType",
    "CreationTime",
    "Operation",
    "OrganizationId",
    "UserType",
    "UserKey",
    "Workload",
    "ResultStatus",
    "ObjectId",
    "UserId",
    "ClientIP",
    "Scope",
    "AppAccessContext.*",
    "ExternalAccess",
    "OriginatingServer",
    "Parameters.Name",
    "Parameters.Value",
    "ModifiedProperties.*",
    "AppId",
    "ClientAppId",
    "ClientIPAddress",
    "ClientInfoString",
    "ClientProcessName",
    "ClientVersion",
    "InternalLogonType",
    "LogonType",
    "LogonUserSid",
    "LogonUserDisplayName",
    "MailboxGuid",
    "MailboxOwnerSid",
    "MailboxOwnerUPN",
    "MailboxOwnerMasterAccountSid",
    "OrganizationName",
    "Item.*",
    "Folders.*",
    "AffectedItems.*",
    "OperationProperties.*",
    "OperationCount",
    "SessionId",
    "SendAsUserSmtp",
    "SendOnBehalfOfUserSmtp",
    "Site",
    "SiteUrl",
    "SourceFileName",
    "SourceFileExtension",
    "SourceRelativeUrl",
    "DestinationFileName",
    "DestinationFileExtension",
    "DestinationRelativeUrl",
    "ItemType",
    "ListId",
    "ListItemUniqueId",
    "WebId",
    "EventSource",
    "EventData",
    "UserAgent",
    "TargetUserOrGroupType",
    "TargetUserOrGroupName",
    "SharingLinkScope",
    "Platform",
    "GeoLocation",
    "IsManagedDevice",
    "DeviceDisplayName",
    "ApplicationId",
    "ApplicationDisplayName",
    "CorrelationId",
    "AuthenticationType",
    "AzureActiveDirectoryEventType",
    "ExtendedProperties.*",
    "Actor.*",
    "ActorContextId",
    "ActorIpAddress",
    "InterSystemsId",
    "IntraSystemId",
    "SupportTicketId",
    "Target.*",
    "TargetContextId",
    "DeviceProperties.*",
    "ErrorNumber",
    "LogonError",
    "AlertId",
    "AlertType",
    "AlertEntityId",
    "AlertLinks.*",
    "Name",
    "PolicyId",
    "Status",
    "Severity",
    "Category",
    "Source",
    "Comments",
    "Data",
    "EntityType",
    "TeamName",
    "TeamGuid",
    "ChannelName",
    "ChannelType",
    "Members.*",
    "AddOnType",
    "CommunicationType",
    "ItemName",
    "PolicyDetails.*",
    "SensitiveInfoDetectionIsIncluded",
    "SharePointMetaData.*",
    "ExchangeMetaData.*",
    "Case",
    "CaseId",
    "QueryText",
    "ObjectType",
)

_GOOGLE = (
    "id.time",
    "id.uniqueQualifier",
    "id.applicationName",
    "id.customerId",
    "etag",
    "kind",
    "ownerDomain",
    "actor.email",
    "actor.profileId",
    "actor.callerType",
    "actor.key",
    "ipAddress",
    "type",
    "name",
    "parameters.*",
)

_SLACK = (
    "id",
    "date_create",
    "action",
    "actor.type",
    "actor.user.*",
    "entity.*",
    "context.ip_address",
    "context.ua",
    "context.session_id",
    "context.location.*",
    "details.*",
)

_OKTA = (
    "uuid",
    "published",
    "eventType",
    "version",
    "severity",
    "legacyEventType",
    "displayMessage",
    "actor.*",
    "client.*",
    "device.*",
    "outcome.result",
    "outcome.reason",
    "target.*",
    "transaction.*",
    "debugContext.*",
    "authenticationContext.*",
    "securityContext.*",
    "request.*",
)

STORED_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("m365", "signins"): _SIGNIN,
    ("m365", "directory_audits"): _DIRECTORY_AUDIT,
    ("m365", "unified_audit"): _UNIFIED_AUDIT,
    ("m365", "risk_detections"): _RISK_DETECTION,
    ("m365", "security_alerts"): _SECURITY_ALERT,
    **{
        ("google", s): _GOOGLE
        for s in (
            "login",
            "admin",
            "drive",
            "token",
            "saml",
            "user_accounts",
            "takeout",
            "gmail_log",
            "mobile",
        )
    },
    ("slack", "audit"): _SLACK,
    ("okta", "logs"): _OKTA,
}


@dataclass(frozen=True)
class _Catalogue:
    exact: frozenset[str]
    open_prefixes: tuple[str, ...]

    def has(self, dotted: str) -> bool:
        return dotted in self.exact or any(
            dotted == p[:-1] or dotted.startswith(p) for p in self.open_prefixes
        )


def _catalogue(paths: tuple[str, ...]) -> _Catalogue:
    exact: set[str] = set()
    prefixes: list[str] = []
    for path in paths:
        lowered = path.lower()
        if lowered.endswith(".*"):
            prefixes.append(lowered[:-1])
            lowered = lowered[:-2]
        parts = lowered.split(".")
        for i in range(1, len(parts) + 1):  # an object itself can be read (`status|exists`)
            exact.add(".".join(parts[:i]))
    return _Catalogue(frozenset(exact), tuple(prefixes))


_CATALOGUES = {key: _catalogue(paths) for key, paths in STORED_FIELDS.items()}


def known_field(provider: str, stream: str, path: str) -> bool:
    """Whether events of this stream, as stored, can carry `path` (dotted, any case)."""
    catalogue = _CATALOGUES.get((provider, stream))
    # a stream without a catalogue is not judged: say yes rather than fail rules we cannot check
    if catalogue is None:
        return True
    lowered = path.strip().lower()
    if catalogue.has(lowered):
        return True
    # an Azure Monitor export keeps the Graph object under `properties` too
    inner = lowered.removeprefix("properties.")
    return (provider, stream) in _EXPORT_VIEW_STREAMS and inner != lowered and catalogue.has(inner)


def fields_read(node: Node) -> Iterator[FieldPath]:
    """Every field a compiled condition reads (keywords read no field)."""
    if isinstance(node, Leaf):
        if node.path is not None:
            yield node.path
        if node.kind is LeafKind.FIELDREF:
            yield node.args[0]
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from fields_read(child)
    elif isinstance(node, Not):
        yield from fields_read(node.child)


def unknown_fields(node: Node, provider: str, streams: tuple[str, ...]) -> list[str]:
    """Fields the condition reads that none of its streams' stored events carry, as written."""
    missing: dict[str, None] = {}
    for path in fields_read(node):
        if not any(known_field(provider, stream, path.dotted) for stream in streams):
            missing[path.written] = None
    return list(missing)


# -- an event built from the rule itself -----------------------------------------------------------

_KEYWORD_FIELD = "message"


def _first(values: Any) -> Any:
    if isinstance(values, frozenset | set):
        return sorted(values, key=str)[0] if values else None
    return values[0] if values else None


def _leaf_value(leaf: Leaf) -> tuple[str, Any] | None:
    """(how, value) that satisfies one leaf, or None when we cannot write one down (regexes)."""
    kind, args = leaf.kind, leaf.args
    if kind is LeafKind.EQUALS:
        value = _first(args[0])
        return None if value is None else ("exact", value)
    if kind in (LeafKind.CONTAINS, LeafKind.STARTSWITH, LeafKind.ENDSWITH):
        needle = _first(args)
        return None if needle is None else (kind.value, needle)
    if kind in (LeafKind.ANY_VALUE, LeafKind.EXISTS):
        return ("exact", "x") if kind is LeafKind.ANY_VALUE or args[0] else ("absent", None)
    if kind is LeafKind.CIDR:
        version, network, mask = args[0]
        host = network | (1 if mask != (1 << (32 if version == 4 else 128)) - 1 else 0)
        return "exact", str(ipaddress.IPv6Address(host) if version == 6 else ipaddress.IPv4Address(host))
    if kind is LeafKind.COMPARE:
        op, number = args
        return "exact", number + (1 if op == "gt" else -1 if op == "lt" else 0)
    if kind is LeafKind.NULL:
        return "absent", None
    return None


def _assign(event: dict[str, Any], segments: list[str], how: str, value: Any) -> bool:
    node = event
    for segment in segments[:-1]:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            return False
        node = child
    key = segments[-1]
    if how == "absent":
        return key not in node
    current = node.get(key)
    if how == "exact":
        if current is not None and str(current).lower() != str(value).lower():
            return False
        node[key] = value
    elif current is None:
        node[key] = value
    elif how == "startswith":
        node[key] = f"{value}{current}"
    else:  # contains and endswith append: `a*` + `*b` -> `a...b`
        node[key] = f"{current} {value}" if how == "contains" else f"{current}{value}"
    return True


def _candidates(node: Node, limit: int = 16) -> list[list[tuple[Leaf, bool]]]:
    """A few sets of leaves that, all true, make the condition true (negated leaves left out)."""
    if isinstance(node, Leaf):
        return [[(node, True)]]
    if isinstance(node, Not):
        return [[]]  # the built event simply lacks what the filter looks for
    if isinstance(node, Or):
        out: list[list[tuple[Leaf, bool]]] = []
        for child in node.children:
            out.extend(_candidates(child, limit))
            if len(out) >= limit:
                break
        return out[:limit]
    if isinstance(node, And):
        combos: list[list[tuple[Leaf, bool]]] = [[]]
        for child in node.children:
            combos = [a + b for a in combos for b in _candidates(child, limit)][:limit]
        return combos
    return []


def build_events(node: Node) -> Iterator[dict[str, Any]]:
    """Events in the rule's own (mapped) field names built to satisfy its condition; the caller
    checks which one the compiled rule really matches."""
    for leaves in _candidates(node):
        event: dict[str, Any] = {}
        ok = True
        for leaf, _ in leaves:
            if leaf.kind is LeafKind.KEYWORD:
                mode, needle = leaf.args
                ok = mode == "contains" and _assign(event, [_KEYWORD_FIELD], "contains", needle)
            elif leaf.path is not None:
                wanted = _leaf_value(leaf)
                ok = wanted is not None and _assign(event, list(leaf.path.written.split(".")), *wanted)
            if not ok:
                break
        if ok:
            yield event


def fires_on_built_event(rule: CompiledRule) -> bool:
    """Whether the compiled rule matches one of the events built from its condition, in the
    first of its streams (the figure `rules validate --report` prints beside "can fire")."""
    for data in build_events(rule.node):
        record = EventRecord(id=0, provider=rule.provider, stream=rule.streams[0], ts=0.0, data=data)
        try:
            if rule.matches(EventView(record)):
                return True
        except Exception:  # a rule that raises on its own event does not fire  # noqa: S112
            continue
    return False
