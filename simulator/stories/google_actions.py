"""Story actions in Google Workspace: logins, Drive sharing and downloads, OAuth tokens, roles, settings."""

from __future__ import annotations

import copy
from typing import Any

from simulator.activity import Session
from simulator.catalog import GOOGLE_ROLES
from simulator.errors import ScenarioError
from simulator.render.google import activity_extra, client_id
from simulator.scenario import StepSpec
from simulator.state import GoogleToken
from simulator.stories.engine import StoryBuilder, action, add_permission, choose_files, file_refs
from simulator.tenant import Permission, Person
from simulator.timestamps import SECOND, parse_duration


def _google_activity(
    b: StoryBuilder,
    stream: str,
    ts: int,
    actor: Person,
    session: Session,
    events: list[tuple[str, str, dict[str, Any]]],
) -> None:
    b.emit(
        stream,
        ts,
        "activity",
        actor,
        session,
        activity_extra(actor, session.ip, events, session.city.country),
    )


@action("google.login")
def google_login(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    session = b.session(person, at, b.where(p), p, n=int(p.get("ip", 0)))
    suspicious = bool(p.get("suspicious", session.network == "attacker"))
    for k in range(int(p.get("failures", 0))):
        _google_activity(
            b,
            "google:login",
            at - (k + 1) * 50 * SECOND,
            person,
            session,
            [
                (
                    "login",
                    "login_failure",
                    {
                        "login_type": "google_password",
                        "login_challenge_method": ["password"],
                        "login_failure_type": "login_failure_invalid_password",
                        "is_suspicious": suspicious,
                    },
                )
            ],
        )
    methods = ["password", "google_authenticator"] if person.two_sv else ["password"]
    _google_activity(
        b,
        "google:login",
        at,
        person,
        session,
        [
            (
                "login",
                "login_success",
                {
                    "login_type": "google_password",
                    "login_challenge_method": methods,
                    "is_suspicious": suspicious,
                    "is_second_factor": person.two_sv,
                },
            )
        ],
    )
    if suspicious:
        _google_activity(
            b,
            "google:login",
            at + 40 * SECOND,
            person,
            session,
            [("login", "suspicious_login", {"login_type": "google_password", "login_timestamp": at // 1000})],
        )


def _google_visibility(drive_file: Any) -> str:
    kinds = {x.type for x in drive_file.permissions}
    return (
        "people_with_link"
        if "anyone" in kinds
        else "people_within_domain_with_link"
        if "domain" in kinds
        else ("shared_internally" if len(drive_file.permissions) > 1 else "private")
    )


@action("google.visibility_change")
def google_visibility_change(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Drive files made public on the web / anyone with the link (two events per activity)."""
    person = b.person(p)
    visibility = str(p.get("visibility", "people_with_link"))
    files = b.tenant.files_of(person.index, "google")
    for i, (_k, drive_file) in enumerate(choose_files(b, files, p)):
        ts = at + i * 25 * SECOND
        session = b.session(person, ts, b.where(p), p)
        old = _google_visibility(drive_file)
        common = {
            "primary_event": True,
            "billable": True,
            "owner_is_shared_drive": False,
            "owner": person.email,
            "doc_id": drive_file.id,
            "doc_type": "document",
            "doc_title": drive_file.title,
            "visibility": visibility,
            "actor_is_collaborator_account": False,
        }
        scope = "can_view"
        _google_activity(
            b,
            "google:drive",
            ts,
            person,
            session,
            [
                (
                    "acl_change",
                    "change_document_access_scope",
                    {**common, "old_value": ["none"], "new_value": [scope]},
                ),
                (
                    "acl_change",
                    "change_document_visibility",
                    {
                        **common,
                        "old_visibility": old,
                        "visibility_change": "external",
                        "old_value": [old],
                        "new_value": [visibility],
                    },
                ),
            ],
        )
        discoverable = visibility == "public_on_the_web"
        add_permission(
            b,
            "google",
            drive_file.id,
            Permission(
                "anyoneWithLink" if not discoverable else "anyone",
                "anyone",
                "reader",
                discoverable=discoverable,
            ),
        )
        b.remember(
            "google_public",
            file_id=drive_file.id,
            permission_id="anyoneWithLink" if not discoverable else "anyone",
            title=drive_file.title,
            owner=person.email,
        )


@action("google.external_share")
def google_external_share(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    to = str(p["to"])
    files = b.tenant.files_of(person.index, "google")
    for i, (_k, drive_file) in enumerate(choose_files(b, files, p)):
        ts = at + i * 20 * SECOND
        session = b.session(person, ts, b.where(p), p)
        common = {
            "primary_event": True,
            "billable": True,
            "owner_is_shared_drive": False,
            "owner": person.email,
            "doc_id": drive_file.id,
            "doc_type": "document",
            "doc_title": drive_file.title,
            "visibility": "shared_externally",
            "actor_is_collaborator_account": False,
        }
        _google_activity(
            b,
            "google:drive",
            ts,
            person,
            session,
            [
                (
                    "acl_change",
                    "change_user_access",
                    {
                        **common,
                        "target_user": to,
                        "target_domain": to.split("@")[-1],
                        "old_value": ["none"],
                        "new_value": ["can_view"],
                    },
                ),
            ],
        )
        perm_id = str(b.ids.number("google-perm", drive_file.id, to) % 10**20)
        add_permission(b, "google", drive_file.id, Permission(perm_id, "user", "reader", email=to))
        b.remember("google_share", file_id=drive_file.id, permission_id=perm_id, to=to, owner=person.email)


@action("google.mass_download")
def google_mass_download(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    person = b.person(p)
    n = int(p.get("files", 80))
    refs = file_refs(b, person, n, "google", str(p.get("owners", "team")))
    from simulator.render.google import _doc_params

    for i, ts in enumerate(b.spread(at, p, n, "30m")):
        session = b.session(person, ts, b.where(p), p)
        _google_activity(
            b, "google:drive", ts, person, session, [("access", "download", _doc_params(b.ctx, refs[i]))]
        )


@action("google.token_authorize")
def google_token_authorize(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A user grants a third-party app OAuth access to their Google account."""
    person = b.person(p)
    app = dict(p.get("app") or {})
    name = str(app.get("name", "Document Viewer"))
    scopes = [
        str(s)
        for s in app.get("scopes", ["https://mail.google.com/", "https://www.googleapis.com/auth/drive"])
    ]
    cid = client_id(b.ctx, f"story-app:{name}")
    session = b.session(person, at, b.where(p), p)
    _google_activity(
        b,
        "google:token",
        at,
        person,
        session,
        [("auth", "authorize", {"client_id": cid, "app_name": name, "client_type": "WEB", "scope": scopes})],
    )
    b.state.google_tokens_added.setdefault(person.index, {})[cid] = GoogleToken(cid, name, scopes)
    b.remember("google_token", client_id=cid, user=person.email, app=name)


@action("google.assign_role")
def google_assign_role(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    admin = b.person(p, "by")
    person = b.person(p)
    role = str(p.get("role", "_SEED_ADMIN_ROLE"))
    session = b.session(admin, at, b.where(p), p)
    events = [
        (
            "DELEGATED_ADMIN_SETTINGS",
            "ASSIGN_ROLE",
            {"ROLE_NAME": role, "USER_EMAIL": person.email, "ROLE_ID": GOOGLE_ROLES[role][0]},
        )
    ]
    if GOOGLE_ROLES[role][2]:
        events.append(("USER_SETTINGS", "GRANT_ADMIN_PRIVILEGE", {"USER_EMAIL": person.email}))
        b.state.user(person.index).google_admin = True
    _google_activity(b, "google:admin", at, admin, session, events)
    assignment = b.state._add_google_role(
        person, role, b.ids.number("story-google-role", b.spec.id if b.spec else "", step.id)
    )
    b.state.bump(person)
    b.remember("google_role", id=assignment["roleAssignmentId"], role=role, user=person.email)


@action("google.setting_changed")
def google_setting_changed(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """An admin changes a setting; the Cloud Identity policy read shows the new value."""
    admin = b.person(p, "by")
    setting = str(p.get("setting", "drive_and_docs.external_sharing"))
    attribute = str(p.get("attribute", "externalSharingMode"))
    policy = b.state.google_policies.get(setting)
    if policy is None:
        raise ScenarioError(
            f"google.setting_changed: unknown setting {setting!r}; known: {', '.join(b.state.google_policies)}"
        )
    org_unit = str(p["org_unit"]) if p.get("org_unit") else None
    if org_unit is not None:
        # one organisational unit gets its own policy that overrides the root's (sortOrder 2)
        policy = copy.deepcopy(policy)
        policy["name"] = f"policies/{b.ids.token('policy', setting, org_unit, length=20)}"
        policy["policyQuery"] = {"orgUnit": f"orgUnits/{b.ids.hex('ou', org_unit, length=8)}", "sortOrder": 2}
        b.state.google_policies[f"{setting}@{org_unit}"] = policy
    value = policy["setting"]["value"]
    old, new = value.get(attribute), p.get("new")
    if new is None:
        value.pop(attribute, None)
    else:
        value[attribute] = new
    ou_name = org_unit or b.tenant.scenario.tenant.name
    session = b.session(admin, at, b.where(p), p)
    event_name = str(p.get("event", "CHANGE_APPLICATION_SETTING"))
    if event_name == "CHANGE_APPLICATION_SETTING":
        event = (
            "APPLICATION_SETTINGS",
            event_name,
            {
                "APPLICATION_NAME": str(p.get("application", "Drive and Docs")),
                "SETTING_NAME": str(p.get("setting_name", attribute)),
                "OLD_VALUE": "" if old is None else str(old),
                "NEW_VALUE": "" if new is None else str(new),
                "ORG_UNIT_NAME": ou_name,
            },
        )
    else:
        event = (
            "SECURITY_SETTINGS",
            event_name,
            {
                "ORG_UNIT_NAME": ou_name,
                "OLD_VALUE": "" if old is None else str(old),
                "NEW_VALUE": "" if new is None else str(new),
            },
        )
    _google_activity(b, "google:admin", at, admin, session, [event])
    b.remember(
        "google_setting", setting=setting, attribute=attribute, old=old, new=new, policy=policy["name"]
    )


TAKEOUT_DESTINATIONS = ("BOX", "DRIVE", "DROPBOX", "EMAIL", "ONEDRIVE", "UNKNOWN")


@action("google.takeout")
def google_takeout(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """A Google Takeout of `user`'s data (by `by`, an admin, or the user themself): the Reports API
    `takeout` application's USER_TAKEOUT events as Google documents them — STARTED_USER_TAKEOUT,
    COMPLETED_USER_TAKEOUT (`minutes` later) and, unless `download: false`, DOWNLOADED_USER_TAKEOUT
    (`products`: the products requested; `destination`: BOX|DRIVE|DROPBOX|EMAIL|ONEDRIVE|UNKNOWN)."""
    person = b.person(p)
    actor = b.person(p, "by") if p.get("by") else person
    destination = str(p.get("destination", "EMAIL"))
    if destination not in TAKEOUT_DESTINATIONS:
        raise ScenarioError(f"google.takeout: destination must be one of {', '.join(TAKEOUT_DESTINATIONS)}")
    products = ",".join(str(x) for x in p.get("products", ["Mail", "Drive", "Calendar", "Contacts"]))
    takeout_id = b.ids.hex("takeout", b.spec.id if b.spec else "", step.id, length=24)
    initiated_by = "ADMIN" if actor is not person else "USER"
    common = {"USER_EMAIL": person.email, "TAKEOUT_ID": takeout_id, "PRODUCTS_REQUESTED": products}
    completed = at + int(p.get("minutes", 45)) * 60 * SECOND
    phases: list[tuple[int, str, dict[str, Any]]] = [
        (
            at,
            "STARTED_USER_TAKEOUT",
            {
                **common,
                "INITIATED_BY": initiated_by,
                "TAKEOUT_DESTINATION": destination,
                "START_TIME": at // SECOND,
            },
        ),
        (
            completed,
            "COMPLETED_USER_TAKEOUT",
            {
                **common,
                "INITIATED_BY": initiated_by,
                "TAKEOUT_DESTINATION": destination,
                "TAKEOUT_STATUS": "COMPLETED",
                "COMPLETION_TIME": completed // SECOND,
            },
        ),
    ]
    if p.get("download", True):
        downloaded = completed + 6 * 60 * SECOND
        phases.append(
            (downloaded, "DOWNLOADED_USER_TAKEOUT", {**common, "DOWNLOAD_TIME": downloaded // SECOND})
        )
    for ts, name, params in phases:
        session = b.session(actor, ts, b.where(p), p)
        _google_activity(b, "google:takeout", ts, actor, session, [("USER_TAKEOUT", name, params)])
    b.remember("google_takeout", id=takeout_id, user=person.email, by=actor.email, destination=destination)


MOBILE_DEVICE_TYPES = ("ANDROID", "iOS")
MOBILE_EVENTS = ("register", "compromised", "wipe", "account_wipe")


@action("google.mobile_device")
def google_mobile_device(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Mobile device events of the Reports API `mobile` application (type `device_updates`) for
    `user`'s device, as Google documents them: `events` is a list of register (a new device,
    DEVICE_REGISTER_UNREGISTER_EVENT with ACCOUNT_STATE REGISTERED), compromised
    (DEVICE_COMPROMISED_EVENT, DEVICE_COMPROMISED_STATE COMPROMISED), wipe / account_wipe
    (DEVICE_ACTION_EVENT, ACTION_TYPE DEVICE_WIPE / ACCOUNT_WIPE), each `gap` (default 10m) after
    the previous; `device_type` ANDROID|iOS, `model`."""
    person = b.person(p)
    device_type = str(p.get("device_type", "ANDROID"))
    if device_type not in MOBILE_DEVICE_TYPES:
        raise ScenarioError(
            f"google.mobile_device: device_type must be one of {', '.join(MOBILE_DEVICE_TYPES)}"
        )
    kinds = [str(k) for k in p.get("events", ["register"])]
    unknown = [k for k in kinds if k not in MOBILE_EVENTS]
    if unknown:
        raise ScenarioError(f"google.mobile_device: unknown events {unknown}; use {', '.join(MOBILE_EVENTS)}")
    key = (b.spec.id if b.spec else "", step.id)
    device = {
        "DEVICE_ID": b.ids.hex("mobile-device", *key, length=16),
        "RESOURCE_ID": b.ids.hex("mobile-resource", *key, length=32),
        "SERIAL_NUMBER": b.ids.hex("mobile-serial", *key, length=12).upper(),
        "DEVICE_MODEL": str(p.get("model", "Pixel 8" if device_type == "ANDROID" else "iPhone15,2")),
        "DEVICE_TYPE": device_type,
        "OS_VERSION": "Android 14" if device_type == "ANDROID" else "iOS 17.4",
        "USER_EMAIL": person.email,
    }
    if device_type == "iOS":
        device["IOS_VENDOR_ID"] = b.ids.guid("mobile-vendor", *key).upper()
    gap = parse_duration(str(p.get("gap", "10m")))
    for n, kind in enumerate(kinds):
        ts = at + n * gap
        session = b.session(person, ts, b.where(p), p)
        if kind == "register":
            event = (
                "DEVICE_REGISTER_UNREGISTER_EVENT",
                {**device, "ACCOUNT_STATE": "REGISTERED", "REGISTER_PRIVILEGE": "Device Administrator"},
            )
        elif kind == "compromised":
            event = ("DEVICE_COMPROMISED_EVENT", {**device, "DEVICE_COMPROMISED_STATE": "COMPROMISED"})
        else:
            action_type = "DEVICE_WIPE" if kind == "wipe" else "ACCOUNT_WIPE"
            event = (
                "DEVICE_ACTION_EVENT",
                {
                    **device,
                    "ACTION_TYPE": action_type,
                    "ACTION_ID": b.ids.hex("mobile-action", *key, n, length=16),
                    "ACTION_EXECUTION_STATUS": "SUCCESS",
                },
            )
        _google_activity(b, "google:mobile", ts, person, session, [("device_updates", event[0], event[1])])
    b.remember("google_mobile_device", user=person.email, device_id=device["DEVICE_ID"], events=kinds)


# event_info.mail_event_type values the Gmail log events document (a subset)
GMAIL_EVENT_TYPES = {
    "sent": 1,
    "received": 2,
    "user_marked_spam": 3,
    "quarantined": 5,
    "opened": 7,
    "forwarded": 10,
}


@action("google.gmail_delivery")
def google_gmail_delivery(b: StoryBuilder, step: StepSpec, p: dict[str, Any], at: int) -> None:
    """Gmail log events (Reports API `gmail` application: type `delivery_type`, name `delivery`,
    nested `event_info` and `message_info` message values) for one message to `user` from `sender`
    (an address; `from` is where the user reads it): one event per entry of `events` (received, opened, quarantined, ...; see
    GMAIL_EVENT_TYPES), `gap` (default 4m) apart. `attachment` {file_name, malware_family} and
    `spam` (a classification reason such as phishing) describe the message."""
    person = b.person(p)
    kinds = [str(k) for k in p.get("events", ["received"])]
    unknown = [k for k in kinds if k not in GMAIL_EVENT_TYPES]
    if unknown:
        raise ScenarioError(
            f"google.gmail_delivery: unknown events {unknown}; use {', '.join(GMAIL_EVENT_TYPES)}"
        )
    sender = str(p.get("sender", "billing@invoices-northwind.example"))
    key = (b.spec.id if b.spec else "", step.id)
    message: dict[str, Any] = {
        "rfc2822_message_id": f"<{b.ids.hex('gmail-message', *key, length=24)}@{sender.split('@')[-1]}>",
        "subject": str(p.get("subject", "Invoice overdue")),
        "source": {"address": sender, "from_header_address": sender, "service": "smtp-inbound"},
        "destination": [{"address": person.email, "service": "gmail-ui"}],
        "is_spam": bool(p.get("spam")),
        "payload_size": int(p.get("size", 48213)),
        "num_message_attachments": 1 if p.get("attachment") else 0,
    }
    if p.get("spam"):
        message["spam_info"] = {
            "classification_reason": str(p["spam"]),
            "disposition": "quarantine" if "quarantined" in kinds else "inbox",
        }
    attachment = p.get("attachment")
    if isinstance(attachment, dict):
        entry = {"file_name": str(attachment.get("file_name", "invoice.zip"))}
        entry["file_extension_type"] = entry["file_name"].rsplit(".", 1)[-1]
        entry["sha256"] = b.ids.hex("gmail-attachment", *key, length=64)
        if attachment.get("malware_family"):
            entry["malware_family"] = str(attachment["malware_family"])
        message["attachment"] = [entry]
    gap = 4 * 60 * SECOND
    for n, kind in enumerate(kinds):
        ts = at + n * gap
        session = b.session(person, ts, b.where(p), p)
        params = {
            "event_info": {
                "mail_event_type": GMAIL_EVENT_TYPES[kind],
                "success": True,
                "timestamp_usec": ts * 1_000_000 // SECOND,
                "elapsed_time_usec": 1200 + 37 * n,
            },
            "message_info": message,
        }
        _google_activity(b, "google:gmail_log", ts, person, session, [("delivery_type", "delivery", params)])
    b.remember("google_gmail_delivery", user=person.email, sender=sender, events=kinds)
