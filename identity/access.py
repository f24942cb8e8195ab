"""Who can access what: file permissions and app grants from snapshots, seen from either side.

For a file or an app: the people (and "anyone with the link", "everyone in domain X") who can
reach it. For a person: the files shared with them or owned by them and the apps acting for them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from core.db import Database
from core.paths import get_path
from core.snapshots import current_objects

HIGH_RISK_SCOPES = {
    "mail.readwrite", "mail.read", "mail.send", "files.readwrite.all", "files.read.all", "sites.readwrite.all",
    "directory.readwrite.all", "full_access_as_user", "https://mail.google.com/", "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/gmail.modify", "admin", "channels:history", "groups:history", "im:history", "files:read",
}  # fmt: skip


@dataclass(frozen=True)
class Grant:
    """One path by which a principal reaches a resource."""

    kind: str  # file | app
    provider: str
    resource_id: str
    resource_name: str | None
    principal: str | None  # e-mail, "anyone", "domain:x.test", or None when unknown
    role: str
    via: str  # anonymous_link | domain | direct | delegated_consent | admin_consent | token | install
    owner: str | None = None
    public: bool = False
    high_risk: bool = False
    scopes: tuple[str, ...] = ()


def _email(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and "@" in value else None


def _file_grant(provider: str, object_id: str, data: Mapping[str, Any]) -> Grant:
    file_id = str(
        data.get("fileId") or data.get("itemId") or get_path(data, "item.id") or object_id.split("/")[0]
    )
    name = data.get("fileName") or data.get("title") or get_path(data, "item.name")
    owner = _email(data.get("owner") or get_path(data, "item.owner") or data.get("ownerEmail"))
    roles = data.get("roles") or [data.get("role") or "reader"]
    role = ",".join(str(r) for r in roles)
    link_scope = str(get_path(data, "link.scope") or "").lower()
    kind = str(data.get("type") or "").lower()
    principal: str | None
    if link_scope == "anonymous" or kind == "anyone":
        principal, via, public = "anyone", "anonymous_link", True
    elif link_scope == "organization" or kind == "domain":
        principal, via, public = f"domain:{data.get('domain') or 'organisation'}", "domain", False
    else:
        principal = _email(
            data.get("emailAddress")
            or get_path(data, "grantedTo.user.email")
            or get_path(data, "grantedToV2.user.email")
            or get_path(data, "grantedTo.user.userPrincipalName")
        )
        via, public = "direct", False
    return Grant("file", provider, file_id, name, principal, role, via, owner, public)


def _scopes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(s for s in value.split(" ") if s)
    return tuple(str(s) for s in value or ())


def _app_grants(provider: str, object_type: str, object_id: str, data: Mapping[str, Any]) -> Iterator[Grant]:
    if object_type == "oauth_grant":
        scopes = _scopes(data.get("scope"))
        everyone = str(data.get("consentType")) == "AllPrincipals"
        principal = (
            "everyone"
            if everyone
            else (_email(data.get("principalUserPrincipalName")) or data.get("principalId"))
        )
        yield Grant(
            "app",
            provider,
            str(data.get("clientId") or object_id),
            data.get("clientDisplayName") or data.get("appDisplayName"),
            principal,
            "delegated",
            "admin_consent" if everyone else "delegated_consent",
            high_risk=any(s.lower() in HIGH_RISK_SCOPES for s in scopes),
            scopes=scopes,
        )
    elif object_type == "token":
        scopes = _scopes(data.get("scopes"))
        yield Grant(
            "app",
            provider,
            str(data.get("clientId") or object_id),
            data.get("displayText"),
            _email(data.get("userKey")),
            "delegated",
            "token",
            high_risk=any(s.lower() in HIGH_RISK_SCOPES for s in scopes),
            scopes=scopes,
        )
    elif object_type == "app":
        scopes = _scopes(data.get("scopes"))
        installer = _email(data.get("installed_by") or get_path(data, "installer.email"))
        yield Grant(
            "app",
            provider,
            str(data.get("id") or object_id),
            data.get("name"),
            installer or "workspace",
            "install",
            "install",
            high_risk=any(s.lower() in HIGH_RISK_SCOPES or s.lower().startswith("admin") for s in scopes),
            scopes=scopes,
        )


def resource_grants(session: Session) -> list[Grant]:
    grants: list[Grant] = []
    grouped = current_objects(session, ["file_permission", "oauth_grant", "token", "app"])
    for (_connection, provider), objects in grouped.items():
        for item in objects.get("file_permission", ()):
            grants.append(_file_grant(provider, item.object_id, item.data))
        for object_type in ("oauth_grant", "token", "app"):
            for item in objects.get(object_type, ()):
                grants.extend(_app_grants(provider, object_type, item.object_id, item.data))
    return grants


def who_can_access(db: Database, resource_id: str) -> list[Grant]:
    """Everyone who can reach a file or app (by id, or by name, case-insensitive)."""
    wanted = resource_id.lower()
    with db.session(readonly=True) as session:
        return [
            g
            for g in resource_grants(session)
            if g.resource_id.lower() == wanted or (g.resource_name or "").lower() == wanted
        ]


def what_can_access(db: Database, email: str, *, aliases: tuple[str, ...] = ()) -> list[Grant]:
    """Files shared with or owned by a person, and apps acting on their behalf (or for everyone)."""
    addresses = {email.lower(), *(a.lower() for a in aliases)}
    domains = {f"domain:{a.split('@', 1)[1]}" for a in addresses}
    with db.session(readonly=True) as session:
        return [
            g
            for g in resource_grants(session)
            if g.principal in addresses
            or g.owner in addresses
            or g.principal in domains
            or g.principal in ("everyone", "workspace")
        ]
