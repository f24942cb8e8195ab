"""Which provider/stream a Sigma `logsource` means, and what each stream's events look like.

Rules name streams the way the rest of tenantguard does (`product: m365`, `service: signins`),
and the names SigmaHQ uses are accepted as aliases (`product: azure, service: signinlogs`,
`product: google_workspace, service: google_workspace.admin`) so community rules load unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.normalise import EVENT_STREAMS

PROVIDER_ALIASES: dict[str, str] = {
    "m365": "m365",
    "microsoft365": "m365",
    "office365": "m365",
    "o365": "m365",
    "azure": "m365",
    "entra": "m365",
    "entra_id": "m365",
    "azuread": "m365",
    "google": "google",
    "google_workspace": "google",
    "gworkspace": "google",
    "slack": "slack",
    "okta": "okta",
}

# SigmaHQ service names -> our stream names (per provider).
SERVICE_ALIASES: dict[str, dict[str, str]] = {
    "m365": {
        "signinlogs": "signins",
        "signin": "signins",
        "sign_in": "signins",
        "auditlogs": "directory_audits",
        "directory_audit": "directory_audits",
        "riskdetection": "risk_detections",
        "pim": "directory_audits",  # PIM activations and assignments are directory audits
        "risk_detection": "risk_detections",
        "alerts_v2": "security_alerts",
        "security_alert": "security_alerts",
        "alerts": "security_alerts",
        "audit": "unified_audit",
        "exchange": "unified_audit",
        "sharepoint": "unified_audit",
        "threat_management": "unified_audit",
        "threat_detection": "unified_audit",
        "management_activity": "unified_audit",
    },
    "google": {
        "token_activity": "token",
        "login_activity": "login",
        "gmail": "gmail_log",  # the Reports API's gmail application (Gmail log events)
        "device": "mobile",
        "mobile_device": "mobile",
    },
    "slack": {"audit_logs": "audit", "auditlogs": "audit"},
    "okta": {"okta": "logs", "system_log": "logs", "systemlog": "logs"},
}


@dataclass(frozen=True)
class StreamProfile:
    """What a stream's events look like: who the entities are, what to index on."""

    index_preference: tuple[str, ...]
    entities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    actor_path: str | None = None
    # The provider's own principals (Okta's `system@okta.com`): e-mail-like, but nobody's account,
    # so never a person entity (they would join unrelated incidents).
    system_people: frozenset[str] = frozenset()


_GOOGLE = StreamProfile(
    index_preference=("name", "type"),
    entities={
        "people": ("actor.email",),
        "ips": ("ipAddress",),
        "accounts": ("actor.profileId",),
    },
    actor_path="actor.email",
)

PROFILES: dict[tuple[str, str], StreamProfile] = {
    ("m365", "signins"): StreamProfile(
        index_preference=("status.errorCode", "clientAppUsed", "riskLevelDuringSignIn"),
        entities={
            "people": ("userPrincipalName",),
            "ips": ("ipAddress", "callerIpAddress"),
            "apps": ("appDisplayName",),
            "accounts": ("userId",),
        },
        actor_path="userPrincipalName",
    ),
    ("m365", "directory_audits"): StreamProfile(
        index_preference=("activityDisplayName", "operationName", "category"),
        entities={
            "people": ("initiatedBy.user.userPrincipalName", "targetResources.userPrincipalName"),
            "ips": ("initiatedBy.user.ipAddress",),
            "apps": ("initiatedBy.app.displayName",),
            "accounts": ("initiatedBy.user.id",),
        },
        actor_path="initiatedBy.user.userPrincipalName",
    ),
    ("m365", "unified_audit"): StreamProfile(
        index_preference=("Operation", "RecordType", "Workload"),
        entities={
            "people": ("UserId",),
            "ips": ("ClientIP", "ActorIpAddress"),
            "files": ("SourceFileName",),
            "accounts": ("UserKey",),
        },
        actor_path="UserId",
    ),
    ("m365", "risk_detections"): StreamProfile(
        index_preference=("riskEventType", "riskLevel"),
        entities={"people": ("userPrincipalName",), "ips": ("ipAddress",), "accounts": ("userId",)},
        actor_path="userPrincipalName",
    ),
    # Defender alerts: the accounts, mailboxes and addresses their evidence names
    ("m365", "security_alerts"): StreamProfile(
        index_preference=("severity", "serviceSource", "status"),
        entities={
            "people": ("evidence.userAccount.userPrincipalName", "evidence.primaryAddress"),
            "ips": ("evidence.ipAddress",),
            "apps": ("evidence.displayName",),
            "accounts": ("evidence.userAccount.azureAdUserId",),
        },
        actor_path="evidence.userAccount.userPrincipalName",
    ),
    ("google", "login"): _GOOGLE,
    ("google", "admin"): StreamProfile(
        index_preference=_GOOGLE.index_preference,
        entities={**_GOOGLE.entities, "people": ("actor.email", "parameters.USER_EMAIL")},
        actor_path="actor.email",
    ),
    ("google", "drive"): StreamProfile(
        index_preference=_GOOGLE.index_preference,
        entities={**_GOOGLE.entities, "files": ("parameters.doc_title", "parameters.doc_id")},
        actor_path="actor.email",
    ),
    ("google", "token"): StreamProfile(
        index_preference=_GOOGLE.index_preference,
        entities={**_GOOGLE.entities, "apps": ("parameters.app_name", "parameters.client_id")},
        actor_path="actor.email",
    ),
    ("google", "saml"): _GOOGLE,
    # a Takeout names its actor and, in USER_EMAIL, the account whose data was exported
    ("google", "takeout"): StreamProfile(
        index_preference=_GOOGLE.index_preference,
        entities={**_GOOGLE.entities, "people": ("actor.email", "parameters.USER_EMAIL")},
        actor_path="actor.email",
    ),
    ("google", "user_accounts"): _GOOGLE,
    # Gmail log events: the recipients and the sender; mobile: the device's user
    ("google", "gmail_log"): StreamProfile(
        index_preference=_GOOGLE.index_preference,
        entities={
            **_GOOGLE.entities,
            "people": ("actor.email", "parameters.message_info.destination.address"),
        },
        actor_path="actor.email",
    ),
    ("google", "mobile"): StreamProfile(
        index_preference=_GOOGLE.index_preference,
        entities={**_GOOGLE.entities, "people": ("actor.email", "parameters.USER_EMAIL")},
        actor_path="actor.email",
    ),
    ("slack", "audit"): StreamProfile(
        index_preference=("action",),
        entities={
            "people": ("actor.user.email", "entity.user.email"),
            "ips": ("context.ip_address",),
            "files": ("entity.file.name",),
            "apps": ("entity.app.name",),
            "accounts": ("actor.user.id",),
        },
        actor_path="actor.user.email",
    ),
    ("okta", "logs"): StreamProfile(
        index_preference=("eventType",),
        entities={
            "people": ("actor.alternateId",),
            "ips": ("client.ipAddress",),
            "accounts": ("actor.id",),
        },
        actor_path="actor.alternateId",
        system_people=frozenset({"system@okta.com"}),
    ),
}


class LogsourceError(ValueError):
    """The logsource names no provider/stream tenantguard collects."""


def resolve_provider(product: str | None) -> str:
    if not product:
        raise LogsourceError(
            "logsource has no product; use product: m365 | google | slack | okta (aliases: azure, google_workspace)"
        )
    provider = PROVIDER_ALIASES.get(product.strip().lower())
    if provider is None:
        raise LogsourceError(
            f"unknown logsource product {product!r}; use one of m365, google, slack, okta "
            f"(aliases: {', '.join(sorted(a for a in PROVIDER_ALIASES if a not in EVENT_STREAMS))})"
        )
    return provider


def resolve_streams(product: str | None, service: str | None) -> tuple[str, tuple[str, ...]]:
    """(provider, streams) for a logsource; no service means every stream of the provider."""
    if product and product.strip().lower() == "gcp":
        # SigmaHQ files Google Workspace under product gcp with services google_workspace.*
        if not service or not service.strip().lower().startswith("google_workspace."):
            raise LogsourceError(
                f"logsource product gcp, service {service!r}: tenantguard collects Google Workspace "
                "(service google_workspace.<application>), not Google Cloud audit logs"
            )
        product = "google"
    provider = resolve_provider(product)
    if not service:
        return provider, EVENT_STREAMS[provider]
    name = service.strip().lower()
    for prefix in ("google_workspace.", "gworkspace.", "slack.", "m365.", "azure."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    name = SERVICE_ALIASES.get(provider, {}).get(name, name)
    if name not in EVENT_STREAMS[provider]:
        raise LogsourceError(
            f"unknown logsource service {service!r} for product {provider}; "
            f"use one of {', '.join(EVENT_STREAMS[provider])}"
        )
    return provider, (name,)


def profile(provider: str, stream: str) -> StreamProfile:
    return PROFILES.get((provider, stream)) or StreamProfile(index_preference=())
