"""Google Workspace Admin SDK Reports API activity shapes (login, drive, token, saml, admin, user_accounts,
takeout, gmail, mobile)."""

from __future__ import annotations

from typing import Any

from simulator.activity import Record, Session
from simulator.catalog import THIRD_PARTY_APPS
from simulator.render.context import RenderContext
from simulator.tenant import Person, google_mime
from simulator.timestamps import google_time

APPLICATIONS = {
    "google:login": "login",
    "google:admin": "admin",
    "google:drive": "drive",
    "google:token": "token",
    "google:saml": "saml",
    "google:user_accounts": "user_accounts",
    "google:takeout": "takeout",
    "google:gmail_log": "gmail",
    "google:mobile": "mobile",
}
STREAM_OF_APPLICATION = {v: k for k, v in APPLICATIONS.items()}
APPS_BY_KEY = {a.key: a for a in THIRD_PARTY_APPS}


def parameter(name: str, value: Any) -> dict[str, Any]:
    """One Reports API parameter, with the value in the slot its type calls for."""
    if isinstance(value, bool):
        return {"name": name, "boolValue": value}
    if isinstance(value, dict):  # a nested message (Gmail's event_info, message_info)
        return {"name": name, "messageValue": {"parameter": _nested(value)}}
    if isinstance(value, list | tuple) and value and all(isinstance(v, dict) for v in value):
        return {"name": name, "multiMessageValue": [{"parameter": _nested(v)} for v in value]}
    if isinstance(value, int):
        return {"name": name, "intValue": str(value)}
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return {"name": name, "multiIntValue": [str(v) for v in value]}
        return {"name": name, "multiValue": [str(v) for v in value]}
    return {"name": name, "value": str(value)}


def _nested(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [parameter(k, v) for k, v in values.items() if v is not None]


def event(type_: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": type_,
        "name": name,
        "parameters": [parameter(k, v) for k, v in params.items() if v is not None],
    }


def activity_extra(
    actor: Person | None,
    ip: str | None,
    events: list[tuple[str, str, dict[str, Any]]],
    region: str | None = None,
) -> dict[str, Any]:
    """The extra of a generic activity record (stories and write-time events)."""
    return {"actor": actor, "ip": ip, "events": events, "region": region}


def _shell(
    ctx: RenderContext, stream: str, record: Record, actor: Person | None, ip: str | None, region: str | None
) -> dict[str, Any]:
    ts, uid = record[0], record[1]
    ids = ctx.ids
    body: dict[str, Any] = {
        "kind": "admin#reports#activity",
        "id": {
            "time": google_time(ts),
            "uniqueQualifier": str(ids.fast(stream, uid) - (1 << 63)),
            "applicationName": APPLICATIONS[stream],
            "customerId": ctx.tenant.customer_id,
        },
        "etag": f'"{ids.fast_token("etag", uid)}/{ids.fast_token(stream, uid)}"',
        "actor": {"callerType": "USER", "email": actor.email, "profileId": actor.google_id}
        if actor is not None
        else {"callerType": "KEY", "key": "SYSTEM"},
    }
    if ip:
        body["ipAddress"] = ip
    if region:
        body["networkInfo"] = {"regionCode": region}
    body["ownerDomain"] = ctx.tenant.domain
    return body


def _challenge(person: Person) -> list[str]:
    return ["password", "google_authenticator"] if person.two_sv else ["password"]


def _doc_params(ctx: RenderContext, ref: tuple[int, int], visibility: str | None = None) -> dict[str, Any]:
    owner_index, k = ref
    files = ctx.tenant.files_of(owner_index, "google")
    drive_file = files[k % len(files)]
    kinds = {p.type for p in drive_file.permissions}
    default_visibility = (
        "people_with_link"
        if "anyone" in kinds
        else "people_within_domain_with_link"
        if "domain" in kinds
        else "shared_internally"
        if len(drive_file.permissions) > 1
        else "private"
    )
    return {
        "primary_event": True,
        "billable": True,
        "owner_is_shared_drive": False,
        "owner": ctx.person(owner_index).email,
        "doc_id": drive_file.id,
        "doc_type": google_mime(drive_file.extension).rsplit(".", 1)[-1].replace("application/", ""),
        "doc_title": drive_file.title,
        "visibility": visibility or default_visibility,
        "actor_is_collaborator_account": False,
    }


def _background_events(
    ctx: RenderContext, stream: str, kind: str, person: Person, session: Session | None, extra: Any
) -> list[tuple[str, str, dict[str, Any]]]:
    if stream == "google:login":
        if kind == "login_failure":
            return [
                (
                    "login",
                    "login_failure",
                    {
                        "login_type": "google_password",
                        "login_challenge_method": ["password"],
                        "login_failure_type": "login_failure_invalid_password",
                        "is_suspicious": False,
                    },
                )
            ]
        if kind == "logout":
            return [("login", "logout", {"login_type": "google_password"})]
        return [
            (
                "login",
                "login_success",
                {
                    "login_type": "google_password",
                    "login_challenge_method": _challenge(person),
                    "is_suspicious": False,
                    "is_second_factor": person.two_sv,
                },
            )
        ]
    if stream == "google:drive":
        return [("access", kind, _doc_params(ctx, extra))]
    if stream == "google:token":
        app = APPS_BY_KEY[extra]
        return [
            (
                "auth",
                kind,
                {
                    "client_id": client_id(ctx, app.key),
                    "app_name": app.name,
                    "client_type": "WEB",
                    "scope": list(app.google_scopes),
                },
            )
        ]
    if stream == "google:saml":
        return [
            (
                "login",
                kind,
                {
                    "application_name": extra,
                    "initiated_by": "sp",
                    "orgunit_path": "/",
                    "saml_status_code": "SUCCESS_URI",
                },
            )
        ]
    if stream == "google:user_accounts":
        types = {
            "2sv_enroll": "2sv_change",
            "password_edit": "password_change",
            "recovery_phone_edit": "recovery_info_change",
        }
        return [(types[kind], kind, {})]
    if stream == "google:admin":
        if kind == "ADD_GROUP_MEMBER":
            group = next(
                (g for g in ctx.tenant.groups if person.index in g.members and g.name != "All Staff"),
                ctx.tenant.groups[0],
            )
            return [("GROUP_SETTINGS", kind, {"USER_EMAIL": person.email, "GROUP_EMAIL": group.email})]
        return [("USER_SETTINGS", kind, {"USER_EMAIL": person.email})]
    raise KeyError((stream, kind))


def client_id(ctx: RenderContext, app_key: str) -> str:
    return f"{ctx.ids.number('google-client', app_key) % 10**12:012d}-{ctx.ids.token('google-client-suffix', app_key, length=32).lower()}.apps.googleusercontent.com"


def make_google_renderer(stream: str):
    def render_activity(ctx: RenderContext, record: Record) -> dict[str, Any]:
        ts, uid, kind, person, session, extra = record
        if kind == "activity":
            body = _shell(ctx, stream, record, extra["actor"], extra["ip"], extra.get("region"))
            body["events"] = [event(t, n, p) for t, n, p in extra["events"]]
            return body
        if stream == "google:admin":
            admin = ctx.person(extra)
            block = ctx.tenant.offices.get(admin.office.id, admin.home_block)
            body = _shell(ctx, stream, record, admin, block.address(admin.index * 7), admin.office.country)
        else:
            body = _shell(
                ctx,
                stream,
                record,
                person,
                session.ip if session else None,
                session.city.country if session else None,
            )
        body["events"] = [
            event(t, n, p) for t, n, p in _background_events(ctx, stream, kind, person, session, extra)
        ]
        return body

    return render_activity


GOOGLE_RENDERERS = {stream: make_google_renderer(stream) for stream in APPLICATIONS}
