"""How an administrator grants a permission a connection lacks, per provider, in one sentence
(`tenantguard doctor`, docs/providers/*). The permission names are the ones streams and actions
declare (`StreamSpec.permission`, `ActionSpec.permission`)."""

from __future__ import annotations

_HOW = {
    "m365": (
        "Entra admin center → App registrations → your tenantguard app → API permissions → Add a "
        "permission → Microsoft Graph (Office 365 Management APIs for ActivityFeed.Read) → "
        "Application permissions → {permission} → Grant admin consent"
    ),
    "google": (
        "Google Admin console → Security → Access and data control → API controls → Manage "
        "domain-wide delegation → edit the service account's client ID → add the scope "
        "{permission} (comma-separated with the others) → Authorize"
    ),
    "slack": (
        "api.slack.com/apps → your tenantguard app → OAuth & Permissions → add the scope(s) "
        "{permission} → reinstall the app to the workspace/org and update the token reference"
    ),
}


def how_to_grant(provider: str, permission: str) -> str:
    """The steps that grant `permission` to tenantguard's app on `provider`."""
    template = _HOW.get(provider)
    if template is None:
        return f"grant {permission} to the application tenantguard authenticates as"
    return template.format(permission=permission)
