"""From stored events to the two signals anomaly detection uses: sign-ins and file activity.

Sign-ins come from Entra sign-in logs, Google login activity and Slack audit logins, each with
its own field names; this module is the one place that knows them. The result is columnar
(numpy arrays) so that baselines and scoring run vectorised over hundreds of thousands of rows.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np

from detectors.anomaly.geo import GeoLocator

SIGNIN_STREAMS = {("m365", "signins"), ("google", "login"), ("slack", "audit")}
ACTIVITY_STREAMS = {("m365", "unified_audit"), ("google", "drive"), ("slack", "audit")}

# Entra error codes: MFA was required or was denied (not password failures).
_M365_MFA_DENIED = {500121, 50158, 50097}
_M365_MFA_INTERRUPT = {50074, 50076, 50079, 50072, 50125}


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    MFA_DENIED = "mfa_denied"
    MFA_PROMPT = "mfa_prompt"


class ActivityKind(StrEnum):
    DOWNLOAD = "download"
    SHARE = "share"
    DELETE = "delete"


ACTIVITY_ACTIONS: dict[str, ActivityKind] = {
    # M365 unified audit (SharePoint / OneDrive)
    "filedownloaded": ActivityKind.DOWNLOAD,
    "filesyncdownloadedfull": ActivityKind.DOWNLOAD,
    "filedeleted": ActivityKind.DELETE,
    "filerecycled": ActivityKind.DELETE,
    "filedeletedfirststagerecyclebin": ActivityKind.DELETE,
    "sharingset": ActivityKind.SHARE,
    "anonymouslinkcreated": ActivityKind.SHARE,
    "sharinginvitationcreated": ActivityKind.SHARE,
    "companylinkcreated": ActivityKind.SHARE,
    "addedtosecurelink": ActivityKind.SHARE,
    # Google Drive
    "download": ActivityKind.DOWNLOAD,
    "delete": ActivityKind.DELETE,
    "trash": ActivityKind.DELETE,
    "change_user_access": ActivityKind.SHARE,
    "change_document_visibility": ActivityKind.SHARE,
    "change_document_access_scope": ActivityKind.SHARE,
    "change_acl_editors": ActivityKind.SHARE,
    # Slack audit
    "file_downloaded": ActivityKind.DOWNLOAD,
    "file_deleted": ActivityKind.DELETE,
    "file_shared": ActivityKind.SHARE,
    "file_public_link_created": ActivityKind.SHARE,
}


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """The columns of an Event row this module reads (so callers can stream rows cheaply)."""

    id: int
    provider: str
    stream: str
    occurred_at: datetime
    actor: str | None
    action: str | None
    ip: str | None
    country: str | None
    raw: Mapping[str, Any]
    # the provider's id of the event: orders events of one instant whatever order they were stored in
    key: str = ""


def _get(raw: Mapping[str, Any], *path: str) -> Any:
    value: Any = raw
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _param(raw: Mapping[str, Any], name: str) -> Any:
    params = raw.get("parameters")
    if isinstance(params, Mapping):
        return params.get(name)
    if isinstance(params, list):  # the raw Reports API form
        for item in params:
            if isinstance(item, Mapping) and item.get("name") == name:
                for slot in ("value", "boolValue", "intValue", "multiValue"):
                    if slot in item:
                        return item[slot]
    return None


_BROWSER = re.compile(r"(Edg|Edge|Chrome|Firefox|Safari|Slack|Opera|MSIE|Trident)[/ ]?", re.IGNORECASE)
_OS = re.compile(r"(Windows|Mac OS X|Macintosh|iPhone|iPad|Android|Linux|CrOS)", re.IGNORECASE)


@lru_cache(maxsize=16_384)  # a tenant's sign-ins carry a few thousand user agents at most
def device_from_user_agent(ua: str | None) -> str | None:
    """A coarse device fingerprint (OS family + browser family): versions change, devices do not."""
    if not ua:
        return None
    os_match = _OS.search(ua)
    browser = _BROWSER.findall(ua)
    family = browser[-1] if browser else ua.split("/", 1)[0][:40]
    if family.lower() in ("edg",):
        family = "Edge"
    return f"{(os_match.group(1) if os_match else 'other').lower()}|{family.lower()}"


def _m365_device(raw: Mapping[str, Any]) -> str | None:
    detail = raw.get("deviceDetail") or {}
    if detail.get("deviceId"):
        return f"id:{detail['deviceId']}"
    if raw.get("userAgent"):
        return device_from_user_agent(raw["userAgent"])
    os_name, browser = detail.get("operatingSystem"), detail.get("browser")
    if not os_name and not browser:
        return None
    family = str(browser or "").split(" ")[0]
    return f"{str(os_name or 'other').lower()}|{family.lower()}"


def _m365_outcome(raw: Mapping[str, Any]) -> Outcome:
    status = raw.get("status") or {}
    try:
        code = int(status.get("errorCode") or 0)
    except (TypeError, ValueError):
        code = -1
    if code == 0:
        return Outcome.SUCCESS
    details = f"{status.get('failureReason') or ''} {status.get('additionalDetails') or ''}".lower()
    if code in _M365_MFA_DENIED or "denied" in details or "declined" in details:
        return Outcome.MFA_DENIED
    if code in _M365_MFA_INTERRUPT:
        return Outcome.MFA_PROMPT
    return Outcome.FAILURE


@dataclass(frozen=True, slots=True)
class SignIn:
    event_id: int
    provider: str
    actor: str
    ts: float
    ip: str | None
    country: str | None
    network: str | None
    device: str | None
    latitude: float | None
    longitude: float | None
    outcome: Outcome
    city: str | None = None
    key: str = ""  # the event's provider id: orders one person's sign-ins of the same instant

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.ts, UTC)


def signin_from(event: StoredEvent, geo: GeoLocator) -> SignIn | None:
    """Normalise one stored event into a sign-in, or None when it is not one."""
    raw = event.raw
    provider, stream = event.provider, event.stream
    action = (event.action or "").lower()
    lat = lon = None
    city = None
    if (provider, stream) == ("m365", "signins"):
        actor = raw.get("userPrincipalName") or event.actor
        outcome = _m365_outcome(raw)
        ip = raw.get("ipAddress") or event.ip
        location = raw.get("location") or {}
        country = location.get("countryOrRegion") or event.country
        coords = location.get("geoCoordinates") or {}
        lat, lon = coords.get("latitude"), coords.get("longitude")
        city = location.get("city")
        device = _m365_device(raw)
    elif (provider, stream) == ("google", "login"):
        name = (raw.get("name") or action or "").lower()
        if name == "login_success":
            outcome = Outcome.SUCCESS
        elif name == "login_failure":
            outcome = Outcome.FAILURE
        elif name in ("login_challenge", "login_verification"):
            status = str(_param(raw, "login_challenge_status") or "").lower()
            outcome = Outcome.MFA_DENIED if "fail" in status or "denied" in status else Outcome.MFA_PROMPT
        else:
            return None
        actor = _get(raw, "actor", "email") or event.actor
        ip = raw.get("ipAddress") or event.ip
        country, device = event.country, None
    elif (provider, stream) == ("slack", "audit"):
        name = (raw.get("action") or action or "").lower()
        if name == "user_login":
            outcome = Outcome.SUCCESS
        elif name == "user_login_failed":
            outcome = Outcome.FAILURE
        else:
            return None
        actor = _get(raw, "actor", "user", "email") or event.actor
        ip = _get(raw, "context", "ip_address") or event.ip
        country = event.country
        device = device_from_user_agent(_get(raw, "context", "ua"))
    else:
        return None
    if not actor:
        return None
    info = geo.lookup(ip)
    country = (country or info.country or None) and str(country or info.country).upper()
    if lat is None and info.latitude is not None:
        lat, lon = info.latitude, info.longitude
    return SignIn(
        event_id=event.id,
        provider=provider,
        # interned: a day's sign-ins are held until the day is folded in, and each person's
        # name and addresses repeat across them (one string each, not one per sign-in)
        actor=sys.intern(str(actor).lower()),
        ts=event.occurred_at.timestamp(),
        ip=sys.intern(ip) if type(ip) is str else ip,
        country=country,
        network=info.network,
        device=device,
        latitude=float(lat) if lat is not None else None,
        longitude=float(lon) if lon is not None else None,
        outcome=outcome,
        city=city,
        key=event.key,
    )


@dataclass(frozen=True, slots=True)
class Activity:
    event_id: int
    provider: str
    actor: str
    ts: float
    kind: ActivityKind
    target: str | None


def activity_from(event: StoredEvent) -> Activity | None:
    """A download / share / delete by a person, or None."""
    raw = event.raw
    name = (event.action or raw.get("Operation") or raw.get("name") or raw.get("action") or "").lower()
    kind = ACTIVITY_ACTIONS.get(name)
    if kind is None or (event.provider, event.stream) not in ACTIVITY_STREAMS:
        return None
    if event.provider == "m365":
        actor = raw.get("UserId") or event.actor
        target = raw.get("ObjectId") or raw.get("SourceFileName")
    elif event.provider == "google":
        actor = _get(raw, "actor", "email") or event.actor
        target = _param(raw, "doc_id") or _param(raw, "doc_title")
    else:
        actor = _get(raw, "actor", "user", "email") or event.actor
        target = _get(raw, "entity", "file", "id")
    if not actor:
        return None
    return Activity(event.id, event.provider, str(actor).lower(), event.occurred_at.timestamp(), kind, target)


@dataclass
class SignInColumns:
    """Sign-ins as parallel arrays, sorted by (actor, time): what baselines and scoring consume."""

    event_id: np.ndarray
    actor: np.ndarray  # object (str)
    ts: np.ndarray
    ip: np.ndarray
    country: np.ndarray
    network: np.ndarray
    device: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    precise: np.ndarray
    outcome: np.ndarray  # object (Outcome values)
    provider: np.ndarray
    rows: list[SignIn] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.event_id)


def signin_order(signin: SignIn) -> tuple[str, float, str, str]:
    """Sign-ins by person and time, those of one instant by provider id (never by storage id)."""
    return (signin.actor, signin.ts, signin.provider, signin.key)


def to_columns(signins: Iterable[SignIn]) -> SignInColumns:
    rows = sorted(signins, key=signin_order)
    n = len(rows)
    lat = np.array([s.latitude if s.latitude is not None else np.nan for s in rows], dtype=np.float64)
    lon = np.array([s.longitude if s.longitude is not None else np.nan for s in rows], dtype=np.float64)
    return SignInColumns(
        event_id=np.fromiter((s.event_id for s in rows), dtype=np.int64, count=n),
        actor=np.array([s.actor for s in rows], dtype=object),
        ts=np.fromiter((s.ts for s in rows), dtype=np.float64, count=n),
        ip=np.array([s.ip for s in rows], dtype=object),
        country=np.array([s.country for s in rows], dtype=object),
        network=np.array([s.network for s in rows], dtype=object),
        device=np.array([s.device for s in rows], dtype=object),
        latitude=lat,
        longitude=lon,
        precise=~np.isnan(lat),
        outcome=np.array([s.outcome.value for s in rows], dtype=object),
        provider=np.array([s.provider for s in rows], dtype=object),
        rows=rows,
    )
