"""Google Workspace streams: Reports API activities, Directory inventory, Drive sharing, Gmail.

googleapiclient's own retries ignore Retry-After, so every call runs with ``num_retries=0``
under our retry policy, which waits exactly what a 429 asks and backs off on 5xx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from collectors.clients import google_service
from collectors.errors import (
    AuthenticationFailed,
    MalformedResponse,
    PermissionMissing,
    RequestRejected,
    StalePageToken,
    Throttled,
    TransientError,
)
from collectors.normalise.google import normalise_gmail_message
from collectors.normalise.records import NormaliseError
from collectors.streams.base import (
    ChangeWatch,
    Page,
    StreamContext,
    StreamKind,
    StreamSpec,
    changed_users,
    register,
    register_api,
)
from collectors.streams.windows import WindowPlan, event_pages

PROVIDER = "google"
APPLICATIONS = ("login", "admin", "drive", "token", "saml", "user_accounts")
_RATE_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)
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


class GoogleApi:
    """googleapiclient services for one connection, with our error classes and retry policy."""

    def __init__(self, ctx: StreamContext) -> None:
        self.ctx = ctx
        self.name = ctx.connection.name
        self._services: dict[tuple[str, str | None], Any] = {}

    def service(self, api: str, subject: str | None = None) -> Any:
        key = (api, subject)
        if key not in self._services:
            self._services[key] = google_service(self.ctx.connection, self.ctx.secrets, api, subject=subject)
        return self._services[key]

    @property
    def customer(self) -> str:
        return str(self.ctx.setting("customer_id") or "my_customer")

    def execute(
        self,
        build_request: Callable[[], Any],
        *,
        permission: str,
        kind: str | None = None,
        required: tuple[str, ...] = (),
        lists: tuple[str, ...] = (),
    ) -> Any:
        """Run one request under the retry policy. A body that parses but is not the promised
        resource (wrong `kind`, a `required` key missing, a `lists` key that is not a list) is
        malformed: a page cut short must never pass for an empty one."""

        def call() -> Any:
            body, uri = self._once(build_request, permission)
            problems = []
            if kind is not None and body.get("kind") != kind:
                problems.append(f"kind {body.get('kind')!r} is not {kind!r}")
            etag = body.get("etag")
            if isinstance(etag, str) and not (etag.startswith('"') and etag.endswith('"')):
                problems.append("its etag is cut short")
            problems += [f"no {key!r}" for key in required if key not in body]
            problems += [f"{key!r} is not a list" for key in lists if not isinstance(body.get(key, []), list)]
            if problems:
                raise MalformedResponse(
                    f"{self.name}: {_path(uri)} is not a valid page ({'; '.join(problems)})",
                    source=uri,
                    body=str(body)[:100_000],
                )
            return body

        return self.ctx.policy.run(call, on_wait=self.ctx.on_wait)

    def _once(self, build_request: Callable[[], Any], permission: str) -> tuple[Any, str]:
        import httplib2
        from google.auth.exceptions import RefreshError, TransportError
        from googleapiclient.errors import HttpError

        request = build_request()
        try:
            body = request.execute(num_retries=0)
        except HttpError as exc:
            raise self._classify(exc, request.uri, permission) from exc
        except ValueError as exc:  # JSON the model could not decode
            content = getattr(exc, "doc", "") or ""
            raise MalformedResponse(
                f"{self.name}: {_path(request.uri)} returned a body that is not JSON ({exc})",
                source=request.uri,
                body=content,
            ) from None
        except RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TransientError(f"{self.name}: token refresh failed, retryable ({exc})") from exc
            raise AuthenticationFailed(
                f"{self.name}: Google refused the service account ({exc}); check the key, that domain-wide "
                "delegation is granted for its client id, and the subject"
            ) from exc
        except (TransportError, httplib2.HttpLib2Error, OSError) as exc:
            raise TransientError(f"{self.name}: {_path(request.uri)}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"{self.name}: {_path(request.uri)} is not a JSON object", source=request.uri, body=str(body)
            )
        return body, request.uri

    def _classify(self, exc: Any, uri: str, permission: str) -> Exception:
        status = int(getattr(exc, "status_code", None) or exc.resp.status)
        reasons = (
            {d.get("reason") for d in (exc.error_details or []) if isinstance(d, dict)}
            if isinstance(exc.error_details, list)
            else set()
        )
        retry_after = exc.resp.get("retry-after") if exc.resp is not None else None
        where = _path(uri)
        if status == 429 or (status == 403 and reasons & _RATE_REASONS):
            try:
                wait = max(0.0, float(retry_after)) if retry_after is not None else self.ctx.policy.backoff(1)
            except ValueError:
                wait = 1.0
            return Throttled(f"{self.name}: {where} rate limited ({status})", retry_after=wait)
        if status >= 500:
            return TransientError(f"{self.name}: {where}: HTTP {status}")
        if status == 401:
            return AuthenticationFailed(
                f"{self.name}: {where} still answered 401 after a token refresh; check the service account and "
                "domain-wide delegation"
            )
        if status == 403:
            return PermissionMissing(
                f"{self.name}: {where} refused (403 {exc.reason}); authorise scope {permission} for the service "
                "account's client id (domain-wide delegation) and check the subject is an admin",
                permission=permission,
            )
        return RequestRejected(
            f"{self.name}: {where}: HTTP {status} {exc.reason}", status=status, code=str(status)
        )


def _path(uri: str) -> str:
    from urllib.parse import urlparse

    return urlparse(uri).path


def open_google(ctx: StreamContext) -> GoogleApi:
    return GoogleApi(ctx)


register_api(PROVIDER, open_google)


# ---- Reports API ------------------------------------------------------------------------------


def activities_reader(application: str) -> Any:
    def read(ctx: StreamContext) -> Iterator[Page]:
        api: GoogleApi = ctx.api
        permission = SCOPE_NAMES["reports"]

        def fetch(start: datetime, end: datetime, token: Any) -> tuple[list[Any], Any, str]:
            params: dict[str, Any] = {
                "userKey": "all",
                "applicationName": application,
                "startTime": rfc3339(start),
                "endTime": rfc3339(end),
                "maxResults": min(ctx.page_size, 1000),
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

        plan = WindowPlan.for_context(ctx, max_age=timedelta(days=180) - timedelta(hours=1))
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


def read_settings(ctx: StreamContext) -> Iterator[Page]:
    """Workspace security settings (Cloud Identity policies: 2SV, sharing, less secure apps...)."""
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
                objects[str(policy["name"])] = policy
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
