"""Story actions in Microsoft 365 for token theft and what follows it: device-code phishing, token
replay in non-interactive sign-ins, PIM role activation, an application writing with its own token
(mailbox rules, mail sent) and mailbox permission grants."""

from __future__ import annotations

from typing import Any

from simulator.catalog import ENTRA_ROLES
from simulator.errors import ScenarioError
from simulator.render.m365 import audit_extra, session_id, target
from simulator.scenario import StepSpec
from simulator.state import InboxRule
from simulator.stories.engine import StoryBuilder, action
from simulator.stories.m365_actions import _app
from simulator.timestamps import HOUR, SECOND, graph_time


@action("m365.device_code_signin")
def m365_device_code_signin(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Device-code phishing: the victim types the attacker's code at microsoft.com/devicelogin and
    completes MFA; the tokens go to the device that asked for the code (the attacker's), whose
    address the sign-in records (authenticationProtocol deviceCode)."""
    person = b.person(p)
    app = _app(str(p.get("app", "Microsoft Office")))
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    overrides = {"authenticationProtocol": "deviceCode", "originalTransferMethod": "deviceCodeFlow"}
    b.emit("m365:signins", at, "ok", person, session, (app.app_id, 0, True, {}, None, overrides))
    b.emit("m365:unified_audit", at + 2 * SECOND, "UserLoggedIn", person, session, None)
    b.remember("token_session", session_id=session_id(b.ids, session), user=person.email)


@action("m365.token_replay")
def m365_token_replay(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """The stolen refresh token redeemed elsewhere: non-interactive sign-ins that carry the session
    id of the session the token was issued in, from another network (`ip` picks the attacker's
    address; the session's own sign-in used another)."""
    person = b.person(p)
    issued = [t for t in b.created.get("token_session", []) if t["user"] == person.email]
    if not issued:
        raise ScenarioError(
            f"story {b.spec.id if b.spec else ''} step {step.id}: m365.token_replay needs an earlier "
            "m365.device_code_signin or m365.signin of the same user"
        )
    sid = issued[-1]["session_id"]
    apps = [
        _app(str(name)) for name in p.get("apps", ["Microsoft Office", "Microsoft Teams", "Outlook Mobile"])
    ]
    overrides = {"incomingTokenType": "refreshToken"}
    for i, ts in enumerate(b.spread(at, p, int(p.get("refreshes", 12)), "6h")):
        session = b.session(person, ts, b.where(p), p, n=int(p.get("ip", 1)))
        app = apps[i % len(apps)]
        b.emit("m365:signins", ts, "ni", person, session, (app.app_id, 0, False, {}, sid, overrides))


@action("m365.pim_activation")
def m365_pim_activation(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An eligible user activates a directory role through Privileged Identity Management: the
    request, then the completed activation (loggedByService PIM), with the justification typed."""
    person = b.person(p)
    role = str(p.get("role", "Exchange Administrator"))
    if role not in ENTRA_ROLES:
        raise ScenarioError(f"step {step.id}: unknown Entra role {role!r}")
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    hours = int(p.get("hours", 8))
    assignment_id = b.ids.guid("story-pim", b.spec.id if b.spec else "", step.id)
    b.state._add_role_assignment(person, role, assignment_id)
    b.state.bump(person)
    details = [
        ("Justification", str(p.get("justification", "Mailbox maintenance"))),
        ("StartTime", graph_time(at)),
        ("ExpirationTime", graph_time(at + hours * HOUR)),
    ]
    targets = [
        target("Role", ENTRA_ROLES[role], role, props=[("Role.DisplayName", None, role)]),
        target(
            "User",
            person.entra_id,
            None,
            person.email,
            [("Role.DisplayName", None, role), ("Role.TemplateId", None, ENTRA_ROLES[role])],
        ),
    ]
    for activity, delay in (
        ("Add member to role requested (PIM activation)", 0),
        ("Add member to role completed (PIM activation)", 25 * SECOND),
    ):
        b.emit(
            "m365:directory_audits",
            at + delay,
            "audit",
            person,
            session,
            audit_extra(activity, "RoleManagement", "PIM", "Add", person, session.ip, targets, details),
        )
    b.remember("role_assignment", id=assignment_id, role=role, user=person.email)


def _story_app(b: StoryBuilder, p: dict[str, Any], step: StepSpec) -> dict[str, Any]:
    made = b.created.get("service_principal") or []
    if not made:
        raise ScenarioError(
            f"story {b.spec.id if b.spec else ''} step {step.id}: {step.action} needs an earlier "
            "m365.oauth_consent (the application that acts)"
        )
    return made[-1]


@action("m365.app_only_mail")
def m365_app_only_mail(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """The consented application acts with its own (client-credentials) token, no user signs in:
    through Graph it adds a forwarding inbox rule to a mailbox and sends mail as that mailbox. The
    unified audit log names the mailbox as UserId and the application in AppId/ClientAppId."""
    person = b.person(p)
    app = _story_app(b, p, step)
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    name = str(p.get("name", "Sync"))
    forward = str(p.get("forward_to", ""))
    if forward:
        params = [
            {"Name": "Name", "Value": name},
            {"Name": "ForwardTo", "Value": forward},
            {"Name": "StopProcessingRules", "Value": "True"},
        ]
        b.emit(
            "m365:unified_audit",
            at,
            "New-InboxRule",
            person,
            session,
            {"parameters": params, "object_id": f"{person.email}\\{name}", "app_id": app["app_id"]},
        )
        rule_id = b.ids.token("story-rule", b.spec.id if b.spec else "", step.id, length=22) + "AQ=="
        actions = {
            "forwardTo": [{"emailAddress": {"name": forward, "address": forward}}],
            "stopProcessingRules": True,
        }
        b.state.inbox_rules_added.setdefault(person.index, []).append(
            InboxRule(rule_id, name, 0, True, {}, actions, at)
        )
        b.remember("inbox_rule", id=rule_id, name=name, user=person.email)
    for i, ts in enumerate(b.spread(at + 5 * SECOND, p, int(p.get("sends", 0)), "30m")):
        b.emit(
            "m365:unified_audit",
            ts,
            "Send",
            person,
            b.session(person, ts, b.where(p), p, n=int(p.get("ip", 0))),
            {"app_id": app["app_id"], "subject": str(p.get("subject", f"Invoice {4410 + i}"))},
        )


@action("m365.mailbox_permission")
def m365_mailbox_permission(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Add-MailboxPermission: someone (`by`) gives `to` full access to `user`'s mailbox."""
    admin = b.person(p, "by")
    mailbox = b.person(p)
    grantee = b.person(p, "to")
    session = b.session(admin, at, b.where(p), p, n=int(p.get("ip", 0)))
    rights = str(p.get("rights", "FullAccess"))
    params = [
        {"Name": "Identity", "Value": mailbox.email},
        {"Name": "User", "Value": grantee.email},
        {"Name": "AccessRights", "Value": rights},
        {"Name": "InheritanceType", "Value": "All"},
    ]
    b.emit(
        "m365:unified_audit",
        at,
        "Add-MailboxPermission",
        admin,
        session,
        {"parameters": params, "object_id": mailbox.email, "app_id": "00000002-0000-0ff1-ce00-000000000000"},
    )
