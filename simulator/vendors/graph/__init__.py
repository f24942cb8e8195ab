"""Microsoft Graph v1.0 (and beta): audit logs, users, policies, apps, risk, drives, mail, Teams.

Paths live under /graph/v1.0 and /graph/beta. Lists page with `$top` and an absolute
`@odata.nextLink` carrying `$skiptoken`; delta queries (`users/delta`,
`groups/delta`, `servicePrincipals/delta`) end with `@odata.deltaLink` (see delta.py).
`POST $batch` answers up to 20 of these requests in one (batch.py).
One mixin per area (audit_logs, directory, protection, content) on a shared base.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simulator.http import Request, Response

if TYPE_CHECKING:
    from simulator.server import Simulator

from simulator.vendors.graph.audit_logs import AuditLogs
from simulator.vendors.graph.base import EVENT_STREAMS, USER, G
from simulator.vendors.graph.batch import batch_handler
from simulator.vendors.graph.content import Content
from simulator.vendors.graph.directory import Directory
from simulator.vendors.graph.protection import Protection


class GraphApi(AuditLogs, Directory, Protection, Content):
    """All Graph handlers."""


def register(sim: Simulator) -> None:
    api = GraphApi(sim)
    add = sim.router.add
    for name in EVENT_STREAMS:
        path = EVENT_STREAMS[name][2]
        add("GET", f"{G}/{path}", api.events_handler(name), "m365", name, "graph")
    routes: list[tuple[str, str, Callable[[Request], Response], str]] = [
        ("GET", "/users", api.users, "users"),
        ("GET", "/users/delta", api.users_delta, "users"),
        ("GET", f"/users/{USER}", api.user, "users"),
        ("PATCH", f"/users/{USER}", api.patch_user, "users"),
        ("POST", f"/users/{USER}/revokeSignInSessions", api.revoke_sessions, "users"),
        ("GET", f"/users/{USER}/authentication/methods", api.auth_methods, "auth_methods"),
        (
            "DELETE",
            f"/users/{USER}/authentication/(?P<kind>\\w+Methods)/(?P<method>[^/]+)",
            api.delete_auth_method,
            "auth_methods",
        ),
        ("GET", f"/users/{USER}/mailFolders/(?P<folder>[^/]+)/messageRules", api.inbox_rules, "inbox_rules"),
        (
            "POST",
            f"/users/{USER}/mailFolders/(?P<folder>[^/]+)/messageRules",
            api.create_inbox_rule,
            "inbox_rules",
        ),
        (
            "DELETE",
            f"/users/{USER}/mailFolders/(?P<folder>[^/]+)/messageRules/(?P<rule>[^/]+)",
            api.delete_inbox_rule,
            "inbox_rules",
        ),
        ("GET", f"/users/{USER}/messages", api.messages, "mail"),
        ("GET", f"/users/{USER}/chats/getAllMessages(?:\\(\\))?", api.chat_messages, "teams_messages"),
        ("GET", f"/users/{USER}/drive", api.user_drive, "drive"),
        ("GET", f"/users/{USER}/drive/root/children", api.user_drive_children, "drive"),
        ("GET", f"/users/{USER}/drive/items/(?P<item>[^/]+)/permissions", api.user_item_permissions, "drive"),
        ("GET", "/drives/(?P<drive>[^/]+)/root/children", api.drive_children, "drive"),
        ("GET", "/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)", api.drive_item, "drive"),
        ("GET", "/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)/permissions", api.item_permissions, "drive"),
        (
            "DELETE",
            "/drives/(?P<drive>[^/]+)/items/(?P<item>[^/]+)/permissions/(?P<permission>[^/]+)",
            api.delete_permission,
            "drive",
        ),
        ("GET", "/groups", api.groups, "groups"),
        ("GET", "/groups/delta", api.groups_delta, "groups"),
        ("GET", "/groups/(?P<group>[^/]+)/members", api.group_members, "groups"),
        ("GET", "/organization", api.organization, "organization"),
        (
            "GET",
            "/reports/authenticationMethods/userRegistrationDetails",
            api.registration_details,
            "registration",
        ),
        ("GET", "/identity/conditionalAccess/policies", api.ca_policies, "ca_policies"),
        ("GET", "/identity/conditionalAccess/policies/(?P<policy>[^/]+)", api.ca_policy, "ca_policies"),
        (
            "PATCH",
            "/identity/conditionalAccess/policies/(?P<policy>[^/]+)",
            api.patch_ca_policy,
            "ca_policies",
        ),
        (
            "GET",
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            api.security_defaults,
            "security_defaults",
        ),
        (
            "PATCH",
            "/policies/identitySecurityDefaultsEnforcementPolicy",
            api.patch_security_defaults,
            "security_defaults",
        ),
        ("GET", "/policies/authorizationPolicy", api.tenant_setting("authorizationPolicy"), "settings"),
        (
            "GET",
            "/policies/adminConsentRequestPolicy",
            api.tenant_setting("adminConsentRequestPolicy"),
            "settings",
        ),
        ("GET", "/admin/sharepoint/settings", api.tenant_setting("sharepoint"), "settings"),
        ("GET", "/oauth2PermissionGrants", api.grants, "oauth_grants"),
        ("POST", "/oauth2PermissionGrants", api.create_grant, "oauth_grants"),
        ("DELETE", "/oauth2PermissionGrants/(?P<grant>[^/]+)", api.delete_grant, "oauth_grants"),
        ("GET", "/servicePrincipals", api.service_principals, "service_principals"),
        ("GET", "/servicePrincipals/delta", api.service_principals_delta, "service_principals"),
        ("GET", "/servicePrincipals/(?P<sp>[^/]+)", api.service_principal, "service_principals"),
        ("PATCH", "/servicePrincipals/(?P<sp>[^/]+)", api.patch_service_principal, "service_principals"),
        ("GET", "/identityProtection/riskyUsers", api.risky_users, "risky_users"),
        ("GET", "/identityProtection/riskyUsers/(?P<risky>[0-9a-f-]{36})", api.risky_user, "risky_users"),
        ("POST", "/identityProtection/riskyUsers/confirmCompromised", api.confirm_compromised, "risky_users"),
        ("POST", "/identityProtection/riskyUsers/dismiss", api.dismiss_risk, "risky_users"),
        ("GET", "/roleManagement/directory/roleAssignments", api.role_assignments, "role_assignments"),
        (
            "DELETE",
            "/roleManagement/directory/roleAssignments/(?P<assignment>[^/]+)",
            api.delete_role_assignment,
            "role_assignments",
        ),
        ("GET", "/roleManagement/directory/roleDefinitions", api.role_definitions, "role_assignments"),
        ("GET", "/teams", api.teams, "teams_messages"),
        ("GET", "/teams/(?P<team>[^/]+)/channels", api.team_channels, "teams_messages"),
        (
            "GET",
            "/teams/(?P<team>[^/]+)/channels/(?P<channel>[^/]+)/messages",
            api.channel_messages,
            "teams_messages",
        ),
        (
            "GET",
            "/teams/(?P<team>[^/]+)/channels/(?P<channel>[^/]+)/messages/(?P<message>[^/]+)/replies",
            api.channel_replies,
            "teams_messages",
        ),
    ]
    for method, path, handler, resource in routes:
        add(method, G + path, handler, "m365", resource, "graph")
    add("POST", G + r"/\$batch", batch_handler(sim), "m365", "batch", "graph")
