"""Story actions in Okta: MFA push fatigue, session hijack, admin role grants, weakened policies,
API tokens. Each writes System Log events and, where Okta would change, the Okta directory."""

from __future__ import annotations

from typing import Any

from simulator.activity import Session
from simulator.render.okta import log_extra, okta_user_id, user_target
from simulator.scenario import StepSpec
from simulator.stories.engine import StoryBuilder, action
from simulator.tenant import Person
from simulator.timestamps import SECOND, google_time


def _session_id(b: StoryBuilder, person: Person, where: str) -> str:
    return "102" + b.ids.token("okta-story-session", person.index, where, length=22)


def _log(
    b: StoryBuilder,
    ts: int,
    actor: Person | None,
    session: Session,
    event_type: str,
    *,
    where: str,
    subject: Person | None = None,
    targets: list[dict[str, Any]] | None = None,
    result: str = "SUCCESS",
    reason: str | None = None,
    debug: dict[str, Any] | None = None,
) -> None:
    person = subject or actor
    b.emit(
        "okta:logs",
        ts,
        "entry",
        person,
        session,
        log_extra(
            event_type,
            actor,
            targets=targets,
            result=result,
            reason=reason,
            ip=session.ip,
            city=session.city,
            asn=session.block.asn,
            ua=session.device.model.user_agent,
            session_id=_session_id(b, actor or person, where) if person is not None else None,
            debug=debug,
            proxy=session.block.kind in ("hosting", "tor"),
        ),
    )


@action("okta.mfa_push_fatigue")
def okta_mfa_push_fatigue(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """The attacker has the password: push after push until the tired user accepts one."""
    person = b.person(p)
    where = b.where(p)
    pushes = int(p.get("pushes", 12))
    accept = bool(p.get("accepted", True))
    session = b.session(person, at, where, p)
    _log(
        b,
        at,
        person,
        session,
        "user.session.start",
        where=where,
        result="SUCCESS",
        debug={"behaviors": "{New Geo-Location=POSITIVE, New Device=POSITIVE, New IP=POSITIVE}"},
    )
    for i in range(pushes):
        ts = at + (i + 1) * 25 * SECOND
        _log(b, ts, person, session, "system.push.send_factor_verify_push", where=where)
        last = i == pushes - 1
        if not (last and accept):
            _log(
                b,
                ts + 12 * SECOND,
                person,
                session,
                "user.mfa.okta_verify.deny_push",
                where=where,
                result="FAILURE",
                reason="User rejected Okta push verify",
            )
    if accept:
        done = at + (pushes + 1) * 25 * SECOND
        _log(
            b,
            done,
            person,
            session,
            "user.authentication.auth_via_mfa",
            where=where,
            debug={"factor": "OKTA_VERIFY_PUSH"},
        )
    b.remember("okta_user", user=person.email, user_id=okta_user_id(b.ctx, person))


@action("okta.session_hijack")
def okta_session_hijack(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A stolen session cookie replayed from another ASN: the session id of the victim's own sign-in."""
    person = b.person(p)
    where = b.where(p)
    session = b.session(person, at, where, p, n=int(p.get("ip", 0)))
    own = "102" + b.ids.token("okta-victim-session", person.index, length=22)
    for i, app in enumerate(p.get("apps", ["Salesforce.com", "Microsoft Office 365"])):
        b.emit(
            "okta:logs",
            at + i * 40 * SECOND,
            "entry",
            person,
            session,
            log_extra(
                "user.authentication.sso",
                person,
                targets=[
                    {
                        "id": "0oa" + b.ids.token("okta-app", str(app), length=17),
                        "type": "AppInstance",
                        "alternateId": str(app),
                        "displayName": str(app),
                        "detailEntry": None,
                    }
                ],
                ip=session.ip,
                city=session.city,
                asn=session.block.asn,
                ua=session.device.model.user_agent,
                session_id=own,
                debug={
                    "behaviors": "{New Geo-Location=POSITIVE, New Device=POSITIVE, New IP=POSITIVE}",
                    "threatSuspected": "true",
                },
                proxy=True,
            ),
        )
    b.emit(
        "okta:logs",
        at + 90 * SECOND,
        "entry",
        person,
        session,
        log_extra(
            "security.threat.detected",
            None,
            targets=[user_target(b.ctx, person)],
            result="DENY" if p.get("blocked") else "ALLOW",
            reason="Session hijacking: session used from a different ASN",
            ip=session.ip,
            city=session.city,
            asn=session.block.asn,
            session_id=own,
            proxy=True,
        ),
    )
    b.remember("okta_user", user=person.email, user_id=okta_user_id(b.ctx, person))


@action("okta.admin_role_granted")
def okta_admin_role_granted(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    actor = b.person(p)
    grantee = b.person(p, "to") if p.get("to") else actor
    role = str(p.get("role", "SUPER_ADMIN"))
    where = b.where(p)
    session = b.session(actor, at, where, p)
    record = b.state.okta.role(grantee, role, at)
    b.state.okta.users[grantee.index].roles.append(record)
    _log(
        b,
        at,
        actor,
        session,
        "user.account.privilege.grant",
        where=where,
        subject=grantee,
        targets=[user_target(b.ctx, grantee)],
        debug={"privilegeGranted": record["label"], "roleType": role},
    )
    b.remember(
        "okta_role", user=grantee.email, user_id=okta_user_id(b.ctx, grantee), role_id=record["id"], role=role
    )


@action("okta.policy_weakened")
def okta_policy_weakened(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    actor = b.person(p)
    key = str(p.get("policy", "okta_sign_on"))
    changes = dict(p.get("settings") or {"require_factor": False, "maxSessionLifetimeMinutes": 0})
    policy = b.state.okta.policies[key]
    policy["settings"] = {**policy["settings"], **changes}
    policy["lastUpdated"] = google_time(at)
    where = b.where(p)
    session = b.session(actor, at, where, p)
    _log(
        b,
        at,
        actor,
        session,
        "policy.lifecycle.update",
        where=where,
        targets=[
            {
                "id": policy["id"],
                "type": "PolicyEntity",
                "alternateId": "unknown",
                "displayName": policy["name"],
                "detailEntry": {"policyType": policy["type"]},
            }
        ],
        debug={"changedSettings": ",".join(sorted(changes))},
    )


@action("okta.api_token_created")
def okta_api_token_created(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    actor = b.person(p)
    name = str(p.get("name", "backup-sync"))
    token = b.state.okta.add_api_token(name, actor, at)
    where = b.where(p)
    session = b.session(actor, at, where, p)
    _log(
        b,
        at,
        actor,
        session,
        "system.api_token.create",
        where=where,
        targets=[
            {
                "id": token["id"],
                "type": "Token",
                "alternateId": "unknown",
                "displayName": name,
                "detailEntry": None,
            }
        ],
    )
    b.remember("okta_api_token", id=token["id"], name=name, user=actor.email)


@action("okta.support_impersonation")
def okta_support_impersonation(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An admin's session grants Okta Support access to the org (user.session.impersonation.grant):
    a full admin session for someone outside the company, for the next eight hours."""
    actor = b.person(p)
    where = b.where(p)
    session = b.session(actor, at, where, p)
    _log(
        b,
        at,
        actor,
        session,
        "user.session.impersonation.grant",
        where=where,
        targets=[user_target(b.ctx, actor)],
        debug={"requestUri": "/api/internal/support/impersonation/grant", "grantDurationHours": "8"},
    )
    b.remember("okta_impersonation", user=actor.email, user_id=okta_user_id(b.ctx, actor))
