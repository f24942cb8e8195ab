"""Google Workspace streams: Reports API activities, Directory inventory, Drive sharing, Gmail.

googleapiclient's own retries ignore Retry-After, so every call runs with ``num_retries=0``
under our retry policy, which waits exactly what a 429 asks and backs off on 5xx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Container, Iterator
from datetime import datetime, timedelta
from typing import Any

from collectors.streams.base import (
    ChangeWatch,
    Page,
    StreamContext,
    StreamKind,
    StreamSpec,
    changed_users,
    register,
)
from collectors.streams.windows import WindowPlan, event_pages
from core.normalise.google import normalise_gmail_message
from core.normalise.records import NormaliseError
from providers.errors import (
    RequestRejected,
    StalePageToken,
)
from providers.google import GoogleApi

PROVIDER = "google"
APPLICATIONS = ("login", "admin", "drive", "token", "saml", "user_accounts", "takeout", "mobile")
# Reports applications stored under another stream name ("gmail" is the Gmail API message stream)
RENAMED_APPLICATIONS = {"gmail_log": "gmail"}
SCOPE_NAMES = {
    "reports": "https://www.googleapis.com/auth/admin.reports.audit.readonly",
    "directory": "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "tokens": "https://www.googleapis.com/auth/admin.directory.user.security",
    "roles": "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly",
    "groups": "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "drive": "https://www.googleapis.com/auth/drive.readonly",
    "gmail": "https://www.googleapis.com/auth/gmail.readonly",
    "policies": "https://www.googleapis.com/auth/cloud-identity.policies.readonly",
}


def rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---- Reports API ------------------------------------------------------------------------------


def activities_reader(application: str, max_window: timedelta | None = None) -> Any:
    def read(ctx: StreamContext) -> Iterator[Page]:
        api: GoogleApi = ctx.api
        permission = SCOPE_NAMES["reports"]

        def fetch(start: datetime, end: datetime, token: Any) -> tuple[list[Any], Any, str]:
            params: dict[str, Any] = {
                "userKey": "all",
                "applicationName": application,
                "startTime": rfc3339(start),
                "endTime": rfc3339(end),
                "maxResults": ctx.page_size_up_to(1000),
            }
            if ctx.setting("customer_id"):
                params["customerId"] = ctx.setting("customer_id")
            if token:
                params["pageToken"] = token
            try:
                body = api.execute(
                    lambda: api.service("reports").activities().list(**params),
                    permission=permission,
                    kind="admin#reports#activities",
                    lists=("items",),
                )
            except RequestRejected as exc:
                if token and exc.status == 400:
                    raise StalePageToken(f"{api.name}: page token refused ({exc})") from exc
                raise
            return body.get("items", []), body.get("nextPageToken"), f"reports/{application}"

        plan = WindowPlan.for_context(
            ctx, max_window=max_window, max_age=timedelta(days=180) - timedelta(hours=1)
        )
        yield from event_pages(ctx, plan, fetch)

    return read


# ---- Directory / Drive snapshots ------------------------------------------------------------------


def _paged(
    api: GoogleApi,
    make: Callable[[Any], Any],
    key: str,
    permission: str,
    *,
    kind: str,
    probe: bool = False,
) -> Iterator[Any]:
    token = None
    while True:
        body = api.execute(functools.partial(make, token), permission=permission, kind=kind, lists=(key,))
        yield from body.get(key, [])
        token = body.get("nextPageToken")
        if not token or probe:
            return


def _users(ctx: StreamContext) -> list[dict[str, Any]]:
    api: GoogleApi = ctx.api
    cached = ctx.extra.get("users")
    if cached is None:
        cached = list(
            _paged(
                api,
                lambda token: (
                    api.service("directory")
                    .users()
                    .list(
                        customer=api.customer,
                        projection="full",
                        maxResults=min(ctx.page_size, 500),
                        pageToken=token,
                    )
                ),
                "users",
                SCOPE_NAMES["directory"],
                kind="admin#directory#users",
                probe=ctx.probe,
            )
        )
        ctx.extra["users"] = cached
    return cached


def _selected(ctx: StreamContext, key: str, *, default_all: bool = False) -> list[str]:
    """Users named in config `key`; ``["*"]`` (or nothing, with `default_all`) means every user."""
    chosen = [str(u) for u in ctx.setting(key) or []]
    if chosen and chosen != ["*"]:
        return chosen
    if not chosen and not default_all:
        return []
    return [str(u["primaryEmail"]) for u in _users(ctx) if u.get("primaryEmail") and not u.get("suspended")]


def read_users(ctx: StreamContext) -> Iterator[Page]:
    objects = {str(u["id"]): u for u in _users(ctx) if isinstance(u, dict) and u.get("id")}
    yield Page(object_type="user", objects=objects, source="directory/users")


def read_tokens(ctx: StreamContext) -> Iterator[Page]:
    """OAuth grants per user (the third-party apps each person authorised, with their scopes)."""
    api: GoogleApi = ctx.api
    objects: dict[str, Any] = {}
    keys = (
        [str(u.get("primaryEmail") or u.get("id")) for u in _users(ctx)]
        if ctx.full_read
        else changed_users(ctx)
    )
    for key in keys:
        try:
            body = api.execute(
                functools.partial(api.service("directory").tokens().list, userKey=key),
                permission=SCOPE_NAMES["tokens"],
                kind="admin#directory#tokenList",
                lists=("items",),
            )
        except RequestRejected as exc:
            if ctx.full_read or exc.status != 404:
                raise
            continue  # named by an event, gone since: its grants are deleted below
        for token in body.get("items", []) or []:
            if isinstance(token, dict) and token.get("clientId"):
                objects[f"{key}/{token['clientId']}"] = {
                    **token,
                    "userKey": token.get("userKey") or key,
                    "user": key,
                }
        if ctx.probe:
            break
    yield Page(
        object_type="token",
        objects=objects,
        source="directory/tokens",
        partial=not ctx.full_read,
        covers_field="user",
        covers=frozenset(k.lower() for k in keys),
    )


def read_role_assignments(ctx: StreamContext) -> Iterator[Page]:
    api: GoogleApi = ctx.api
    permission = SCOPE_NAMES["roles"]
    roles = {
        str(r.get("roleId")): r
        for r in _paged(
            api,
            lambda token: api.service("directory").roles().list(customer=api.customer, pageToken=token),
            "items",
            permission,
            kind="admin#directory#roles",
            probe=ctx.probe,
        )
        if isinstance(r, dict)
    }
    objects: dict[str, Any] = {}
    for a in _paged(
        api,
        lambda token: api.service("directory").roleAssignments().list(customer=api.customer, pageToken=token),
        "items",
        permission,
        kind="admin#directory#roleAssignments",
        probe=ctx.probe,
    ):
        if isinstance(a, dict) and a.get("roleAssignmentId"):
            role = roles.get(str(a.get("roleId")), {})
            objects[str(a["roleAssignmentId"])] = {
                **a,
                "roleName": role.get("roleName"),
                "isSuperAdminRole": role.get("isSuperAdminRole"),
            }
    yield Page(object_type="role_assignment", objects=objects, source="directory/roleAssignments")


def read_groups(ctx: StreamContext) -> Iterator[Page]:
    api: GoogleApi = ctx.api
    objects = {
        str(g["id"]): g
        for g in _paged(
            api,
            lambda token: api.service("directory").groups().list(customer=api.customer, pageToken=token),
            "groups",
            SCOPE_NAMES["groups"],
            kind="admin#directory#groups",
            probe=ctx.probe,
        )
        if isinstance(g, dict) and g.get("id")
    }
    yield Page(object_type="group", objects=objects, source="directory/groups")


def _owned_files(drive: Any, fields: str, page_size: int, token: Any) -> Any:
    return drive.files().list(
        q="'me' in owners and trashed = false", fields=fields, pageSize=page_size, pageToken=token
    )


def read_file_permissions(ctx: StreamContext) -> Iterator[Page]:
    """Permissions on files each user owns (impersonating the owner), incl. anyone/domain links."""
    api: GoogleApi = ctx.api
    permission = SCOPE_NAMES["drive"]
    owners = (
        _selected(ctx, "drive_users", default_all=True)
        if ctx.full_read
        else changed_users(ctx, "drive_users")
    )
    objects: dict[str, Any] = {}
    fields = "kind,nextPageToken,files(id,name,mimeType,owners(emailAddress),webViewLink,permissions(id,type,role,emailAddress,domain,allowFileDiscovery))"
    for owner in owners:
        drive = api.service("drive", subject=owner)
        files = _paged(
            api,
            functools.partial(_owned_files, drive, fields, min(ctx.page_size, 1000)),
            "files",
            permission,
            kind="drive#fileList",
            probe=ctx.probe,
        )
        for f in files:
            if not isinstance(f, dict) or not f.get("id"):
                continue
            perms = f.get("permissions")
            if perms is None:
                body = api.execute(
                    functools.partial(drive.permissions().list, fileId=f["id"], supportsAllDrives=True),
                    permission=permission,
                    kind="drive#permissionList",
                    lists=("permissions",),
                )
                perms = body.get("permissions", [])
            for p in perms or []:
                if isinstance(p, dict) and p.get("id"):
                    objects[f"{f['id']}/{p['id']}"] = {
                        **p,
                        "file": {"id": f["id"], "name": f.get("name"), "mimeType": f.get("mimeType")},
                        "owner": owner,
                    }
        if ctx.probe:
            break
    yield Page(
        object_type="file_permission",
        objects=objects,
        source="drive/permissions",
        partial=not ctx.full_read,
        covers_field="owner",
        covers=frozenset(o.lower() for o in owners),
    )


def setting_object_id(policy: dict[str, Any], taken: Container[str]) -> str | None:
    """A Cloud Identity policy's snapshot id: its setting type (``security.less_secure_apps``) for
    the first policy of that type that targets an org unit rather than a group (what posture checks
    name in `object_id`), ``type@orgUnits/…`` or ``type@<group query>`` for the others; None when
    the policy names no setting."""
    setting = policy.get("setting")
    kind = setting.get("type") if isinstance(setting, dict) else None
    if not isinstance(kind, str) or not kind:
        return None
    kind = kind.removeprefix("settings/")
    query = policy.get("policyQuery")
    if not isinstance(query, dict):
        query = {}
    if not query.get("query") and kind not in taken:
        return kind
    return f"{kind}@{query.get('query') or query.get('orgUnit') or policy.get('name')}"


def read_settings(ctx: StreamContext) -> Iterator[Page]:
    """Workspace security settings (Cloud Identity policies: 2SV, sharing, less secure apps...),
    one snapshot per policy, named by its setting type (`setting_object_id`)."""
    api: GoogleApi = ctx.api
    token = None
    objects: dict[str, Any] = {}
    while True:
        body = api.execute(
            functools.partial(api.service("policies").policies().list, pageSize=100, pageToken=token),
            permission=SCOPE_NAMES["policies"],
            required=("policies",),
            lists=("policies",),
        )
        for policy in body["policies"]:
            if isinstance(policy, dict) and policy.get("name"):
                objects[setting_object_id(policy, objects) or str(policy["name"])] = policy
        token = body.get("nextPageToken")
        if not token or ctx.probe:
            break
    yield Page(object_type="tenant_settings", objects=objects, source="cloudidentity/policies")


# ---- Gmail ------------------------------------------------------------------------------------


def read_gmail(ctx: StreamContext) -> Iterator[Page]:
    """Threads of the selected mailboxes (`gmail_users`), by time window (Gmail search `after:`/`before:`)."""
    api: GoogleApi = ctx.api
    permission = SCOPE_NAMES["gmail"]
    for mailbox in _selected(ctx, "gmail_users"):
        gmail = api.service("gmail", subject=mailbox)

        def fetch(
            start: datetime, end: datetime, token: Any, gmail: Any = gmail, mailbox: str = mailbox
        ) -> tuple[list[Any], Any, str]:
            query = f"after:{int(start.timestamp())} before:{int(end.timestamp()) + 1}"
            body = api.execute(
                lambda: (
                    gmail.users()
                    .threads()
                    .list(userId="me", q=query, maxResults=min(ctx.page_size, 500), pageToken=token)
                ),
                permission=permission,
                required=("resultSizeEstimate",),
                lists=("threads",),
            )
            messages = []
            for thread in body.get("threads", []) or []:
                full = api.execute(
                    functools.partial(
                        gmail.users().threads().get, userId="me", id=thread["id"], format="full"
                    ),
                    permission=permission,
                    required=("id", "messages"),
                    lists=("messages",),
                )
                for message in full.get("messages", []) or []:
                    try:
                        messages.append(normalise_gmail_message(message, mailbox))
                    except NormaliseError:
                        continue
            return messages, body.get("nextPageToken"), f"gmail/{mailbox}"

        yield from event_pages(ctx, WindowPlan.for_context(ctx), fetch, key=f"gmail:{mailbox}")


# ---- registration -----------------------------------------------------------------------------

for _app in APPLICATIONS:
    register(
        StreamSpec(PROVIDER, _app, StreamKind.EVENTS, activities_reader(_app), SCOPE_NAMES["reports"], 300)
    )
# Gmail log events: startTime and endTime are required and at most 30 days apart
register(
    StreamSpec(
        PROVIDER,
        "gmail_log",
        StreamKind.EVENTS,
        activities_reader(RENAMED_APPLICATIONS["gmail_log"], max_window=timedelta(days=1)),
        SCOPE_NAMES["reports"],
        600,
    )
)
register(
    StreamSpec(
        PROVIDER,
        "users",
        StreamKind.SNAPSHOT,
        read_users,
        SCOPE_NAMES["directory"],
        3600,
        ("user",),
        watch=ChangeWatch(("admin",), ("user", "privilege", "password", "2sv")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "tokens",
        StreamKind.SNAPSHOT,
        read_tokens,
        SCOPE_NAMES["tokens"],
        3600,
        ("token",),
        watch=ChangeWatch(("token", "admin"), ("authorize", "revoke", "token"), per_subject=True),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "role_assignments",
        StreamKind.SNAPSHOT,
        read_role_assignments,
        SCOPE_NAMES["roles"],
        3600,
        ("role_assignment",),
        watch=ChangeWatch(("admin",), ("role", "privilege")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "groups",
        StreamKind.SNAPSHOT,
        read_groups,
        SCOPE_NAMES["groups"],
        3600,
        ("group",),
        watch=ChangeWatch(("admin",), ("group",)),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "file_permissions",
        StreamKind.SNAPSHOT,
        read_file_permissions,
        SCOPE_NAMES["drive"],
        3600,
        ("file_permission",),
        watch=ChangeWatch(("drive",), ("acl", "visibility", "share", "permission"), per_subject=True),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "settings",
        StreamKind.SNAPSHOT,
        read_settings,
        SCOPE_NAMES["policies"],
        3600,
        ("tenant_settings",),
        watch=ChangeWatch(("admin",), ("setting", "policy", "2sv", "sso", "less_secure", "sharing")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "gmail",
        StreamKind.CONVERSATION,
        read_gmail,
        SCOPE_NAMES["gmail"],
        300,
        needs_config=("gmail_users",),
    )
)
