"""Fixed reference data the tenant is built from: first-party apps, role templates, devices, apps.

These are public constants (Microsoft's well-known application ids and role template ids,
Google's system role names, common SaaS apps) so collectors see familiar values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FirstPartyApp:
    app_id: str
    name: str
    resource: str  # resource display name a sign-in to this app usually targets
    resource_id: str
    client_app: str  # clientAppUsed
    weight: float


GRAPH_RESOURCE = "00000003-0000-0000-c000-000000000000"
EXCHANGE_RESOURCE = "00000002-0000-0ff1-ce00-000000000000"
SHAREPOINT_RESOURCE = "00000003-0000-0ff1-ce00-000000000000"

FIRST_PARTY_APPS: tuple[FirstPartyApp, ...] = (
    FirstPartyApp(
        "4765445b-32c6-49b0-83e6-1d93765276ca",
        "OfficeHome",
        "Office 365 Exchange Online",
        EXCHANGE_RESOURCE,
        "Browser",
        3,
    ),
    FirstPartyApp(
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
        "Office 365 Exchange Online",
        EXCHANGE_RESOURCE,
        "Browser",
        3,
    ),
    FirstPartyApp(
        "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "Microsoft Office",
        "Office 365 SharePoint Online",
        SHAREPOINT_RESOURCE,
        "Mobile Apps and Desktop clients",
        4,
    ),
    FirstPartyApp(
        "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        "Microsoft Teams",
        "Microsoft Teams Services",
        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
        "Mobile Apps and Desktop clients",
        4,
    ),
    FirstPartyApp(
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
        "Office 365 SharePoint Online",
        SHAREPOINT_RESOURCE,
        "Browser",
        2,
    ),
    FirstPartyApp(
        "ab9b8c07-8f02-4f72-87fa-80105867a763",
        "OneDrive SyncEngine",
        "Office 365 SharePoint Online",
        SHAREPOINT_RESOURCE,
        "Mobile Apps and Desktop clients",
        2,
    ),
    FirstPartyApp(
        "27922004-5251-4030-b22d-91ecd9a37ea4",
        "Outlook Mobile",
        "Office 365 Exchange Online",
        EXCHANGE_RESOURCE,
        "Mobile Apps and Desktop clients",
        2,
    ),
    FirstPartyApp(
        "19db86c3-b2b9-44cc-b339-36da233a3be2",
        "My Signins",
        "Microsoft Graph",
        GRAPH_RESOURCE,
        "Browser",
        0.2,
    ),
)
APP_BY_NAME = {app.name: app for app in FIRST_PARTY_APPS}
AZURE_PORTAL = FirstPartyApp(
    "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "Azure Portal",
    "Windows Azure Service Management API",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    "Browser",
    0,
)
AZURE_AD_POWERSHELL = FirstPartyApp(
    "1b730954-1685-4b74-9bfd-dac224a7b894",
    "Azure Active Directory PowerShell",
    "Windows Azure Active Directory",
    "00000002-0000-0000-c000-000000000000",
    "Mobile Apps and Desktop clients",
    0,
)
EXCHANGE_POWERSHELL = FirstPartyApp(
    "fb78d390-0c51-40cd-8e17-fdbfab77341b",
    "Microsoft Exchange REST API Based Powershell",
    "Office 365 Exchange Online",
    EXCHANGE_RESOURCE,
    "Mobile Apps and Desktop clients",
    0,
)

# Entra built-in role template ids (public constants).
ENTRA_ROLES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Security Administrator": "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "Exchange Administrator": "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "SharePoint Administrator": "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "Security Reader": "5d6b6bb7-de71-4623-b4af-96380a352509",
}
PRIVILEGED_ENTRA_ROLES = frozenset(
    {
        "Global Administrator",
        "Privileged Role Administrator",
        "Security Administrator",
        "Exchange Administrator",
    }
)

# Google Workspace system roles: roleName -> (roleId, description, is super admin)
GOOGLE_ROLES: dict[str, tuple[str, str, bool]] = {
    "_SEED_ADMIN_ROLE": ("91447453409034241", "Super Admin", True),
    "_GROUPS_ADMIN_ROLE": ("91447453409034242", "Groups Administrator", False),
    "_USER_MANAGEMENT_ADMIN_ROLE": ("91447453409034243", "User Management Administrator", False),
    "_HELP_DESK_ADMIN_ROLE": ("91447453409034244", "Help Desk Administrator", False),
    "_SERVICES_ADMIN_ROLE": ("91447453409034245", "Services Administrator", False),
}


@dataclass(frozen=True, slots=True)
class ThirdPartyApp:
    """A SaaS app people connect to their accounts (OAuth) in all three providers."""

    key: str
    name: str
    publisher: str
    verified: bool
    graph_scopes: str  # space separated delegated scopes
    google_scopes: tuple[str, ...]
    slack_scopes: tuple[str, ...]
    popularity: float  # share of users who granted it


THIRD_PARTY_APPS: tuple[ThirdPartyApp, ...] = (
    ThirdPartyApp(
        "zoom",
        "Zoom",
        "Zoom Video Communications, Inc.",
        True,
        "openid profile email offline_access Calendars.ReadWrite User.Read",
        (
            "openid",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/calendar",
        ),
        ("calls:write", "commands", "users:read"),
        0.5,
    ),
    ThirdPartyApp(
        "docusign",
        "DocuSign",
        "DocuSign, Inc.",
        True,
        "openid profile email offline_access User.Read Files.Read",
        (
            "openid",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/drive.file",
        ),
        (),
        0.15,
    ),
    ThirdPartyApp(
        "miro",
        "Miro",
        "RealtimeBoard, Inc.",
        True,
        "openid profile email User.Read",
        (
            "openid",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/userinfo.profile",
        ),
        ("chat:write", "links:read"),
        0.2,
    ),
    ThirdPartyApp(
        "calendly",
        "Calendly",
        "Calendly LLC",
        True,
        "openid profile email offline_access Calendars.ReadWrite",
        (
            "openid",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/calendar.events",
        ),
        (),
        0.12,
    ),
    ThirdPartyApp(
        "grammarly",
        "Grammarly",
        "Grammarly, Inc.",
        True,
        "openid profile email User.Read",
        (
            "openid",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/userinfo.profile",
        ),
        (),
        0.1,
    ),
    ThirdPartyApp(
        "jira",
        "Jira Cloud",
        "Atlassian",
        True,
        "openid profile email User.Read",
        ("openid", "https://www.googleapis.com/auth/userinfo.email"),
        ("channels:read", "chat:write", "links:read", "users:read"),
        0.25,
    ),
)

SLACK_WORKSPACE_APPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("google_drive", "Google Drive", ("links:read", "links:write", "files:read")),
    ("zoom", "Zoom", ("calls:write", "commands", "users:read")),
    ("jira", "Jira Cloud", ("channels:read", "chat:write", "links:read", "users:read")),
    ("github", "GitHub", ("channels:read", "chat:write", "commands", "links:read")),
    ("polly", "Polly", ("chat:write", "commands", "reactions:read")),
)


@dataclass(frozen=True, slots=True)
class DeviceModel:
    kind: str
    os: str
    browser: str
    user_agent: str
    weight: float


LAPTOPS: tuple[DeviceModel, ...] = (
    DeviceModel(
        "laptop",
        "Windows 11",
        "Edge 124.0.2478",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        4,
    ),
    DeviceModel(
        "laptop",
        "Windows 10",
        "Chrome 123.0.6312",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.122 Safari/537.36",
        2,
    ),
    DeviceModel(
        "laptop",
        "MacOs",
        "Chrome 124.0.6367",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36",
        3,
    ),
    DeviceModel(
        "laptop",
        "MacOs",
        "Safari 17.4",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
        1,
    ),
    DeviceModel(
        "laptop",
        "Linux",
        "Firefox 125.0",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        0.5,
    ),
)
PHONES: tuple[DeviceModel, ...] = (
    DeviceModel(
        "phone",
        "Ios 17.4",
        "Mobile Safari",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        3,
    ),
    DeviceModel(
        "phone",
        "Android 14",
        "Chrome Mobile 124.0",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
        2,
    ),
)
ATTACKER_AGENTS: tuple[DeviceModel, ...] = (
    DeviceModel("script", "Linux", "Python Requests 2.31", "python-requests/2.31.0", 1),
    DeviceModel(
        "laptop",
        "Windows 10",
        "Chrome 109.0.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
        1,
    ),
    DeviceModel(
        "laptop",
        "Linux",
        "Firefox 115.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
        1,
    ),
)
