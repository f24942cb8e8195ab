"""Okta actions, through the Okta REST API (an API token of an admin, or a service app granted
okta.users.manage / okta.roles.manage)."""

from __future__ import annotations

from typing import Any

from core.models import Provider
from providers.okta import OktaGateway
from remediation.catalogue import ActionSpec, BlastRadius, Field, Operation, Verification
from remediation.errors import TargetMissing

USER = Field("user", "Okta user id (00u…) or login (e-mail)")


def read_user(gw: OktaGateway, user: str) -> dict[str, Any]:
    """GET /api/v1/users/{id or login} (Okta accepts either)."""
    found = gw.get(f"/api/v1/users/{user}")
    if not found:
        raise TargetMissing(f"no Okta user {user!r}")
    return dict(found)


class SetStatus(Operation):
    """Suspend / unsuspend (lifecycle operations), checked with the user's status."""

    def __init__(self, suspend: bool) -> None:
        self.suspend = suspend

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        return {"id": user["id"], "status": user.get("status")}

    def satisfied(self, before, params):
        return (before["status"] == "SUSPENDED") is self.suspend

    def apply(self, gw, target, params, before):
        gw.write(
            "POST", f"/api/v1/users/{before['id']}/lifecycle/{'suspend' if self.suspend else 'unsuspend'}"
        )

    def verify(self, gw, target, params, before):
        status = read_user(gw, before["id"]).get("status")
        return Verification((status == "SUSPENDED") is self.suspend, {"status": status})


class ClearSessions(Operation):
    """DELETE /api/v1/users/{id}/sessions (and the OAuth tokens it issued); checked in the System
    Log: a user.session.clear event for the user that was not there before."""

    def _clears(self, gw: OktaGateway, user_id: str) -> set[str]:
        events = gw.get("/api/v1/logs", {"filter": 'eventType eq "user.session.clear"', "limit": 1000}) or []
        return {
            str(e.get("uuid"))
            for e in events
            if any(t.get("id") == user_id for t in e.get("target") or [] if isinstance(t, dict))
        }

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        return {"id": user["id"], "earlier_clears": sorted(self._clears(gw, user["id"]))}

    def apply(self, gw, target, params, before):
        gw.write("DELETE", f"/api/v1/users/{before['id']}/sessions", {"oauthTokens": "true"})

    def verify(self, gw, target, params, before):
        new = self._clears(gw, before["id"]) - set(before.get("earlier_clears", []))
        return Verification(bool(new), {"log_events": sorted(new)})


class ResetFactors(Operation):
    """POST /lifecycle/reset_factors: every enrolled factor removed (the attacker's included)."""

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        factors = gw.get(f"/api/v1/users/{user['id']}/factors") or []
        return {"id": user["id"], "factors": [f.get("factorType") for f in factors]}

    def satisfied(self, before, params):
        return not before["factors"]

    def apply(self, gw, target, params, before):
        gw.write("POST", f"/api/v1/users/{before['id']}/lifecycle/reset_factors")

    def verify(self, gw, target, params, before):
        factors = gw.get(f"/api/v1/users/{before['id']}/factors") or []
        return Verification(not factors, {"factors": [f.get("factorType") for f in factors]})


class RemoveAdminRole(Operation):
    """DELETE /api/v1/users/{id}/roles/{assignment}; a role type (SUPER_ADMIN) names every such assignment."""

    def _roles(self, gw: OktaGateway, user_id: str) -> list[dict[str, Any]]:
        return list(gw.get(f"/api/v1/users/{user_id}/roles") or [])

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        wanted = str(target.get("role_id") or "SUPER_ADMIN")
        roles = [r for r in self._roles(gw, user["id"]) if wanted in (r.get("id"), r.get("type"))]
        if not roles:
            raise TargetMissing(f"Okta user {target['user']!r} holds no admin role {wanted!r}")
        return {"id": user["id"], "roles": [{"id": r["id"], "type": r.get("type")} for r in roles]}

    def apply(self, gw, target, params, before):
        for role in before["roles"]:
            gw.write("DELETE", f"/api/v1/users/{before['id']}/roles/{role['id']}")

    def verify(self, gw, target, params, before):
        removed = {r["id"] for r in before["roles"]}
        left = [r.get("id") for r in self._roles(gw, before["id"]) if r.get("id") in removed]
        return Verification(not left, {"still_assigned": left})


class RevokeApiToken(Operation):
    """DELETE /api/v1/api-tokens/{id}; checked with the token list (GET /api/v1/api-tokens)."""

    def _ids(self, gw: OktaGateway) -> set[str]:
        return {str(t.get("id")) for t in gw.get("/api/v1/api-tokens") or [] if isinstance(t, dict)}

    def inspect(self, gw, target, params):
        return {"id": target["token_id"], "present": target["token_id"] in self._ids(gw)}

    def satisfied(self, before, params):
        return not before["present"]

    def apply(self, gw, target, params, before):
        gw.write("DELETE", f"/api/v1/api-tokens/{before['id']}")

    def verify(self, gw, target, params, before):
        present = before["id"] in self._ids(gw)
        return Verification(not present, {"still_listed": present})


_P = Provider.OKTA

ACTIONS = (
    ActionSpec(
        name="okta.suspend_user",
        provider=_P,
        title="Suspend the Okta user",
        description="Suspend the account (POST /lifecycle/suspend): no sign-in until unsuspended.",
        target=(USER,),
        permission="okta.users.manage",
        reversible=True,
        inverse="okta.unsuspend_user",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /api/v1/users/{id}: status is SUSPENDED",
        operation=SetStatus(True),
    ),
    ActionSpec(
        name="okta.unsuspend_user",
        provider=_P,
        title="Unsuspend the Okta user",
        description="Give the account back (POST /lifecycle/unsuspend).",
        target=(USER,),
        permission="okta.users.manage",
        reversible=True,
        inverse="okta.suspend_user",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /api/v1/users/{id}: status is ACTIVE",
        operation=SetStatus(False),
        rollback_only=True,
    ),
    ActionSpec(
        name="okta.clear_sessions",
        provider=_P,
        title="Clear the user's Okta sessions",
        description="End every Okta session and revoke the OAuth tokens Okta issued (DELETE /sessions?oauthTokens=true).",
        target=(USER,),
        permission="okta.users.manage",
        reversible=True,
        inverse=None,  # nothing to undo: the user signs in again
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="System Log: a new user.session.clear event for the user",
        operation=ClearSessions(),
    ),
    ActionSpec(
        name="okta.reset_factors",
        provider=_P,
        title="Reset the user's MFA factors",
        description="Remove every enrolled factor (POST /lifecycle/reset_factors); the owner enrols again.",
        target=(USER,),
        permission="okta.users.manage",
        reversible=False,  # the factors are gone; the user re-enrols
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="GET /api/v1/users/{id}/factors is empty",
        operation=ResetFactors(),
    ),
    ActionSpec(
        name="okta.remove_admin_role",
        provider=_P,
        title="Remove an Okta admin role",
        description="Unassign an admin role from the user (DELETE /roles/{assignment}).",
        target=(
            USER,
            Field("role_id", "role assignment id, or a role type such as SUPER_ADMIN", required=False),
        ),
        permission="okta.roles.manage",
        reversible=False,  # re-granting is an admin decision, not a rollback
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user", "role_id"),
        verification="GET /api/v1/users/{id}/roles no longer lists the assignment",
        operation=RemoveAdminRole(),
    ),
    ActionSpec(
        name="okta.revoke_api_token",
        provider=_P,
        title="Revoke an Okta API token",
        description="Revoke the token (DELETE /api/v1/api-tokens/{id}): whoever holds it loses the admin rights it carries.",
        target=(Field("token_id", "API token id (00T…)"),),
        permission="okta.apiTokens.manage",
        reversible=False,  # a revoked token cannot be restored; its owner creates a new one
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("token_id",),
        verification="GET /api/v1/api-tokens no longer lists the token",
        operation=RevokeApiToken(),
    ),
)
