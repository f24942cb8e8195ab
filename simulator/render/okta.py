"""Okta System Log event shapes (`GET /api/v1/logs`): LogEvent objects as Okta documents them."""

from __future__ import annotations

from typing import Any

from simulator.activity import Record
from simulator.render.context import RenderContext
from simulator.tenant import Person
from simulator.timestamps import google_time

BROWSER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
MOBILE_AGENT = "OktaVerify/9.20.0 (iPhone; iOS 17.4.1)"
# What each event type says (displayMessage), and its severity.
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "user.session.start": ("User login to Okta", "INFO"),
    "user.session.end": ("User logout from Okta", "INFO"),
    "user.authentication.auth_via_mfa": ("Authentication of user via MFA", "INFO"),
    "user.authentication.sso": ("User single sign on to app", "INFO"),
    "system.push.send_factor_verify_push": ("Send push verify notification", "INFO"),
    "user.mfa.okta_verify.deny_push": ("User rejected Okta push verify", "WARN"),
    "user.mfa.factor.activate": ("Activate factor or authenticator", "INFO"),
    "user.mfa.factor.deactivate": ("Reset factor or authenticator", "INFO"),
    "user.mfa.factor.reset_all": ("Reset all factors for user", "INFO"),
    "user.account.privilege.grant": ("Grant user privilege", "INFO"),
    "user.account.privilege.revoke": ("Revoke user privilege", "INFO"),
    "user.lifecycle.suspend": ("Suspend Okta user", "INFO"),
    "user.lifecycle.unsuspend": ("Unsuspend Okta user", "INFO"),
    "user.session.clear": ("Clear user session", "INFO"),
    "user.account.update_password": ("User update password for Okta", "INFO"),
    "policy.lifecycle.update": ("Update policy", "INFO"),
    "policy.rule.update": ("Update policy rule", "INFO"),
    "system.api_token.create": ("Create API token", "INFO"),
    "application.user_membership.add": ("Add user to application membership", "INFO"),
    "group.user_membership.add": ("Add user to group membership", "INFO"),
    "security.threat.detected": ("Request from suspicious actor", "WARN"),
    "user.session.impersonation.grant": ("Grant Okta Support access to the org", "INFO"),
}


def okta_user_id(ctx: RenderContext | Any, person: Person) -> str:
    ids = ctx.ids if isinstance(ctx, RenderContext) else ctx
    return "00u" + ids.token("okta-user", person.index, length=17)


def actor_of(ctx: RenderContext, person: Person | None) -> dict[str, Any]:
    if person is None:
        return {
            "id": "0oa-system",
            "type": "SystemPrincipal",
            "alternateId": "system@okta.com",
            "displayName": "Okta System",
            "detailEntry": None,
        }
    return {
        "id": okta_user_id(ctx, person),
        "type": "User",
        "alternateId": person.email,
        "displayName": person.name,
        "detailEntry": None,
    }


def user_target(ctx: RenderContext, person: Person) -> dict[str, Any]:
    return {**actor_of(ctx, person), "type": "User"}


def log_extra(
    event_type: str,
    actor: Person | None,
    *,
    targets: list[dict[str, Any]] | None = None,
    result: str = "SUCCESS",
    reason: str | None = None,
    ip: str | None = None,
    city: Any = None,
    asn: str | None = None,
    ua: str | None = None,
    session_id: str | None = None,
    debug: dict[str, Any] | None = None,
    proxy: bool = False,
) -> dict[str, Any]:
    """The extra of a generic System Log record (stories and write-time events)."""
    return {
        "eventType": event_type,
        "actor": actor,
        "targets": targets or [],
        "result": result,
        "reason": reason,
        "ip": ip,
        "city": city,
        "asn": asn,
        "ua": ua,
        "session_id": session_id,
        "debug": debug or {},
        "proxy": proxy,
    }


def render_logs(ctx: RenderContext, record: Record) -> dict[str, Any]:
    ts, uid, kind, person, session, extra = record
    if kind == "entry":
        return _event(ctx, uid, ts, extra)
    agent = MOBILE_AGENT if session.network == "mobile" else BROWSER_AGENT
    session_id = "102" + ctx.ids.fast_token(
        "okta-session", person.index, session.local_day, session.number, length=22
    )
    result = "FAILURE" if kind == "user.session.start:failure" else "SUCCESS"
    event_type = kind.split(":")[0]
    targets: list[dict[str, Any]] = []
    if event_type == "user.authentication.sso":
        targets = [
            {
                "id": "0oa" + ctx.ids.fast_token("okta-app", int(extra or 0), length=17),
                "type": "AppInstance",
                "alternateId": "Salesforce",
                "displayName": "Salesforce.com",
                "detailEntry": None,
            }
        ]
    spec = log_extra(
        event_type,
        person,
        targets=targets,
        result=result,
        reason="INVALID_CREDENTIALS" if result == "FAILURE" else None,
        ip=session.ip,
        city=session.city,
        asn=session.block.asn,
        ua=agent,
        session_id=session_id,
    )
    return _event(ctx, uid, ts, spec)


def _event(ctx: RenderContext, uid: int, ts: int, spec: dict[str, Any]) -> dict[str, Any]:
    event_type = spec["eventType"]
    message, severity = EVENT_TYPES.get(event_type, (event_type, "INFO"))
    city = spec.get("city")
    asn = spec.get("asn") or ""
    number = int(ctx.ids.number("asn", asn) % 60000) + 1000 if asn else None
    client: dict[str, Any] = {
        "userAgent": {"rawUserAgent": spec.get("ua"), "os": "Mac OS X", "browser": "CHROME"}
        if spec.get("ua")
        else None,
        "zone": "null",
        "device": "Computer",
        "id": None,
        "ipAddress": spec.get("ip"),
        "geographicalContext": {
            "city": city.name,
            "state": city.state,
            "country": city.country,
            "postalCode": None,
            "geolocation": {"lat": city.lat, "lon": city.lon},
        }
        if city is not None
        else None,
    }
    return {
        "uuid": ctx.guid("okta:logs", uid),
        "published": google_time(ts),
        "eventType": event_type,
        "version": "0",
        "severity": severity,
        "legacyEventType": None,
        "displayMessage": message,
        "actor": actor_of(ctx, spec.get("actor")),
        "client": client,
        "device": None,
        "authenticationContext": {
            "authenticationProvider": None,
            "credentialProvider": None,
            "credentialType": None,
            "issuer": None,
            "interface": None,
            "authenticationStep": 0,
            "externalSessionId": spec.get("session_id"),
        },
        "outcome": {"result": spec.get("result", "SUCCESS"), "reason": spec.get("reason")},
        "securityContext": {
            "asNumber": number,
            "asOrg": asn.lower() or None,
            "isp": asn.lower() or None,
            "domain": None,
            "isProxy": bool(spec.get("proxy")),
        },
        "debugContext": {
            "debugData": {
                "requestId": ctx.ids.fast_token("okta-request", uid, length=27),
                **spec.get("debug", {}),
            }
        },
        "transaction": {"type": "WEB", "id": ctx.ids.fast_token("okta-tx", uid, length=27), "detail": {}},
        "target": spec.get("targets") or [],
    }


OKTA_RENDERERS = {"okta:logs": render_logs}
