"""Mutable tenant state: configuration that reads return and that stories and remediation change.

The base comes from the tenant (generated), stories apply their effects at build time (every
story happened before "now"), and write endpoints change it at run time. Every run-time change
is appended to the change log (`changes`), which tests read to assert what a remediation did.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.catalog import ENTRA_ROLES, GOOGLE_ROLES, SLACK_WORKSPACE_APPS, THIRD_PARTY_APPS
from simulator.render.slack import SLACK_TENANT_SETTINGS
from simulator.tenant import Permission, Person, Tenant
from simulator.timestamps import DAY, SECOND


@dataclass
class UserState:
    entra_enabled: bool = True
    google_suspended: bool = False
    google_change_password: bool = False
    slack_deleted: bool = False
    sessions_revoked_at: int | None = None
    mfa_methods: list[dict[str, Any]] = field(default_factory=list)
    google_admin: bool = False
    risk_level: str = "none"
    risk_state: str = "none"
    risk_detail: str = "none"
    risk_updated: int = 0
    version: int = 0


@dataclass
class InboxRule:
    id: str
    name: str
    sequence: int
    enabled: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]
    created: int


@dataclass
class Grant:
    id: str
    client_id: str  # service principal object id of the client app
    consent_type: str  # AllPrincipals | Principal
    principal_id: str | None
    resource_id: str
    scope: str


@dataclass
class ServicePrincipal:
    id: str
    app_id: str
    display_name: str
    publisher: str
    verified: bool
    owner_tenant: str
    created: int
    enabled: bool = True
    reply_urls: tuple[str, ...] = ()


@dataclass
class GoogleToken:
    client_id: str
    display_text: str
    scopes: list[str]
    native_app: bool = False
    anonymous: bool = False


@dataclass
class SlackApp:
    id: str
    name: str
    scopes: list[str]
    installed_by: int | None
    date_installed: int
    approved: bool = True


@dataclass(frozen=True)
class Change:
    """One write call as recorded for tests: what was asked, on what, and the outcome."""

    seq: int
    at: int
    provider: str
    action: str
    target: dict[str, Any]
    request: dict[str, Any]
    status: int

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at / SECOND,
            "provider": self.provider,
            "action": self.action,
            "target": self.target,
            "request": self.request,
            "status": self.status,
        }


GRAPH_SP_ID_TAG = "sp"


class State:
    """Everything mutable, behind one lock; reads copy what they return."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.lock = threading.RLock()
        self.version = 1
        self.changes: list[Change] = []
        self.users: dict[int, UserState] = {}
        self.added_permissions: dict[str, list[Permission]] = {}
        self.removed_permissions: set[tuple[str, str]] = set()
        self.inbox_rules_added: dict[int, list[InboxRule]] = {}
        self.inbox_rules_removed: set[str] = set()
        self.service_principals: dict[str, ServicePrincipal] = {}
        self.grants: dict[str, Grant] = {}
        self.role_assignments: dict[str, dict[str, Any]] = {}
        self.ca_policies: dict[str, dict[str, Any]] = {}
        self.security_defaults: dict[str, Any] = {}
        self.google_tokens_added: dict[int, dict[str, GoogleToken]] = {}
        self.google_tokens_removed: set[tuple[int, str]] = set()
        self.google_role_assignments: dict[str, dict[str, Any]] = {}
        self.google_policies: dict[str, dict[str, Any]] = {}
        self.slack_settings: dict[str, Any] = {}
        self.slack_apps: dict[str, SlackApp] = {}
        self.slack_public_files: dict[str, dict[str, Any]] = {}
        # Guests a story invited (id -> user object incl. invited_by) and the channels they are in.
        self.slack_guests: dict[str, dict[str, Any]] = {}
        self.slack_channel_guests: dict[str, list[str]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.removed_users: set[int] = set()
        self._build_base()
        from simulator.okta_directory import OktaDirectory

        self.okta = OktaDirectory(tenant)

    # ---------------------------------------------------------------- base state

    def _build_base(self) -> None:
        tenant = self.tenant
        ids = tenant.ids
        self.graph_sp_id = ids.guid(GRAPH_SP_ID_TAG, "Microsoft Graph")
        for person in tenant.people:
            state = self.user(person.index)
            state.mfa_methods = [
                self._method(person, m, tenant.options.start - 200 * DAY) for m in person.mfa_methods
            ]
            state.google_admin = "_SEED_ADMIN_ROLE" in person.google_roles
            for role in person.entra_roles:
                self._add_role_assignment(person, role, ids.guid("role-assignment", person.index, role))
            for role in person.google_roles:
                self._add_google_role(person, role, ids.number("google-role-assignment", person.index, role))
        self._base_apps()
        self._base_policies()
        self._base_google_policies()
        self.slack_settings = dict(SLACK_TENANT_SETTINGS)
        for settings_key, value in tenant.scenario.tenant.settings.get("slack", {}).items():
            self.slack_settings[settings_key] = value
        for key, name, scopes in SLACK_WORKSPACE_APPS:
            self.slack_apps[key] = SlackApp(
                ids.slack_id("A", "slack-app", key), name, list(scopes), 0, tenant.options.start - 300 * DAY
            )

    def _method(self, person: Person, method: str, created: int) -> dict[str, Any]:
        return {
            "id": self.tenant.ids.guid("auth-method", person.index, method, created),
            "method": method,
            "created": created,
        }

    def _add_role_assignment(self, person: Person, role: str, assignment_id: str) -> dict[str, Any]:
        assignment = {
            "id": assignment_id,
            "principalId": person.entra_id,
            "roleDefinitionId": ENTRA_ROLES[role],
            "directoryScopeId": "/",
        }
        self.role_assignments[assignment_id] = assignment
        return assignment

    def _add_google_role(self, person: Person, role: str, number: int) -> dict[str, Any]:
        assignment = {
            "kind": "admin#directory#roleAssignment",
            "etag": f'"{self.tenant.ids.token("role-etag", number, length=27)}"',
            "roleAssignmentId": str(number % 10**17),
            "roleId": GOOGLE_ROLES[role][0],
            "assignedTo": person.google_id,
            "assigneeType": "user",
            "scopeType": "CUSTOMER",
        }
        self.google_role_assignments[assignment["roleAssignmentId"]] = assignment
        return assignment

    def _base_apps(self) -> None:
        tenant = self.tenant
        ids = tenant.ids
        self.service_principals[self.graph_sp_id] = ServicePrincipal(
            self.graph_sp_id,
            "00000003-0000-0000-c000-000000000000",
            "Microsoft Graph",
            "Microsoft Services",
            True,
            "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
            tenant.options.start - 900 * DAY,
        )
        for app in THIRD_PARTY_APPS:
            sp_id = ids.guid(GRAPH_SP_ID_TAG, app.key)
            self.service_principals[sp_id] = ServicePrincipal(
                sp_id,
                ids.guid("app-id", app.key),
                app.name,
                app.publisher,
                app.verified,
                ids.guid("publisher-tenant", app.key),
                tenant.options.start - 500 * DAY,
                reply_urls=(f"https://{app.key}.example/oauth/callback",),
            )
            if app.popularity >= 0.25:
                self._add_grant(
                    sp_id, "AllPrincipals", None, app.graph_scopes, ids.token("grant", app.key, length=43)
                )
            else:
                users = [
                    p
                    for p in tenant.people
                    if (ids.fast("grant-user", p.index, len(app.key)) % 1000) < app.popularity * 1000
                ][:25]
                for person in users:
                    self._add_grant(
                        sp_id,
                        "Principal",
                        person.entra_id,
                        app.graph_scopes,
                        ids.token("grant", app.key, person.index, length=43),
                    )

    def _add_grant(
        self, client_id: str, consent_type: str, principal: str | None, scope: str, grant_id: str
    ) -> Grant:
        grant = Grant(grant_id, client_id, consent_type, principal, self.graph_sp_id, scope)
        self.grants[grant_id] = grant
        return grant

    def _base_policies(self) -> None:
        ids = self.tenant.ids
        break_glass = self.tenant.people[0].entra_id
        admin_roles = [
            ENTRA_ROLES[r]
            for r in (
                "Global Administrator",
                "Privileged Role Administrator",
                "Security Administrator",
                "Exchange Administrator",
            )
        ]
        specs = [
            (
                "require-mfa-all",
                "Require MFA for all users",
                "enabled",
                {"includeUsers": ["All"], "excludeUsers": [break_glass]},
                ["mfa"],
                ["all"],
            ),
            (
                "require-mfa-admins",
                "Require MFA for administrators",
                "enabled",
                {"includeRoles": admin_roles},
                ["mfa"],
                ["all"],
            ),
            (
                "block-legacy-auth",
                "Block legacy authentication",
                "enabled",
                {"includeUsers": ["All"]},
                ["block"],
                ["exchangeActiveSync", "other"],
            ),
            (
                "compliant-device-admins",
                "Require compliant device for admins",
                "enabledForReportingButNotEnforced",
                {"includeRoles": admin_roles},
                ["compliantDevice"],
                ["all"],
            ),
        ]
        overrides = self.tenant.scenario.tenant.settings.get("m365", {})
        created = self.tenant.options.start - 400 * DAY
        for key, name, state, users, controls, client_types in specs:
            policy_id = ids.guid("ca-policy", key)
            self.ca_policies[policy_id] = {
                "id": policy_id,
                "templateId": None,
                "displayName": name,
                "createdDateTime": created,
                "modifiedDateTime": created,
                "state": overrides.get(f"ca.{key}", state),
                "sessionControls": None,
                "conditions": {
                    "userRiskLevels": [],
                    "signInRiskLevels": [],
                    "clientAppTypes": client_types,
                    "platforms": None,
                    "locations": None,
                    "applications": {
                        "includeApplications": ["All"],
                        "excludeApplications": [],
                        "includeUserActions": [],
                    },
                    "users": {
                        "includeUsers": [],
                        "excludeUsers": [],
                        "includeGroups": [],
                        "excludeGroups": [],
                        "includeRoles": [],
                        "excludeRoles": [],
                        **users,
                    },
                },
                "grantControls": {
                    "operator": "OR",
                    "builtInControls": controls,
                    "customAuthenticationFactors": [],
                    "termsOfUse": [],
                },
            }
        self.security_defaults = {
            "id": "00000000-0000-0000-0000-000000000005",
            "displayName": "Security Defaults",
            "description": "Security defaults is a set of basic identity security mechanisms recommended by Microsoft.",
            "isEnabled": bool(overrides.get("security_defaults", False)),
        }
        # Tenant-wide settings Graph exposes: a tenant configured as the CIS/SCuBA baselines ask,
        # unless the scenario says otherwise (``tenant.settings.m365: {"authorizationPolicy.x": v}``).
        admin = next((p for p in self.tenant.people if p.entra_roles), None)
        self.m365_settings: dict[str, dict[str, Any]] = {
            "authorizationPolicy": {
                "id": "authorizationPolicy",
                "displayName": "Authorization Policy",
                "description": "Used to manage authorization related settings across the company.",
                "allowInvitesFrom": "adminsAndGuestInviters",
                "allowedToSignUpEmailBasedSubscriptions": False,
                "allowEmailVerifiedUsersToJoinOrganization": False,
                "blockMsolPowerShell": True,
                "guestUserRoleId": "2af84b1e-32c8-42b7-82bc-daa82404023b",
                "defaultUserRolePermissions": {
                    "allowedToCreateApps": False,
                    "allowedToCreateSecurityGroups": False,
                    "allowedToCreateTenants": False,
                    "allowedToReadOtherUsers": True,
                    "permissionGrantPoliciesAssigned": [],
                },
            },
            "adminConsentRequestPolicy": {
                "isEnabled": True,
                "notifyReviewers": True,
                "remindersEnabled": True,
                "requestDurationInDays": 30,
                "version": 0,
                "reviewers": [
                    {"query": f"/users/{admin.entra_id}", "queryType": "MicrosoftGraph", "queryRoot": None}
                ]
                if admin is not None
                else [],
            },
            "sharepoint": {
                "sharingCapability": "externalUserSharingOnly",
                "sharingDomainRestrictionMode": "none",
                "isResharingByExternalUsersEnabled": False,
                "isUnmanagedSyncAppForTenantRestricted": False,
                "isLegacyAuthProtocolsEnabled": False,
                "personalSiteDefaultStorageLimitInMB": 1048576,
                "tenantDefaultTimezone": "UTC",
            },
        }
        for key, value in overrides.items():
            name, _, attribute = str(key).partition(".")
            if name in self.m365_settings and attribute:
                self.m365_settings[name][attribute] = value

    def _base_google_policies(self) -> None:
        overrides = self.tenant.scenario.tenant.settings.get("google", {})
        values: dict[str, dict[str, Any]] = {
            "security.two_step_verification_enforcement": {"enforcedFrom": "2023-01-09T00:00:00Z"},
            "security.two_step_verification_enrollment": {"allowEnrollment": True},
            "security.less_secure_apps": {"allowLessSecureApps": False},
            "security.login_challenges": {"enableEmployeeIdChallenge": False},
            "security.session_controls": {"webSessionDuration": "43200s"},
            "security.password": {
                "allowedStrength": "STRONG",
                "minimumLength": 12,
                "maximumLength": 100,
                "enforceRequirementsAtLogin": True,
                "allowReuse": False,
                "expirationDuration": "0s",
            },
            "drive_and_docs.external_sharing": {
                "externalSharingMode": "ALLOWLISTED_DOMAINS",
                "allowReceivingExternalFiles": True,
                "warnForExternalSharing": True,
                "allowNonGoogleInvites": False,
                "allowPublishingFiles": True,
                "accessCheckerSuggestions": "RECIPIENTS_ONLY",
                "allowedPartiesForDistributingContent": "ELIGIBLE_INTERNAL_USERS",
            },
            "api_controls.unconfigured_third_party_apps": {"accessLevel": "ALLOW_LIMITED_ACCESS"},
            "chat.external_chat_restriction": {
                "allowExternalChat": True,
                "externalChatRestriction": "TRUSTED_DOMAINS",
            },
            "gmail.auto_forwarding": {"enableAutoForwarding": False},
            "security.super_admin_account_recovery": {"enableAccountRecovery": False},
            "security.two_step_verification_enforcement_factor": {"allowedSignInFactorSet": "PASSKEY_ONLY"},
        }
        for key, value in overrides.items():
            setting, _, attribute = key.rpartition(".")
            if setting in values and attribute:
                values[setting][attribute] = value
        customer = self.tenant.customer_id
        for setting, value in values.items():
            name = f"policies/{self.tenant.ids.token('policy', setting, length=20)}"
            self.google_policies[setting] = {
                "name": name,
                "customer": f"customers/{customer}",
                "policyQuery": {
                    "orgUnit": f"orgUnits/{self.tenant.ids.hex('root-ou', length=8)}",
                    "sortOrder": 1,
                },
                "setting": {"type": f"settings/{setting}", "value": value},
                "type": "ADMIN",
            }

    # ---------------------------------------------------------------- lookups

    def user(self, index: int) -> UserState:
        state = self.users.get(index)
        if state is None:
            state = self.users[index] = UserState()
        return state

    def bump(self, person: Person | None = None) -> int:
        with self.lock:
            self.version += 1
            if person is not None:
                self.user(person.index).version = self.version
            return self.version

    def inbox_rules(self, person: Person) -> list[InboxRule]:
        with self.lock:
            rules = [
                r
                for r in base_inbox_rules(self.tenant, person) + self.inbox_rules_added.get(person.index, [])
                if r.id not in self.inbox_rules_removed
            ]
            return copy.deepcopy(rules)

    def permissions(self, provider: str, file_id: str) -> list[Permission]:
        drive_file = self.tenant.file(provider, file_id)
        if drive_file is None:
            return []
        with self.lock:
            perms = list(drive_file.permissions) + self.added_permissions.get(file_id, [])
            return [p for p in perms if (file_id, p.id) not in self.removed_permissions]

    def google_tokens(self, person: Person) -> list[GoogleToken]:
        with self.lock:
            tokens = {t.client_id: t for t in base_google_tokens(self.tenant, person)}
            tokens.update(self.google_tokens_added.get(person.index, {}))
            return [
                copy.copy(t)
                for cid, t in tokens.items()
                if (person.index, cid) not in self.google_tokens_removed
            ]

    # ---------------------------------------------------------------- change log

    def record_change(
        self, provider: str, action: str, target: dict[str, Any], request: dict[str, Any], status: int
    ) -> Change:
        with self.lock:
            change = Change(
                len(self.changes) + 1, int(time.time() * SECOND), provider, action, target, request, status
            )
            self.changes.append(change)
            return change


def base_inbox_rules(tenant: Tenant, person: Person) -> list[InboxRule]:
    """Benign rules people made long ago (plus rarely one made inside the window: see activity.py)."""
    number = tenant.ids.fast("inbox-rules", person.index)
    rules = []
    if number % 3 == 0:
        rules.append(
            InboxRule(
                tenant.ids.token("rule", person.index, 0, length=22) + "AQ==",
                "Move newsletters",
                1,
                True,
                {"subjectContains": ["newsletter", "digest"]},
                {"moveToFolder": "Newsletters", "stopProcessingRules": True},
                tenant.options.start - 200 * DAY,
            )
        )
    if number % 7 == 0:
        rules.append(
            InboxRule(
                tenant.ids.token("rule", person.index, 1, length=22) + "AQ==",
                "Invoices to Finance folder",
                2,
                True,
                {
                    "fromAddresses": [
                        {"emailAddress": {"address": f"billing@{tenant.scenario.tenant.external_domains[0]}"}}
                    ]
                },
                {"moveToFolder": "Invoices", "markAsRead": True},
                tenant.options.start - 90 * DAY,
            )
        )
    return rules


def base_google_tokens(tenant: Tenant, person: Person) -> list[GoogleToken]:
    from simulator.render.context import RenderContext
    from simulator.render.google import client_id

    ctx = RenderContext(tenant)
    tokens = []
    for app in THIRD_PARTY_APPS:
        if (
            tenant.ids.fast("google-token", person.index, len(app.key), ord(app.key[0])) % 1000
        ) < app.popularity * 1000:
            tokens.append(GoogleToken(client_id(ctx, app.key), app.name, list(app.google_scopes)))
    return tokens
