"""Okta's side of the tenant: user status, factors, admin roles, groups, apps, policies, API tokens.

Built from the tenant (everyone has an Okta account; the Entra Global Administrators are Okta super
admins), changed by stories at build time and by the write endpoints at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.tenant import Person, Tenant
from simulator.timestamps import DAY, google_time

BASE_GROUPS = ("Everyone", "Engineering", "Finance", "Sales", "Marketing", "IT", "Okta Administrators")
BASE_APPS = (
    ("salesforce", "Salesforce.com"),
    ("office365", "Microsoft Office 365"),
    ("google", "Google Workspace"),
    ("slack", "Slack"),
    ("zoom", "Zoom"),
)


@dataclass
class OktaUser:
    status: str = "ACTIVE"  # ACTIVE | SUSPENDED | DEPROVISIONED
    factors: list[dict[str, Any]] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    status_changed: int = 0


class OktaDirectory:
    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        ids = tenant.ids
        born = tenant.options.start - 400 * DAY
        self.users: dict[int, OktaUser] = {}
        for person in tenant.people:
            user = OktaUser(status_changed=born)
            for n, method in enumerate(self.default_factors(person)):
                user.factors.append(self.factor(person, method, born + n * DAY))
            if "Global Administrator" in person.entra_roles:
                user.roles.append(self.role(person, "SUPER_ADMIN", born))
            self.users[person.index] = user
        settings = tenant.scenario.tenant.settings.get("okta", {})
        self.policies: dict[str, dict[str, Any]] = {}
        base: dict[str, tuple[str, str, dict[str, Any]]] = {
            "mfa_enroll": (
                "MFA_ENROLL",
                "Default MFA enrollment",
                {"okta_verify": "REQUIRED", "webauthn": "OPTIONAL"},
            ),
            "okta_sign_on": (
                "OKTA_SIGN_ON",
                "Default sign-on policy",
                {
                    "factorPromptMode": "ALWAYS",
                    "require_factor": True,
                    "maxSessionIdleMinutes": 120,
                    "maxSessionLifetimeMinutes": 720,
                },
            ),
            "password": (
                "PASSWORD",
                "Default password policy",
                {"minLength": 12, "maxAgeDays": 0, "historyCount": 4, "lockout_attempts": 10},
            ),
            "access_admin": (
                "ACCESS_POLICY",
                "Okta Admin Console",
                {"require_factor": True, "phishing_resistant": False},
            ),
        }
        for key, (ptype, name, rule) in base.items():
            self.policies[key] = {
                "id": "00p" + ids.token("okta-policy", key, length=17),
                "type": ptype,
                "name": name,
                "status": "ACTIVE",
                "system": True,
                "created": google_time(born),
                "lastUpdated": google_time(born),
                "settings": {**rule, **settings.get(key, {})},
            }
        self.threat_insight: dict[str, Any] = {
            "action": settings.get("threat_insight", "block"),
            "excludeZones": [],
        }
        self.api_tokens: dict[str, dict[str, Any]] = {}
        admin = next((p for p in tenant.people if "Global Administrator" in p.entra_roles), tenant.people[0])
        self.add_api_token("tenantguard collector", admin, born + 10 * DAY, network="ZONE")

    # ------------------------------------------------------------ helpers

    @staticmethod
    def default_factors(person: Person) -> list[str]:
        out = ["password", "push"]
        if "fido2" in person.mfa_methods or person.index % 5 == 0:
            out.append("webauthn")
        if person.index % 11 == 3 and "Global Administrator" not in person.entra_roles:
            out = ["password"]  # not enrolled in MFA yet (administrators always are)
        return out

    def factor(self, person: Person, method: str, created: int) -> dict[str, Any]:
        kinds = {
            "password": ("password", "OKTA"),
            "push": ("push", "OKTA"),
            "webauthn": ("webauthn", "FIDO"),
            "sms": ("sms", "OKTA"),
        }
        factor_type, provider = kinds.get(method, (method, "OKTA"))
        return {
            "id": ("opf" if factor_type == "push" else "fwf" if factor_type == "webauthn" else "mbl")
            + self.tenant.ids.token("okta-factor", person.index, method, created, length=17),
            "factorType": factor_type,
            "provider": provider,
            "vendorName": provider,
            "status": "ACTIVE",
            "created": google_time(created),
            "lastUpdated": google_time(created),
        }

    def role(self, person: Person, role_type: str, created: int) -> dict[str, Any]:
        return {
            "id": "ra" + self.tenant.ids.token("okta-role", person.index, role_type, length=18),
            "label": role_type.replace("_", " ").title().replace("Admin", "Administrator"),
            "type": role_type,
            "status": "ACTIVE",
            "created": google_time(created),
            "lastUpdated": google_time(created),
            "assignmentType": "USER",
        }

    def add_api_token(
        self, name: str, owner: Person, created: int, network: str = "ANYWHERE"
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "id": "00T" + self.tenant.ids.token("okta-api-token", name, length=17),
            "name": name,
            "userId": "00u" + self.tenant.ids.token("okta-user", owner.index, length=17),
            "clientName": "Okta API",
            "created": google_time(created),
            "lastUpdated": google_time(created),
            "expiresAt": google_time(created + 30 * DAY),
            "network": {"connection": network},
            "tokenWindow": "P30D",
        }
        self.api_tokens[str(token["id"])] = token
        return token
