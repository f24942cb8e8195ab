"""Keys too common to group by: office egress IPs, first-party apps, company-wide files.

Sharing a person is strong evidence that two findings belong together; sharing "Microsoft Teams"
or the office's egress IP is not — every sign-in finding names them. A key is *common* when:

* it is an IP that events show many accounts using over days (office egress, VPN), while an
  attacker's IP used against many accounts in a burst (a spray) stays a key;
* it is a provider's own first-party app (Exchange Online, Microsoft Teams, Google Chrome, ...);
* it is an IP, app or file that recent findings mention about many people over days.

A common key still shows on the incident; it just does not join findings. Each is kept with the
reason, which the grouping explanation quotes ("ignored 198.51.100.1 is shared: 37 accounts ...").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from core.models.event import Event
from core.models.finding import Finding
from timeline.entities import EntityKeys, normalise_name

FIRST_PARTY_APPS = frozenset(
    normalise_name(name)
    for name in (
        # Microsoft first-party applications as sign-in logs name them
        "Office 365 Exchange Online",
        "Office 365 SharePoint Online",
        "SharePoint Online",
        "Microsoft Teams",
        "Microsoft Teams Web Client",
        "Microsoft Office",
        "Microsoft 365",
        "Office 365",
        "OfficeHome",
        "Office365 Shell WCSS-Client",
        "Microsoft Outlook",
        "Outlook Mobile",
        "One Outlook Web",
        "Microsoft Authentication Broker",
        "Microsoft Azure CLI",
        "Microsoft Azure PowerShell",
        "Azure Portal",
        "Microsoft Azure Management",
        "Windows Sign In",
        "My Signins",
        "My Profile",
        "My Apps",
        "Microsoft Edge",
        "OneDrive",
        "OneDrive SyncEngine",
        "Microsoft Graph",
        "Graph Explorer",
        "Office 365 Management APIs",
        # Google's own
        "Google Chrome",
        "Gmail",
        "Google Drive",
        "Google Calendar",
        "Google Workspace",
        "Android device",
        "iOS Account Manager",
        "macOS",
        # Slack's own clients
        "Slack",
        "Slack for Desktop",
        "Slack for iOS",
        "Slack for Android",
    )
)
RECENT = timedelta(days=14)
_SPREAD_KINDS = ("ip", "app", "file")


@dataclass(frozen=True)
class PrevalenceRules:
    min_people: int = 4
    min_span: timedelta = timedelta(days=2)


def _span_why(label: str, people: int, span: timedelta, where: str) -> str:
    return f"{label} is common: {where} about {people} people over {span.days} days"


def common_in_findings(
    rows: Iterable[tuple[EntityKeys, datetime]],
    rules: PrevalenceRules,
) -> dict[str, str]:
    """IP/app/file keys that findings mention about many people over days (pure): `rows` are
    each finding's keys (`keys_for` of its entities) and first sighting."""
    people_of: dict[str, set[str]] = {}
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    labels: dict[str, str] = {}
    for found, seen in rows:
        persons = {k for k in found.keys if k.startswith(("person:", "email:", "account:"))}
        if not persons:
            continue
        for key in found.keys:
            if key.partition(":")[0] not in _SPREAD_KINDS:
                continue
            people_of.setdefault(key, set()).update(persons)
            labels.setdefault(key, found.labels.get(key, key))
            first[key] = min(first.get(key, seen), seen)
            last[key] = max(last.get(key, seen), seen)
    common = {}
    for key, persons in people_of.items():
        span = last[key] - first[key]
        if len(persons) >= rules.min_people and span >= rules.min_span:
            common[key] = _span_why(labels[key], len(persons), span, "findings")
    return common


def first_party_apps(keys: Iterable[str]) -> dict[str, str]:
    return {
        k: f"{k.partition(':')[2]} is a provider's own app"
        for k in keys
        if k.startswith("app:") and k.partition(":")[2] in FIRST_PARTY_APPS
    }


def shared_ips(session: Session, ips: Iterable[str], rules: PrevalenceRules) -> dict[str, str]:
    """IP keys that events show many accounts using over days."""
    wanted = sorted({ip for ip in ips if "/" not in ip})
    common = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        rows = session.execute(
            select(
                col(Event.ip),
                func.count(func.distinct(col(Event.actor))),
                func.min(col(Event.occurred_at)),
                func.max(col(Event.occurred_at)),
            )
            .where(col(Event.ip).in_(chunk))
            .group_by(col(Event.ip))
        ).all()
        for ip, people, earliest, latest in rows:
            if people >= rules.min_people and latest - earliest >= rules.min_span:
                common[f"ip:{ip}"] = (
                    f"{ip} is shared: {people} accounts used it over {(latest - earliest).days} days"
                )
    return common


def recent_finding_entities(session: Session, since: datetime) -> list[tuple[int, Any, datetime]]:
    """(id, entities, first_seen) of the findings active since `since` minus two weeks."""
    rows = session.execute(
        select(col(Finding.id), col(Finding.entities), col(Finding.first_seen)).where(
            col(Finding.last_seen) >= since - RECENT
        )
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]
