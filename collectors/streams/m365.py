"""Microsoft 365 / Entra streams: Graph audit logs, the Management Activity API, inventory, conversations."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from collectors.streams.base import (
    ChangeWatch,
    Page,
    StreamContext,
    StreamKind,
    StreamSpec,
    changed_users,
    open_api,
    register,
)
from collectors.streams.windows import WindowPlan, event_pages
from core.normalise.m365 import normalise_mail_message, normalise_teams_message
from core.normalise.records import NormaliseError
from providers.errors import MalformedResponse, RequestRejected, StalePageToken
from providers.m365 import M365Api, same_origin, url_path

PROVIDER = "m365"
UNIFIED_AUDIT_CONTENT_TYPES = (
    "Audit.AzureActiveDirectory",
    "Audit.Exchange",
    "Audit.SharePoint",
    "Audit.General",
)


def graph_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- event streams (Graph audit logs) ---------------------------------------------------------


# the documented largest `$top` of the Graph reports a stream reads (saas-apis.md §7); None: the
# configured page size (`page_size`, default 500)
SIGNINS_MAX_TOP = 1000
DIRECTORY_AUDITS_MAX_TOP = 1000


def graph_event_reader(
    path: str, time_field: str, permission: str, extra_filter: str = "", max_top: int | None = None
) -> Any:
    def read(ctx: StreamContext) -> Iterator[Page]:
        api: M365Api = ctx.api
        top = ctx.page_size_up_to(max_top) if max_top else ctx.page_size

        def fetch(start: datetime, end: datetime, token: Any) -> tuple[list[Any], Any, str]:
            if token:
                return api.graph_page(token, None, permission)
            flt = f"{time_field} ge {graph_time(start)} and {time_field} lt {graph_time(end)}"
            if extra_filter:
                flt = f"({flt}) and {extra_filter}"
            return api.graph_page(path, {"$filter": flt, "$top": top}, permission)

        yield from event_pages(ctx, WindowPlan.for_context(ctx), fetch)

    return read


def beta_url(ctx: StreamContext) -> str:
    configured = ctx.setting("graph_beta_url")
    if configured:
        return str(configured).rstrip("/")
    return ctx.api.clients.graph_base_url.rsplit("/", 1)[0] + "/beta"


def read_signins(ctx: StreamContext) -> Iterator[Page]:
    """Interactive sign-ins (v1.0) and non-interactive ones (beta, `signInEventTypes`), each with
    its own sub-checkpoint; `signin_event_types` in config can limit them to one kind."""
    kinds = ctx.setting("signin_event_types") or ["interactiveUser", "nonInteractiveUser"]
    api: M365Api = ctx.api
    permission = "AuditLog.Read.All"
    top = ctx.page_size_up_to(SIGNINS_MAX_TOP)
    for kind in kinds:

        def fetch(start: datetime, end: datetime, token: Any, kind: str = kind) -> tuple[list[Any], Any, str]:
            if token:
                return api.graph_page(token, None, permission)
            flt = f"createdDateTime ge {graph_time(start)} and createdDateTime lt {graph_time(end)}"
            if kind == "interactiveUser":
                return api.graph_page("auditLogs/signIns", {"$filter": flt, "$top": top}, permission)
            flt += " and signInEventTypes/any(t: t ne 'interactiveUser')"
            return api.graph_page(
                f"{beta_url(ctx)}/auditLogs/signIns", {"$filter": flt, "$top": top}, permission
            )

        yield from event_pages(ctx, WindowPlan.for_context(ctx), fetch, key=kind)


# ---- unified audit log (Office 365 Management Activity API) ---------------------------------------


def _start_subscription(ctx: StreamContext, content_type: str) -> None:
    api: M365Api = ctx.api
    started = ctx.extra.setdefault("subscriptions", set())
    if content_type in started:
        return
    try:
        api.request(
            f"{api.clients.management_feed_url}/subscriptions/start",
            params={"contentType": content_type, "PublisherIdentifier": ctx.connection.tenant},
            permission="ActivityFeed.Read",
            management=True,
            method="POST",
        )
    except RequestRejected as exc:
        if "AF20024" not in exc.code and "already" not in str(exc).lower():  # already enabled is fine
            raise
    started.add(content_type)


def _listing_problem(listing: list[Any]) -> str | None:
    if all(isinstance(b, dict) and b.get("contentUri") for b in listing):
        return None
    return "a content listing entry has no contentUri"


def _content_page(
    ctx: StreamContext, content_type: str, start: datetime, end: datetime, token: Any
) -> tuple[list[Any], Any, str]:
    """One listing page of content blobs, with the records of every blob on it."""
    api: M365Api = ctx.api
    permission = "ActivityFeed.Read"
    if token:
        if not same_origin(token, api.clients.management_feed_url):
            raise StalePageToken("stored NextPageUri points elsewhere")
        listing, response = api.request(
            token, permission=permission, management=True, expect=list, check=_listing_problem
        )
    else:
        _start_subscription(ctx, content_type)
        listing, response = api.request(
            f"{api.clients.management_feed_url}/subscriptions/content",
            params={
                "contentType": content_type,
                "startTime": start.strftime("%Y-%m-%dT%H:%M:%S"),
                "endTime": end.strftime("%Y-%m-%dT%H:%M:%S"),
                "PublisherIdentifier": ctx.connection.tenant,
            },
            permission=permission,
            management=True,
            expect=list,
            check=_listing_problem,
        )
    uris = [blob["contentUri"] for blob in listing]
    if ctx.probe:
        uris = uris[:1]
    records: list[Any] = []
    for content in _blob_contents(ctx, uris, permission):
        records.extend(content)
    return records, response.headers.get("NextPageUri") or None, response.url


BLOB_FETCHERS = 4  # content blobs of one listing page fetched at once (config `blob_fetchers`)


def _blob_contents(ctx: StreamContext, uris: list[str], permission: str) -> Iterator[list[Any]]:
    """Each blob's records, in listing order, fetched `blob_fetchers` at a time: a listing page
    names up to a few dozen hourly blobs, and one request at a time left the stream waiting on
    each answer in turn. The page is the same records in the same order either way (so are its
    checkpoint and what a crash leaves); a blob that fails after its retries fails the page.
    Each fetcher thread has its own API client (a requests.Session is not shared by threads)."""

    def fetch(api: M365Api, uri: str) -> list[Any]:
        content, _ = api.request(uri, permission=permission, management=True, expect=list)
        return list(content)

    workers = max(1, int(ctx.setting("blob_fetchers", BLOB_FETCHERS)))
    if workers == 1 or len(uris) <= 1:
        for uri in uris:
            yield fetch(ctx.api, uri)
        return
    pool = ctx.extra.get("blob_pool")
    if pool is None:
        local = threading.local()

        def own_api() -> M365Api:
            api = getattr(local, "api", None)
            if api is None:
                api = local.api = open_api(ctx)
            return api

        pool = ctx.extra["blob_pool"] = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect-blobs"),
            own_api,
        )
    executor, own_api = pool
    yield from executor.map(lambda uri: fetch(own_api(), uri), uris)


def read_unified_audit(ctx: StreamContext) -> Iterator[Page]:
    types = ctx.setting("content_types") or list(UNIFIED_AUDIT_CONTENT_TYPES)
    plan = WindowPlan.for_context(
        ctx, max_window=timedelta(hours=23), max_age=timedelta(days=7) - timedelta(minutes=5)
    )
    try:
        for content_type in types:

            def fetch(
                start: datetime, end: datetime, token: Any, ct: str = content_type
            ) -> tuple[list[Any], Any, str]:
                return _content_page(ctx, ct, start, end, token)

            yield from event_pages(ctx, plan, fetch, key=content_type)
            if ctx.probe:
                return
    finally:
        pool = ctx.extra.pop("blob_pool", None)
        if pool is not None:
            pool[0].shutdown(wait=False, cancel_futures=True)


# ---- snapshots --------------------------------------------------------------------------------


def snapshot_reader(
    object_type: str,
    path: str,
    permission: str,
    params: Mapping[str, Any] | None = None,
    id_field: str = "id",
) -> Any:
    def read(ctx: StreamContext) -> Iterator[Page]:
        api: M365Api = ctx.api
        query = {**(params or {}), "$top": ctx.page_size if ctx.probe else (params or {}).get("$top", 999)}
        objects: dict[str, Any] = {}
        bad: list[tuple[str, str, Any]] = []
        for item in api.graph_all(path, query, permission):
            if not isinstance(item, dict) or not item.get(id_field):
                bad.append((path, f"{object_type} without {id_field!r}", item))
                continue
            objects[str(item[id_field])] = item
            if ctx.probe:
                break
        yield Page(object_type=object_type, objects=objects, source=path, quarantined=bad)

    return read


def delta_snapshot_reader(
    object_type: str,
    path: str,
    permission: str,
    params: Mapping[str, Any] | None = None,
    delta_select: str | None = None,
) -> Any:
    """A snapshot stream on a Graph delta query: between reconciliations, follow the stored
    `@odata.deltaLink` (changes, `@removed` deletions); to reconcile, take a fresh link
    (`$deltatoken=latest`, before the listing so nothing in between is missed), then list in full
    (the full listing may hold properties delta cannot give, e.g. signInActivity)."""
    full_read = snapshot_reader(object_type, path, permission, params)

    def read(ctx: StreamContext) -> Iterator[Page]:
        api: M365Api = ctx.api
        links = dict(ctx.cursor.get("delta_links") or {})
        link = links.get(object_type)
        if ctx.probe:
            yield from full_read(ctx)
            return
        if link and not ctx.full_read:
            try:
                objects, removed, bad, link = _delta_changes(api, link, object_type, permission)
            except StalePageToken:
                link = None  # the provider forgot the sync state: reconcile now
            else:
                yield Page(
                    object_type=object_type,
                    objects=objects,
                    removed=removed,
                    partial=True,
                    merge=True,
                    source=f"{path}/delta",
                    quarantined=bad,
                    cursor={**ctx.cursor, "delta_links": {**links, object_type: link}},
                )
                return
        query = {"$deltatoken": "latest"} | ({"$select": delta_select} if delta_select else {})
        _, _, _, latest = _delta_changes(api, f"{path}/delta", object_type, permission, query)
        for page in full_read(ctx):
            yield replace(page, cursor={**ctx.cursor, "delta_links": {**links, object_type: latest}})

    return read


def _delta_changes(
    api: M365Api,
    link: str,
    object_type: str,
    permission: str,
    params: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str], list[tuple[str, str, Any]], str]:
    """Page a delta round to its end: (changed objects, removed ids, quarantined, next delta link)."""
    objects: dict[str, Any] = {}
    removed: list[str] = []
    bad: list[tuple[str, str, Any]] = []
    url: str | None = link
    while url:
        try:
            body, response = api.request(
                url if url.startswith(("http://", "https://")) else api.graph_url(url),
                params=params,
                permission=permission,
                expect=dict,
                key="value",
            )
        except RequestRejected as exc:
            if exc.status in (400, 404, 410):
                raise StalePageToken(f"{api.name}: delta link no longer accepted ({exc})") from exc
            raise
        params = None
        for item in body["value"]:
            if not isinstance(item, dict) or not item.get("id"):
                bad.append((response.url, f"{object_type} delta entry without 'id'", item))
            elif "@removed" in item:
                objects.pop(str(item["id"]), None)
                removed.append(str(item["id"]))
            else:
                objects[str(item["id"])] = item
        url = body.get("@odata.nextLink")
        if not url:
            delta_link = body.get("@odata.deltaLink")
            if not isinstance(delta_link, str) or not same_origin(delta_link, api.clients.graph_base_url):
                raise MalformedResponse(
                    f"{api.name}: {url_path(response.url)} ended a delta round without a usable @odata.deltaLink",
                    source=response.url,
                    body=response.text,
                )
            return objects, removed, bad, delta_link
    raise AssertionError("unreachable")


def read_security_defaults(ctx: StreamContext) -> Iterator[Page]:
    api: M365Api = ctx.api
    policy = api.graph_object("policies/identitySecurityDefaultsEnforcementPolicy", "Policy.Read.All")
    yield Page(object_type="security_defaults", objects={str(policy.get("id", "securityDefaults")): policy})


# Tenant-wide settings objects Graph exposes, by snapshot id (what posture checks name): the
# path and the application permission it needs.
TENANT_SETTINGS = {
    "authorizationPolicy": ("policies/authorizationPolicy", "Policy.Read.All"),
    "adminConsentRequestPolicy": ("policies/adminConsentRequestPolicy", "Policy.Read.All"),
    "sharepoint": ("admin/sharepoint/settings", "SharePointTenantSettings.Read.All"),
}


def read_tenant_settings(ctx: StreamContext) -> Iterator[Page]:
    """Guest, consent and app-registration policy and SharePoint's sharing settings, one snapshot
    each (Exchange Online's settings have no Graph API)."""
    api: M365Api = ctx.api
    objects: dict[str, Any] = {}
    for object_id, (path, permission) in TENANT_SETTINGS.items():
        body = api.graph_object(path, permission)
        objects[object_id] = {k: v for k, v in body.items() if not k.startswith("@odata.")}
    yield Page(object_type="tenant_settings", objects=objects, source="policies, admin/sharepoint/settings")


def read_inbox_rules(ctx: StreamContext) -> Iterator[Page]:
    """Inbox rules (forwarding, deletion) of the selected mailboxes, or of every user."""
    api: M365Api = ctx.api
    permission = "MailboxSettings.Read"
    mailboxes = _mailboxes(ctx, "rule_mailboxes")
    objects: dict[str, Any] = {}
    paths = {f"users/{mailbox}/mailFolders/inbox/messageRules": mailbox for mailbox in mailboxes}
    # 20 mailboxes to a Graph batch request; a probe reads one
    for path, rules in api.graph_collections(list(paths)[:1] if ctx.probe else list(paths), permission):
        mailbox = paths[path]
        for rule in rules or ():  # None: no mailbox (an unlicensed user)
            if isinstance(rule, dict) and rule.get("id"):
                objects[f"{mailbox}/{rule['id']}"] = {**rule, "mailbox": mailbox}
    yield Page(
        object_type="inbox_rule",
        objects=objects,
        source="messageRules",
        partial=not ctx.full_read,
        covers_field="mailbox",
        covers=frozenset(m.lower() for m in mailboxes),
    )


def _mailboxes(ctx: StreamContext, key: str) -> list[str]:
    """Every selected mailbox to reconcile; between, only those audit events named (by UPN)."""
    if ctx.full_read:
        return selected_users(ctx, key, default_all=True)
    return changed_users(ctx, key)


def read_file_permissions(ctx: StreamContext) -> Iterator[Page]:
    """Sharing links and grants on the files in each user's OneDrive (top level of the drive)."""
    api: M365Api = ctx.api
    permission = "Files.Read.All"
    owners = _mailboxes(ctx, "drive_users")
    objects: dict[str, Any] = {}
    drives = {f"users/{owner}/drive/root/children": owner for owner in owners}
    # each owner's top-level items, then every item's permissions, 20 reads to a Graph batch request
    items: dict[str, tuple[str, str, dict[str, Any]]] = {}  # permissions path -> (owner, drive, item)
    for path, children in api.graph_collections(list(drives)[:1] if ctx.probe else list(drives), permission):
        owner = drives[path]
        for item in children or ():  # None: no drive
            if not isinstance(item, dict) or not item.get("id"):
                continue
            drive_id = (item.get("parentReference") or {}).get("driveId") or owner
            items[f"drives/{drive_id}/items/{item['id']}/permissions"] = (owner, drive_id, item)
    for path, perms in api.graph_collections(list(items), permission):
        owner, drive_id, item = items[path]
        for perm in perms or ():
            if isinstance(perm, dict) and perm.get("id"):
                objects[f"{drive_id}/{item['id']}/{perm['id']}"] = {
                    **perm,
                    "item": {
                        "id": item["id"],
                        "name": item.get("name"),
                        "driveId": drive_id,
                        "webUrl": item.get("webUrl"),
                    },
                    "owner": owner,
                }
    yield Page(
        object_type="file_permission",
        objects=objects,
        source="drive permissions",
        partial=not ctx.full_read,
        covers_field="owner",
        covers=frozenset(o.lower() for o in owners),
    )


# ---- conversations ----------------------------------------------------------------------------


def read_teams_messages(ctx: StreamContext) -> Iterator[Page]:
    """Chats of the selected users (`teams_users`, via getAllMessages) and messages with their replies
    in the selected channels (`teams_channels`: [{team, channel}] or ["*"]), by lastModifiedDateTime."""
    api: M365Api = ctx.api
    permission = "Chat.Read.All"
    for user in selected_users(ctx, "teams_users"):

        def fetch(start: datetime, end: datetime, token: Any, user: str = user) -> tuple[list[Any], Any, str]:
            if token:
                items, link, source = api.graph_page(token, None, permission)
            else:
                flt = f"lastModifiedDateTime gt {graph_time(start)} and lastModifiedDateTime lt {graph_time(end)}"
                items, link, source = api.graph_page(
                    f"users/{user}/chats/getAllMessages",
                    {"$filter": flt, "$top": min(ctx.page_size, 50)},
                    permission,
                )
            return _messages(items, normalise_teams_message), link, source

        yield from _conversation_pages(ctx, fetch, key=f"teams:{user}")
    for team, channel, name in _selected_channels(ctx):
        yield from _conversation_pages(
            ctx, _channel_fetch(ctx, team, channel, name), key=f"channel:{team}/{channel}"
        )


def _selected_channels(ctx: StreamContext) -> list[tuple[str, str, str | None]]:
    """(team id, channel id, channel name): names from the channel list (``["*"]``) or the
    configuration's optional ``name``, kept as ``meta.channel_name`` on each message."""
    chosen = ctx.setting("teams_channels") or []
    api: M365Api = ctx.api
    permission = "ChannelMessage.Read.All"
    if chosen != ["*"]:
        return [
            (str(c["team"]), str(c["channel"]), str(c.get("name") or "") or None)
            for c in chosen
            if isinstance(c, Mapping)
        ]
    found = []
    for team in api.graph_all("teams", None, "Team.ReadBasic.All"):
        for channel in api.graph_all(f"teams/{team['id']}/channels", None, permission):
            found.append((str(team["id"]), str(channel["id"]), str(channel.get("displayName") or "") or None))
    return found


def _channel_fetch(ctx: StreamContext, team: str, channel: str, name: str | None = None) -> Any:
    api: M365Api = ctx.api
    permission = "ChannelMessage.Read.All"
    base = f"teams/{team}/channels/{channel}/messages"

    def fetch(start: datetime, end: datetime, token: Any) -> tuple[list[Any], Any, str]:
        if token:
            items, link, source = api.graph_page(token, None, permission)
        else:
            flt = f"lastModifiedDateTime gt {graph_time(start)} and lastModifiedDateTime lt {graph_time(end)}"
            items, link, source = api.graph_page(
                base, {"$filter": flt, "$top": min(ctx.page_size, 50)}, permission
            )
        replies = [
            reply
            for item in items
            if isinstance(item, dict) and item.get("id")
            for reply in api.graph_all(f"{base}/{item['id']}/replies", None, permission)
        ]
        messages = _messages(items + replies, normalise_teams_message)
        if name:
            for message in messages:
                message.meta["channel_name"] = name
        return messages, link, source

    return fetch


def read_mail(ctx: StreamContext) -> Iterator[Page]:
    """Messages of the selected mailboxes (`mailboxes`), by receivedDateTime window."""
    api: M365Api = ctx.api
    permission = "Mail.Read"
    for mailbox in selected_users(ctx, "mailboxes"):

        def fetch(
            start: datetime, end: datetime, token: Any, mailbox: str = mailbox
        ) -> tuple[list[Any], Any, str]:
            if token:
                items, link, source = api.graph_page(token, None, permission)
            else:
                flt = f"receivedDateTime ge {graph_time(start)} and receivedDateTime lt {graph_time(end)}"
                items, link, source = api.graph_page(
                    f"users/{mailbox}/messages",
                    {
                        "$filter": flt,
                        "$top": ctx.page_size,
                        "$select": "id,subject,from,toRecipients,receivedDateTime,internetMessageId,conversationId,bodyPreview,body",
                    },
                    permission,
                )
            return _messages(items, lambda m: normalise_mail_message(m, mailbox)), link, source

        yield from _conversation_pages(ctx, fetch, key=f"mail:{mailbox}")


def selected_users(ctx: StreamContext, key: str, *, default_all: bool = False) -> list[str]:
    """The users named in config `key`; ``["*"]`` (or nothing, with `default_all`) means every user."""
    chosen = [str(u) for u in ctx.setting(key) or []]
    if chosen and chosen != ["*"]:
        return chosen
    if not chosen and not default_all:
        return []
    api: M365Api = ctx.api
    users = api.graph_all("users", {"$select": "id,userPrincipalName", "$top": 999}, "User.Read.All")
    return [str(u.get("userPrincipalName") or u.get("id")) for u in users if isinstance(u, dict)]


def _messages(items: list[Any], convert: Any) -> list[Any]:
    out = []
    for item in items:
        try:
            out.append(convert(item))
        except NormaliseError:
            continue  # system messages without a body or time carry nothing to link
    return out


def _conversation_pages(ctx: StreamContext, fetch: Any, *, key: str) -> Iterator[Page]:
    yield from event_pages(ctx, WindowPlan.for_context(ctx), fetch, key=key)


# ---- registration -----------------------------------------------------------------------------

register(StreamSpec(PROVIDER, "signins", StreamKind.EVENTS, read_signins, "AuditLog.Read.All", 300))
register(
    StreamSpec(
        PROVIDER,
        "directory_audits",
        StreamKind.EVENTS,
        graph_event_reader(
            "auditLogs/directoryAudits",
            "activityDateTime",
            "AuditLog.Read.All",
            max_top=DIRECTORY_AUDITS_MAX_TOP,
        ),
        "AuditLog.Read.All",
        300,
    )
)
register(
    StreamSpec(PROVIDER, "unified_audit", StreamKind.EVENTS, read_unified_audit, "ActivityFeed.Read", 600)
)
register(
    StreamSpec(
        PROVIDER,
        "risk_detections",
        StreamKind.EVENTS,
        graph_event_reader(
            "identityProtection/riskDetections", "detectedDateTime", "IdentityRiskEvent.Read.All"
        ),
        "IdentityRiskEvent.Read.All",
        600,
    )
)
_USER_SELECT = (
    "id,userPrincipalName,displayName,mail,accountEnabled,userType,createdDateTime,externalUserState,"
    "signInActivity,assignedLicenses,onPremisesSyncEnabled"
)
_DIRECTORY_AUDITS = ("directory_audits",)
# (stream, object type, resource, permission, query, delta $select or None, audit words that re-read it)
_SNAPSHOTS: tuple[tuple[str, str, str, str, dict[str, Any] | None, str | None, tuple[str, ...]], ...] = (
    (
        "users",
        "user",
        "users",
        "User.Read.All + AuditLog.Read.All",
        {"$select": _USER_SELECT},
        _USER_SELECT.replace(",signInActivity", ""),  # delta cannot give sign-in activity
        (),
    ),
    (
        "auth_methods",
        "auth_method_registration",
        "reports/authenticationMethods/userRegistrationDetails",
        "AuditLog.Read.All",
        None,
        None,
        ("security info", "authentication method", "strongauthentication"),
    ),
    ("groups", "group", "groups", "Group.Read.All", None, "", ()),
    (
        "role_assignments",
        "role_assignment",
        "roleManagement/directory/roleAssignments",
        "RoleManagement.Read.Directory",
        {"$expand": "principal"},
        None,
        ("role",),
    ),
    (
        "ca_policies",
        "ca_policy",
        "identity/conditionalAccess/policies",
        "Policy.Read.All",
        None,
        None,
        ("conditional access", "policy"),
    ),
    (
        "oauth_grants",
        "oauth_grant",
        "oauth2PermissionGrants",
        "Directory.Read.All",
        None,
        None,
        ("consent", "permission grant", "oauth2"),
    ),
    ("service_principals", "service_principal", "servicePrincipals", "Application.Read.All", None, "", ()),
)
for _name, _type, _resource, _perm, _params, _delta_select, _words in _SNAPSHOTS:
    _delta = _delta_select is not None
    register(
        StreamSpec(
            PROVIDER,
            _name,
            StreamKind.SNAPSHOT,
            delta_snapshot_reader(_type, _resource, _perm, _params, _delta_select or None)
            if _delta
            else snapshot_reader(_type, _resource, _perm, _params),
            _perm,
            3600,
            (_type,),
            delta=_delta,
            watch=None if _delta else ChangeWatch(_DIRECTORY_AUDITS, _words),
        )
    )
register(
    StreamSpec(
        PROVIDER,
        "tenant_settings",
        StreamKind.SNAPSHOT,
        read_tenant_settings,
        "Policy.Read.All",
        3600,
        ("tenant_settings",),
        watch=ChangeWatch(_DIRECTORY_AUDITS, ("authorization policy", "consent", "sharepoint", "policy")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "security_defaults",
        StreamKind.SNAPSHOT,
        read_security_defaults,
        "Policy.Read.All",
        3600,
        ("security_defaults",),
        watch=ChangeWatch(_DIRECTORY_AUDITS, ("policy", "security defaults")),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "inbox_rules",
        StreamKind.SNAPSHOT,
        read_inbox_rules,
        "MailboxSettings.Read",
        3600,
        ("inbox_rule",),
        watch=ChangeWatch(("unified_audit",), ("inboxrule",), per_subject=True),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "file_permissions",
        StreamKind.SNAPSHOT,
        read_file_permissions,
        "Files.Read.All",
        3600,
        ("file_permission",),
        watch=ChangeWatch(
            ("unified_audit",),
            ("sharing", "anonymouslink", "companylink", "securelink", "permission"),
            per_subject=True,
        ),
    )
)
register(
    StreamSpec(
        PROVIDER,
        "teams_messages",
        StreamKind.CONVERSATION,
        read_teams_messages,
        "Chat.Read.All",
        300,
        needs_config=("teams_users",),
    )
)
register(
    StreamSpec(
        PROVIDER, "mail", StreamKind.CONVERSATION, read_mail, "Mail.Read", 300, needs_config=("mailboxes",)
    )
)
