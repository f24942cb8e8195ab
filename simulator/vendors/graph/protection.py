"""Graph protection: conditional access, security defaults, OAuth grants, service principals, risky users."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response
from simulator.render.m365 import target
from simulator.server import ApiError
from simulator.tenant import Person
from simulator.timestamps import graph_time

if TYPE_CHECKING:
    pass
from simulator.vendors.graph.base import GraphBase, merge


class Protection(GraphBase):
    def policy_object(self, policy: dict[str, Any]) -> dict[str, Any]:
        body = dict(policy)
        body["createdDateTime"] = graph_time(policy["createdDateTime"])
        body["modifiedDateTime"] = graph_time(policy["modifiedDateTime"])
        return body

    def ca_policies(self, request: Request) -> Response:
        with self.state.lock:
            items = [self.policy_object(p) for p in self.state.ca_policies.values()]
        return self.page_of(request, items, 100, "identity/conditionalAccess/policies")

    def _policy(self, request: Request) -> dict[str, Any]:
        policy = self.state.ca_policies.get(request.params["policy"])
        if policy is None:
            raise ApiError(404, "ResourceNotFound", f"Policy '{request.params['policy']}' was not found.")
        return policy

    def ca_policy(self, request: Request) -> Response:
        with self.state.lock:
            return self.entity(
                request, "identity/conditionalAccess/policies", self.policy_object(self._policy(request))
            )

    def patch_ca_policy(self, request: Request) -> Response:
        body = request.json()
        with self.state.lock:
            policy = self._policy(request)
            old = {k: policy.get(k) for k in body}
            for key, value in body.items():
                if isinstance(value, dict) and isinstance(policy.get(key), dict):
                    policy[key] = merge(policy[key], value)
                else:
                    policy[key] = value
            policy["modifiedDateTime"] = self.sim.now()
        self.app_audit(
            "Update conditional access policy",
            "Policy",
            "Conditional Access",
            "Update",
            [
                target(
                    "Policy",
                    policy["id"],
                    policy["displayName"],
                    props=[("ConditionalAccessPolicy", old, body)],
                )
            ],
        )
        self.change(
            request,
            "patch_ca_policy",
            {"policy_id": policy["id"], "name": policy["displayName"], "changes": body},
        )
        return Response.empty(204)

    def tenant_setting(self, name: str) -> Callable[[Request], Response]:
        """GET of one tenant-wide settings object (authorizationPolicy, adminConsentRequestPolicy,
        SharePoint's admin settings)."""
        entity = {
            "authorizationPolicy": "policies/authorizationPolicy/$entity",
            "adminConsentRequestPolicy": "policies/adminConsentRequestPolicy/$entity",
            "sharepoint": "admin/sharepoint/settings/$entity",
        }[name]

        def handler(request: Request) -> Response:
            with self.state.lock:
                body = copy.deepcopy(self.state.m365_settings[name])
            return Response.json({"@odata.context": self.context(request, entity), **body})

        return handler

    def security_defaults(self, request: Request) -> Response:
        with self.state.lock:
            body = dict(self.state.security_defaults)
        return Response.json(
            {
                "@odata.context": self.context(
                    request, "policies/identitySecurityDefaultsEnforcementPolicy/$entity"
                ),
                **body,
            }
        )

    def patch_security_defaults(self, request: Request) -> Response:
        body = request.json()
        with self.state.lock:
            old = self.state.security_defaults.get("isEnabled")
            if "isEnabled" in body:
                self.state.security_defaults["isEnabled"] = bool(body["isEnabled"])
        self.app_audit(
            "Update policy",
            "Policy",
            "Core Directory",
            "Update",
            [
                target(
                    "Policy",
                    self.state.security_defaults["id"],
                    "Security Defaults",
                    props=[("IsEnabled", old, body.get("isEnabled"))],
                )
            ],
        )
        self.change(request, "patch_security_defaults", {"changes": body})
        return Response.empty(204)

    def grants(self, request: Request) -> Response:
        with self.state.lock:
            items = [
                {
                    "id": g.id,
                    "clientId": g.client_id,
                    "consentType": g.consent_type,
                    "principalId": g.principal_id,
                    "resourceId": g.resource_id,
                    "scope": g.scope,
                }
                for g in self.state.grants.values()
            ]
        return self.page_of(request, items, 100, "oauth2PermissionGrants")

    def create_grant(self, request: Request) -> Response:
        """POST oauth2PermissionGrants: delegated consent (remediation rollback restores one this way)."""
        body = request.json()
        missing = [k for k in ("clientId", "consentType", "resourceId", "scope") if not body.get(k)]
        if missing or body["consentType"] not in ("AllPrincipals", "Principal"):
            raise ApiError(
                400,
                "Request_BadRequest",
                f"Invalid grant: missing or wrong {', '.join(missing) or 'consentType'}.",
            )
        with self.state.lock:
            grant_id = self.tenant.ids.token(
                "grant-created", len(self.state.grants), body["clientId"], length=43
            )
            grant = self.state._add_grant(
                body["clientId"], body["consentType"], body.get("principalId"), body["scope"], grant_id
            )
            grant.resource_id = body["resourceId"]
        self.app_audit(
            "Add delegated permission grant",
            "ApplicationManagement",
            "Core Directory",
            "Assign",
            [
                target(
                    "ServicePrincipal",
                    grant.client_id,
                    None,
                    props=[("DelegatedPermissionGrant.Scope", None, grant.scope)],
                )
            ],
        )
        person = next((p for p in self.tenant.people if p.entra_id == grant.principal_id), None)
        self.change(
            request,
            "create_oauth_grant",
            {
                "grant_id": grant.id,
                "client_id": grant.client_id,
                "user": person.email if person else None,
                "scope": grant.scope,
            },
            201,
            person,
        )
        return self.entity(
            request,
            "oauth2PermissionGrants",
            {
                "id": grant.id,
                "clientId": grant.client_id,
                "consentType": grant.consent_type,
                "principalId": grant.principal_id,
                "resourceId": grant.resource_id,
                "scope": grant.scope,
            },
            201,
        )

    def delete_grant(self, request: Request) -> Response:
        grant_id = request.params["grant"]
        with self.state.lock:
            grant = self.state.grants.pop(grant_id, None)
        if grant is None:
            raise ApiError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{grant_id}' does not exist or one of its queried reference-property objects are not present.",
            )
        self.app_audit(
            "Remove delegated permission grant",
            "ApplicationManagement",
            "Core Directory",
            "Unassign",
            [
                target(
                    "ServicePrincipal",
                    grant.client_id,
                    None,
                    props=[("DelegatedPermissionGrant.Scope", grant.scope, None)],
                )
            ],
        )
        person = next((p for p in self.tenant.people if p.entra_id == grant.principal_id), None)
        self.change(
            request,
            "revoke_oauth_grant",
            {
                "grant_id": grant_id,
                "client_id": grant.client_id,
                "user": person.email if person else None,
                "scope": grant.scope,
            },
            person=person,
        )
        return Response.empty(204)

    def sp_object(self, sp: Any) -> dict[str, Any]:
        return {
            "id": sp.id,
            "appId": sp.app_id,
            "displayName": sp.display_name,
            "appDisplayName": sp.display_name,
            "appOwnerOrganizationId": sp.owner_tenant,
            "servicePrincipalType": "Application",
            "accountEnabled": sp.enabled,
            "publisherName": sp.publisher or None,
            "verifiedPublisher": {
                "displayName": sp.publisher,
                "verifiedPublisherId": "1" + sp.id[:7],
                "addedDateTime": graph_time(sp.created),
            }
            if sp.verified
            else {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
            "replyUrls": list(sp.reply_urls),
            "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
            "createdDateTime": graph_time(sp.created),
        }

    def service_principals(self, request: Request) -> Response:
        with self.state.lock:
            items = [self.sp_object(sp) for sp in self.state.service_principals.values()]
        return self.page_of(request, items, 100, "servicePrincipals")

    def service_principals_delta(self, request: Request) -> Response:
        fields = self.select(request)
        with self.state.lock:
            items = [
                self.project(self.sp_object(sp), fields) for sp in self.state.service_principals.values()
            ]
        return self.delta_listing(request, "servicePrincipals", items)

    def _sp(self, request: Request) -> Any:
        sp = self.state.service_principals.get(request.params["sp"]) or next(
            (s for s in self.state.service_principals.values() if s.app_id == request.params["sp"]), None
        )
        if sp is None:
            raise ApiError(
                404, "Request_ResourceNotFound", f"Resource '{request.params['sp']}' does not exist."
            )
        return sp

    def service_principal(self, request: Request) -> Response:
        return self.entity(request, "servicePrincipals", self.sp_object(self._sp(request)))

    def patch_service_principal(self, request: Request) -> Response:
        sp = self._sp(request)
        body = request.json()
        with self.state.lock:
            if "accountEnabled" in body:
                sp.enabled = bool(body["accountEnabled"])
        self.app_audit(
            "Update service principal",
            "ApplicationManagement",
            "Core Directory",
            "Update",
            [
                target(
                    "ServicePrincipal", sp.id, sp.display_name, props=[("AccountEnabled", None, [sp.enabled])]
                )
            ],
        )
        self.change(
            request,
            "disable_service_principal"
            if body.get("accountEnabled") is False
            else "update_service_principal",
            {"service_principal_id": sp.id, "name": sp.display_name, "changes": body},
        )
        return Response.empty(204)

    def risky_object(self, person: Person) -> dict[str, Any]:
        state = self.state.user(person.index)
        return {
            "id": person.entra_id,
            "isDeleted": False,
            "isProcessing": False,
            "riskLastUpdatedDateTime": graph_time(state.risk_updated or self.tenant.options.start),
            "riskLevel": state.risk_level,
            "riskState": state.risk_state,
            "riskDetail": state.risk_detail,
            "userDisplayName": person.name,
            "userPrincipalName": person.email,
        }

    def risky_users(self, request: Request) -> Response:
        with self.state.lock:
            people = [
                self.tenant.people[i] for i, s in sorted(self.state.users.items()) if s.risk_state != "none"
            ]
        return self.page_of(
            request, [self.risky_object(p) for p in people], 20, "identityProtection/riskyUsers"
        )

    def risky_user(self, request: Request) -> Response:
        person = self.person(request.params["risky"])
        if self.state.user(person.index).risk_state == "none":
            raise ApiError(404, "NotFound", "The risky user was not found.")
        return self.entity(request, "identityProtection/riskyUsers", self.risky_object(person))

    def _risk_update(
        self, request: Request, level: str, risk_state: str, detail: str, action: str
    ) -> Response:
        user_ids = request.json().get("userIds")
        if not isinstance(user_ids, list) or not user_ids:
            raise ApiError(400, "BadRequest", "userIds must be a non-empty list of user ids.")
        people = [self.person(str(u)) for u in user_ids]
        now = self.sim.now()
        with self.state.lock:
            for person in people:
                state = self.state.user(person.index)
                state.risk_level, state.risk_state, state.risk_detail, state.risk_updated = (
                    level,
                    risk_state,
                    detail,
                    now,
                )
        for person in people:
            self.change(request, action, {"user": person.email, "id": person.entra_id}, person=person)
        return Response.empty(204)

    def confirm_compromised(self, request: Request) -> Response:
        return self._risk_update(
            request, "high", "confirmedCompromised", "adminConfirmedUserCompromised", "confirm_compromised"
        )

    def dismiss_risk(self, request: Request) -> Response:
        return self._risk_update(request, "none", "dismissed", "adminDismissedAllRiskForUser", "dismiss_risk")
