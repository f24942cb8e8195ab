"""Which properties a Graph resource has, and which `$filter` clauses the service accepts on it.

Property names are those of the v1.0 resource pages on learn.microsoft.com (signIn, user,
directoryAudit, riskDetection, unifiedRoleDefinition). `$select` of a name that is not there is
refused as Graph refuses it; a selected property the simulator does not model comes back null
(or [] for collections), as it does from a tenant where the property is unset. Filter support
is the "Supports $filter" column of the audit-log pages: the reporting service refuses the rest
with 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.odata import AnyOf, Bool, Compare, Function, InList
from simulator.server import ApiError


@dataclass(frozen=True)
class EntityType:
    name: str  # microsoft.graph.<name>
    properties: frozenset[str]
    collections: frozenset[str] = frozenset()
    beta_only: frozenset[str] = frozenset()
    # property path (lower case) -> operators accepted; None = $filter is not checked for this type
    filterable: dict[str, frozenset[str]] | None = None
    lambdas: dict[str, frozenset[str]] = field(default_factory=dict)  # collection -> ops inside any()

    def names(self, version: str) -> frozenset[str]:
        return self.properties | self.beta_only if version == "beta" else self.properties

    def canonical(self, name: str, version: str) -> str | None:
        lowered = name.lower()
        return next((p for p in self.names(version) if p.lower() == lowered), None)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_EQ = frozenset({"eq"})
_EQ_START = frozenset({"eq", "startswith"})
_TIME = frozenset({"eq", "ge", "le", "gt", "lt"})

SIGN_IN = EntityType(
    "signIn",
    _names(
        """appDisplayName appId appliedConditionalAccessPolicies appliedEventListeners appOwnerTenantId
        appTokenProtectionStatus authenticationAppDeviceDetails authenticationAppPolicyEvaluationDetails
        authenticationContextClassReferences authenticationDetails authenticationMethodsUsed
        authenticationProcessingDetails authenticationProtocol authenticationRequirement
        authenticationRequirementPolicies autonomousSystemNumber azureResourceId clientAppUsed
        clientCredentialType conditionalAccessAudiences conditionalAccessStatus correlationId
        createdDateTime crossTenantAccessType deviceDetail federatedCredentialId flaggedForReview
        globalSecureAccessIpAddress homeTenantId homeTenantName id incomingTokenType ipAddress
        ipAddressFromResourceProvider isInteractive isTenantRestricted isThroughGlobalSecureAccess
        location managedIdentity networkLocationDetails originalRequestId originalTransferMethod
        privateLinkDetails processingTimeInMilliseconds resourceDisplayName resourceId
        resourceServicePrincipalId resourceTenantId riskDetail riskEventTypes riskEventTypes_v2
        riskLevelAggregated riskLevelDuringSignIn riskState servicePrincipalCredentialKeyId
        servicePrincipalCredentialThumbprint servicePrincipalId servicePrincipalName sessionId
        sessionLifetimePolicies signInEventTypes signInIdentifier signInIdentifierType
        signInTokenProtectionStatus status tokenIssuerName tokenIssuerType tokenProtectionStatusDetails
        uniqueTokenIdentifier userAgent userDisplayName userId userPrincipalName userType"""
    ),
    collections=_names(
        """appliedConditionalAccessPolicies appliedEventListeners authenticationAppPolicyEvaluationDetails
        authenticationContextClassReferences authenticationDetails authenticationMethodsUsed
        authenticationProcessingDetails authenticationRequirementPolicies conditionalAccessAudiences
        networkLocationDetails privateLinkDetails riskEventTypes riskEventTypes_v2
        sessionLifetimePolicies signInEventTypes"""
    ),
    beta_only=_names("mfaDetail"),
    filterable={
        "appdisplayname": _EQ_START,
        "appid": _EQ,
        "clientappused": _EQ,
        "conditionalaccessstatus": _EQ,
        "correlationid": _EQ,
        "createddatetime": _TIME,
        "devicedetail/browser": _EQ_START,
        "devicedetail/deviceid": _EQ,
        "devicedetail/operatingsystem": _EQ_START,
        "id": _EQ,
        "ipaddress": _EQ_START,
        "isinteractive": _EQ,
        "location/city": _EQ_START,
        "location/countryorregion": _EQ_START,
        "location/state": _EQ_START,
        "resourcedisplayname": _EQ,
        "resourceid": _EQ,
        "riskLevelDuringSignIn".lower(): _EQ,
        "risklevelaggregated": _EQ,
        "riskstate": _EQ,
        "sessionid": _EQ,
        "status/errorcode": _EQ,
        "userdisplayname": _EQ_START,
        "userid": _EQ,
        "userprincipalname": _EQ_START,
        "appliedconditionalaccesspolicies/result": _EQ,
    },
    lambdas={"signineventtypes": frozenset({"eq", "ne"}), "riskeventtypes_v2": _EQ},
)

DIRECTORY_AUDIT = EntityType(
    "directoryAudit",
    _names(
        """activityDateTime activityDisplayName additionalDetails category correlationId id initiatedBy
        loggedByService operationType result resultReason targetResources"""
    ),
    collections=_names("additionalDetails targetResources"),
    filterable={
        "activitydatetime": _TIME,
        "activitydisplayname": _EQ_START,
        "category": _EQ,
        "correlationid": _EQ,
        "id": _EQ,
        "initiatedby/user/id": _EQ,
        "initiatedby/user/displayname": _EQ,
        "initiatedby/user/userprincipalname": _EQ_START,
        "initiatedby/app/appid": _EQ,
        "initiatedby/app/displayname": _EQ,
        "loggedbyservice": _EQ,
        "operationtype": _EQ,
        "result": _EQ,
    },
    lambdas={"targetresources": _EQ_START},
)

RISK_DETECTION = EntityType(
    "riskDetection",
    _names(
        """activity activityDateTime additionalInfo correlationId detectedDateTime detectionTimingType id
        ipAddress lastUpdatedDateTime location requestId riskDetail riskEventType riskLevel riskState
        source tokenIssuerType userDisplayName userId userPrincipalName"""
    ),
    beta_only=_names("riskType userType"),
)

# microsoft.graph.security.alert (GET /security/alerts_v2): $filter on the properties its
# page documents (assignedTo, classification, determination, createdDateTime, lastUpdateDateTime,
# severity, serviceSource, status)
SECURITY_ALERT = EntityType(
    "security.alert",
    _names(
        """actorDisplayName additionalData alertPolicyId alertWebUrl assignedTo category classification
        comments createdDateTime customDetails description detectionSource detectorId determination
        evidence firstActivityDateTime id incidentId incidentWebUrl lastActivityDateTime
        lastUpdateDateTime mitreTechniques productName providerAlertId recommendedActions
        resolvedDateTime serviceSource severity status systemTags tenantId threatDisplayName
        threatFamilyName title"""
    ),
    collections=_names("comments evidence mitreTechniques systemTags"),
    filterable={
        "assignedto": _EQ,
        "classification": _EQ,
        "determination": _EQ,
        "createddatetime": _TIME,
        "lastupdatedatetime": _TIME,
        "severity": _EQ,
        "servicesource": _EQ,
        "status": _EQ,
    },
)

USER = EntityType(
    "user",
    _names(
        """aboutMe accountEnabled ageGroup assignedLicenses assignedPlans authorizationInfo birthday
        businessPhones city companyName consentProvidedForMinor country createdDateTime creationType
        customSecurityAttributes deletedDateTime department displayName employeeHireDate employeeId
        employeeLeaveDateTime employeeOrgData employeeType externalUserState
        externalUserStateChangeDateTime faxNumber givenName hireDate id identities imAddresses interests
        isManagementRestricted isResourceAccount jobTitle lastPasswordChangeDateTime legalAgeGroupClassification
        licenseAssignmentStates mail mailboxSettings mailNickname mobilePhone mySite officeLocation
        onPremisesDistinguishedName onPremisesDomainName onPremisesExtensionAttributes
        onPremisesImmutableId onPremisesLastSyncDateTime onPremisesProvisioningErrors
        onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesSyncEnabled
        onPremisesUserPrincipalName otherMails passwordPolicies passwordProfile pastProjects postalCode
        preferredDataLocation preferredLanguage preferredName print provisionedPlans proxyAddresses
        responsibilities schools securityIdentifier serviceProvisioningErrors showInAddressList
        signInActivity signInSessionsValidFromDateTime skills state streetAddress surname
        usageLocation userPrincipalName userType"""
    ),
    collections=_names(
        """assignedLicenses assignedPlans businessPhones identities imAddresses interests
        licenseAssignmentStates onPremisesProvisioningErrors otherMails pastProjects provisionedPlans
        proxyAddresses responsibilities schools serviceProvisioningErrors skills"""
    ),
)

ROLE_DEFINITION = EntityType(
    "unifiedRoleDefinition",
    _names(
        "description displayName id isBuiltIn isEnabled resourceScopes rolePermissions templateId version"
    ),
    collections=_names("resourceScopes rolePermissions"),
    beta_only=_names("isPrivileged allowedPrincipalTypes"),
)


def shape(entity: EntityType, item: dict[str, Any], version: str) -> dict[str, Any]:
    """The item without properties the resource does not have in this version."""
    names = entity.names(version)
    return {k: v for k, v in item.items() if k in names or k.startswith("@odata.")}


def check_select(entity: EntityType, fields: list[str] | None, version: str) -> None:
    for name in fields or []:
        if name != "*" and entity.canonical(name, version) is None:
            raise ApiError(
                400,
                "BadRequest",
                f"Parsing OData Select and Expand failed: Could not find a property named '{name}' "
                f"on type 'microsoft.graph.{entity.name}'.",
            )


def select(entity: EntityType, item: dict[str, Any], fields: list[str], version: str) -> dict[str, Any]:
    """Exactly the selected properties (null or [] for ones the simulator has no value for)."""
    if "*" in fields:
        return item
    out: dict[str, Any] = {k: v for k, v in item.items() if k == "@odata.type"}
    lowered = {k.lower(): k for k in item}
    for name in fields:
        canonical = entity.canonical(name, version) or name
        key = lowered.get(canonical.lower())
        out[canonical] = item[key] if key is not None else ([] if canonical in entity.collections else None)
    return out


def check_filter(entity: EntityType, node: Any, text: str) -> None:
    """Refuse what the service refuses: unknown properties, unsupported operators and functions."""
    if entity.filterable is None or node is None:
        return

    def refuse(why: str) -> None:
        raise ApiError(400, "BadRequest", f"Invalid filter clause: {why} ({text!r}).")

    def check(item: Any, lambda_of: str | None = None, var: str | None = None) -> None:
        if isinstance(item, Bool):
            if item.op == "not":
                refuse("'not' is not supported")
            for child in item.items:
                check(child, lambda_of, var)
            return
        if isinstance(item, AnyOf):
            ops = entity.lambdas.get(item.path.lower())
            if ops is None:
                refuse(f"any() is not supported on '{item.path}'")
            check(item.body, item.path.lower(), item.var)
            return
        if isinstance(item, Compare | Function | InList):
            op = item.op if isinstance(item, Compare) else item.name if isinstance(item, Function) else "in"
            path = item.path
            if lambda_of is not None and var is not None and path.split("/")[0] == var:
                ops = entity.lambdas[lambda_of]
                if op not in ops:
                    refuse(f"operator '{op}' is not supported inside any() on '{lambda_of}'")
                return
            ops = entity.filterable.get(path.lower())  # type: ignore[union-attr]
            if ops is None:
                refuse(f"filtering on '{path}' is not supported on microsoft.graph.{entity.name}")
            if op == "in":
                op = "eq"  # in (...) is a list of eq
            if op not in ops:  # type: ignore[operator]
                refuse(f"operator '{op}' is not supported on '{path}'")
            return
        refuse("unsupported expression")

    check(node)
