"""pySigma processing pipelines that map the SigmaHQ taxonomy onto the events tenantguard stores.

SigmaHQ's cloud rules are written for the field names of the exports their authors had: Azure
Monitor / Log Analytics columns for Entra ID (`ResultType`, `OperationName`,
`properties.message`), flattened Cloud Logging names for Google Workspace (`product: gcp`,
`service: google_workspace.admin`, `eventService`, `eventName`, bare parameter names) and a few
generic names for the Management Activity API (`eventSource`, `eventName`, `status`). We store the
provider API's own objects (Graph, Reports API, Management Activity API), so the loader runs every
rule through :data:`COMMUNITY_PIPELINE` before compiling it. Every item is conditioned on the
community logsource (`product: azure`, `product: m365` with a SigmaHQ service, `product: gcp`), so
rules written for our own logsources (`product: m365, service: signins`, `product: google`) are
never touched.

Okta needs no mapping: SigmaHQ's Okta rules name LogEvent fields in lower case (`eventtype`,
`displaymessage`, `debugContext.debugData.requestUri`) and field access is case-insensitive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sigma.processing.conditions import (
    ExcludeFieldCondition,
    IncludeFieldCondition,
    LogsourceCondition,
    RuleProcessingCondition,
)
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddFieldnamePrefixTransformation,
    FieldMappingTransformation,
    FieldPrefixMappingTransformation,
    MapStringTransformation,
    ReplaceStringTransformation,
    ValueListPlaceholderTransformation,
)
from sigma.processing.transformations.base import ValueTransformation
from sigma.rule import SigmaRule
from sigma.types import SigmaRegularExpression, SigmaString, SigmaType

# -- Entra ID (product: azure) ------------------------------------------------------------------

# Log Analytics `SigninLogs` columns -> Graph signIn paths (columns whose name is the Graph name in
# another case need nothing: field access is case-insensitive).
AZURE_SIGNIN_FIELDS: dict[str | None, str | list[str]] = {
    # an Azure Monitor export carries the code in its wrapper too, which the normaliser keeps
    "ResultType": ["status.errorCode", "resultType"],
    "ResultDescription": ["status.failureReason", "resultDescription"],
    "Status": "status.errorCode",  # values mapped below: Success -> 0, Failure -> a non-zero code
    "ClientApp": "clientAppUsed",
    "Username": "userPrincipalName",
    "Location": "location.countryOrRegion",
    "LocationDetails.city": "location.city",
    "LocationDetails.state": "location.state",
    "LocationDetails.countryOrRegion": "location.countryOrRegion",
    "IPAddress": "ipAddress",
    "CallerIpAddress": "ipAddress",
    "SourceIP": "ipAddress",
    "DeviceDetail.trusttype": "deviceDetail.trustType",
    "MfaDetail.authMethod": "mfaDetail.authMethod",
    "AuthenticationMethod": "authenticationDetails.authenticationMethod",
}

# Log Analytics `AuditLogs` columns -> Graph directoryAudit paths.
AZURE_AUDIT_FIELDS: dict[str | None, str | list[str]] = {
    "OperationName": "activityDisplayName",
    "ActivityType": "activityDisplayName",
    "properties.message": "activityDisplayName",
    "Operation": "activityDisplayName",
    "Result": "result",
    "ResultReason": "resultReason",
    "Status": "result",
    "InitiatedBy": "initiatedBy.user.userPrincipalName",
    "Target": "targetResources.userPrincipalName",
    "TargetUserPrincipalName": "targetResources.userPrincipalName",
    "ModifiedProperties": "targetResources.modifiedProperties.newValue",
}

# -- Microsoft 365 unified audit (product: m365, service: audit | exchange | threat_management) ---

M365_AUDIT_FIELDS: dict[str | None, str | list[str]] = {
    "eventSource": "Workload",
    "eventName": "Operation",
    "status": "ResultStatus",
    # lists of {Name, Value} objects: a value matches any entry's name or value
    "Parameters": ["Parameters.Name", "Parameters.Value"],
    "ModifiedProperties": ["ModifiedProperties.Name", "ModifiedProperties.NewValue"],
    "ExtendedProperties": ["ExtendedProperties.Name", "ExtendedProperties.Value"],
}

# SigmaHQ writes `status: success`; the workloads write Success / Succeeded (Azure AD, SharePoint)
# or True (Exchange cmdlets).
M365_RESULT_STATUS: dict[str, str | list[str]] = {
    "success": ["Success", "Succeeded", "True"],
    "Success": ["Success", "Succeeded", "True"],
    "failure": ["Failure", "Failed", "False"],
    "Failure": ["Failure", "Failed", "False"],
}

# Security & Compliance alerts (RecordType 40): the alert's name is in `Name`, its state in `Status`
# (Active, Investigating, Resolved ...); SigmaHQ's `status: success` there means "the alert was
# raised", so it becomes "has a status".
M365_ALERT_FIELDS: dict[str | None, str | list[str]] = {
    "eventSource": "Workload",
    "eventName": "Name",
    "status": "Status",
}

# -- Google Workspace (product: gcp, service: google_workspace.*) ---------------------------------

GOOGLE_FIELDS: dict[str | None, str | list[str]] = {
    "eventService": "id.applicationName",
    "protoPayload.serviceName": "id.applicationName",
    "eventName": "name",
    "protoPayload.metadata.event.eventName": "name",
    "eventType": "type",
    "protoPayload.metadata.event.eventType": "type",
    "protoPayload.authenticationInfo.principalEmail": "actor.email",
    "protoPayload.requestMetadata.callerIp": "ipAddress",
}
# Names that are already fields of the stored event; any other name is an event parameter.
GOOGLE_TOP_LEVEL = [r"^(id|actor|parameters)\..+$", r"^(name|type|ipAddress|kind|etag|ownerDomain)$"]


@dataclass
class SignInStatusTransformation(ValueTransformation):
    """`Status: Success | Failure` (the Log Analytics status column) as a Graph error code:
    success is code 0, failure any other code."""

    def apply_value(self, field: str | None, val: SigmaType) -> SigmaType | None:
        if not isinstance(val, SigmaString):
            return None
        text = str(val).strip().lower()
        if text == "success":
            return SigmaString("0")
        if text in ("failure", "failed"):
            return SigmaRegularExpression("^[1-9][0-9]*$")
        return None


def _logsources(product: str, *services: str | None) -> list[RuleProcessingCondition]:
    """Fresh conditions (pySigma binds each condition to one processing item)."""
    return [LogsourceCondition(product=product, service=s) for s in services or (None,)]


def _items() -> list[ProcessingItem]:
    def signin() -> list[RuleProcessingCondition]:
        return _logsources("azure", "signinlogs")

    def google() -> list[RuleProcessingCondition]:  # the gcp.audit service is refused by the logsource
        return _logsources("gcp")

    return [
        ProcessingItem(
            identifier="azure_signin_status_values",
            transformation=SignInStatusTransformation(),
            rule_conditions=signin(),
            field_name_conditions=[IncludeFieldCondition(fields=["Status"])],
        ),
        ProcessingItem(
            identifier="azure_signin_fields",
            transformation=FieldMappingTransformation(AZURE_SIGNIN_FIELDS),
            rule_conditions=signin(),
        ),
        ProcessingItem(
            identifier="azure_audit_fields",
            transformation=FieldMappingTransformation(AZURE_AUDIT_FIELDS),
            rule_conditions=_logsources("azure", "auditlogs", "pim"),
            rule_condition_linking=any,
        ),
        # Rules written for the Azure Monitor export read the Graph object under `properties.`;
        # we store the Graph object itself.
        ProcessingItem(
            identifier="azure_properties_prefix",
            transformation=FieldPrefixMappingTransformation({"properties.": ""}),
            rule_conditions=_logsources("azure"),
        ),
        ProcessingItem(
            identifier="m365_audit_status_values",
            transformation=MapStringTransformation(M365_RESULT_STATUS),
            rule_conditions=_logsources("m365", "audit", "exchange", "sharepoint"),
            rule_condition_linking=any,
            field_name_conditions=[IncludeFieldCondition(fields=["status"])],
        ),
        ProcessingItem(
            identifier="m365_audit_fields",
            transformation=FieldMappingTransformation(M365_AUDIT_FIELDS),
            rule_conditions=_logsources("m365", "audit", "exchange", "sharepoint"),
            rule_condition_linking=any,
        ),
        ProcessingItem(
            identifier="m365_alert_status_values",
            transformation=MapStringTransformation({"success": "*", "Success": "*"}),
            rule_conditions=_logsources("m365", "threat_management", "threat_detection"),
            rule_condition_linking=any,
            field_name_conditions=[IncludeFieldCondition(fields=["status"])],
        ),
        ProcessingItem(
            identifier="m365_alert_fields",
            transformation=FieldMappingTransformation(M365_ALERT_FIELDS),
            rule_conditions=_logsources("m365", "threat_management", "threat_detection"),
            rule_condition_linking=any,
        ),
        # Cloud Logging's service names (`admin.googleapis.com`) are the Reports API's
        # application names (`admin`).
        ProcessingItem(
            identifier="google_service_values",
            transformation=ReplaceStringTransformation(regex=r"^(\w+)\.googleapis\.com$", replacement=r"\1"),
            rule_conditions=google(),
            field_name_conditions=[
                IncludeFieldCondition(fields=["eventService", "protoPayload.serviceName"])
            ],
        ),
        ProcessingItem(
            identifier="google_fields",
            transformation=FieldMappingTransformation(GOOGLE_FIELDS),
            rule_conditions=google(),
        ),
        ProcessingItem(
            identifier="google_parameters",
            transformation=AddFieldnamePrefixTransformation("parameters."),
            rule_conditions=google(),
            field_name_conditions=[ExcludeFieldCondition(fields=GOOGLE_TOP_LEVEL, mode="re")],
        ),
    ]


def community_pipeline() -> ProcessingPipeline:
    """A fresh pipeline (pySigma keeps per-application state on it)."""
    return ProcessingPipeline(name="tenantguard: SigmaHQ taxonomy -> stored events", items=_items())


_PIPELINE = community_pipeline()


def apply_community_pipeline(rule: SigmaRule) -> SigmaRule:
    """Map a rule's community field names onto the stored shapes, in place; our own rules pass unchanged."""
    _PIPELINE.apply(rule)
    return rule


def apply_placeholders(rule: SigmaRule, values: Mapping[str, Sequence[str]]) -> SigmaRule:
    """Replace the `%name%` placeholders of `|expand` values with the configured value lists, in
    place (pySigma's ValueListPlaceholderTransformation: a value holding a placeholder becomes
    one value per list entry, i.e. an OR of them). Unknown names raise SigmaValueError."""
    ProcessingPipeline(
        name="tenantguard: placeholder values",
        items=[
            ProcessingItem(
                identifier="placeholder_values", transformation=ValueListPlaceholderTransformation()
            )
        ],
        vars={name: list(entries) for name, entries in values.items()},
    ).apply(rule)
    return rule
