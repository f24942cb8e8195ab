"""Slack actions, through the Web API (admin.* methods need an Enterprise org-admin user token)."""

from __future__ import annotations

from typing import Any

from core.models import Provider
from providers.slack import SlackGateway
from remediation.catalogue import ActionSpec, BlastRadius, Field, Operation, Verification
from remediation.errors import TargetMissing

USER = Field("user", "Slack user id (U…/W…) or the user's e-mail")


def read_user(gw: SlackGateway, user: str) -> dict[str, Any]:
    """users.info by id; an e-mail with users.lookupByEmail (which finds guests too), else in
    users.list (profile.email)."""
    if "@" in user:
        found = gw.read("users.lookupByEmail", token="bot", email=user)
        if found and found.get("user"):
            return found["user"]
        for member in gw.read_all("users.list", "members", token="bot"):
            if str((member.get("profile") or {}).get("email", "")).lower() == user.lower():
                return member
        raise TargetMissing(f"no Slack user with e-mail {user!r}")
    found = gw.read("users.info", token="bot", user=user)
    if found is None or not found.get("user"):
        raise TargetMissing(f"no Slack user {user!r}")
    return found["user"]


class ResetSessions(Operation):
    """admin.users.session.reset; checked in the Audit Logs API: a user_session_reset_by_admin entry
    for the user that was not there before the call (the provider's own record; no clock compared)."""

    def _resets(self, gw: SlackGateway, user_id: str) -> set[str]:
        entries = gw.audit_logs(action="user_session_reset_by_admin", entity=user_id, limit=100)
        return {str(e.get("id")) for e in entries}

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        return {
            "id": user["id"],
            "team_id": user.get("team_id"),
            "earlier_resets": sorted(self._resets(gw, user["id"])),
        }

    def apply(self, gw, target, params, before):
        gw.write("admin.users.session.reset", token="admin", user_id=before["id"])

    def verify(self, gw, target, params, before):
        new = self._resets(gw, before["id"]) - set(before.get("earlier_resets", []))
        return Verification(bool(new), {"audit_entries": sorted(new)})


class DeactivateUser(Operation):
    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        return {"id": user["id"], "team_id": user.get("team_id"), "deleted": bool(user.get("deleted"))}

    def satisfied(self, before, params):
        return before["deleted"]

    def apply(self, gw, target, params, before):
        gw.write("admin.users.remove", token="admin", team_id=before["team_id"], user_id=before["id"])

    def verify(self, gw, target, params, before):
        after = read_user(gw, before["id"])
        return Verification(bool(after.get("deleted")), {"deleted": after.get("deleted")})


def _channels_of(gw: SlackGateway, user_id: str) -> list[dict[str, Any]]:
    return [
        {"id": c["id"], "name": c.get("name"), "private": bool(c.get("is_private"))}
        for c in gw.read_all(
            "users.conversations",
            "channels",
            token="admin",
            user=user_id,
            types="public_channel,private_channel",
        )
        if c.get("id")
    ]


def _members(gw: SlackGateway, channel_id: str) -> set[str]:
    return {
        str(m) for m in gw.read_all("conversations.members", "members", token="admin", channel=channel_id)
    }


class RemoveFromChannels(Operation):
    """admin.conversations.kick from each channel the user is in (users.conversations), or from
    the one ``channel`` named; checked with conversations.members of every channel. The channels are
    saved, so rollback invites the user back to exactly those."""

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        channels = [c for c in _channels_of(gw, user["id"]) if c["name"] != "general"]
        wanted = str(target.get("channel") or "").lstrip("#")
        if wanted:
            channels = [c for c in channels if wanted in (c["id"], c["name"])]
        return {
            "id": user["id"],
            "guest": bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
            "channels": channels,
        }

    def satisfied(self, before, params):
        return not before["channels"]

    def apply(self, gw, target, params, before):
        for channel in before["channels"]:
            gw.write(
                "admin.conversations.kick", token="admin", channel_id=channel["id"], user_ids=before["id"]
            )

    def verify(self, gw, target, params, before):
        still = [c["name"] or c["id"] for c in before["channels"] if before["id"] in _members(gw, c["id"])]
        return Verification(
            not still, {"removed_from": [c["name"] or c["id"] for c in before["channels"]], "still_in": still}
        )

    def inverse_request(self, target, params, before):
        return {"user": before["id"]}, {"channels": [c["id"] for c in before["channels"]]}


class InviteToChannels(Operation):
    """admin.conversations.invite to each saved channel (the rollback of a removal)."""

    def inspect(self, gw, target, params):
        user = read_user(gw, target["user"])
        wanted = [str(c) for c in params.get("channels") or []] or [str(target.get("channel") or "")]
        wanted = [c for c in wanted if c]
        if not wanted:
            raise TargetMissing("no channel to invite the user back to")
        missing = [c for c in wanted if user["id"] not in _members(gw, c)]
        return {"id": user["id"], "channels": wanted, "missing": missing}

    def satisfied(self, before, params):
        return not before["missing"]

    def apply(self, gw, target, params, before):
        for channel in before["missing"]:
            gw.write("admin.conversations.invite", token="admin", channel_id=channel, user_ids=before["id"])

    def verify(self, gw, target, params, before):
        absent = [c for c in before["channels"] if before["id"] not in _members(gw, c)]
        return Verification(not absent, {"channels": before["channels"], "absent_from": absent})


class SetPublicUrl(Operation):
    """files.revokePublicURL / files.sharedPublicURL (user token), checked with files.info."""

    def __init__(self, shared: bool) -> None:
        self.shared = shared

    def _info(self, gw: SlackGateway, file_id: str) -> dict[str, Any]:
        found = gw.read("files.info", token="bot", file=file_id)
        if found is None or not found.get("file"):
            raise TargetMissing(f"no Slack file {file_id!r} (deleted?)")
        return found["file"]

    def inspect(self, gw, target, params):
        file = self._info(gw, target["file"])
        return {"public_url_shared": bool(file.get("public_url_shared")), "name": file.get("name")}

    def satisfied(self, before, params):
        return before["public_url_shared"] is self.shared

    def apply(self, gw, target, params, before):
        method = "files.sharedPublicURL" if self.shared else "files.revokePublicURL"
        gw.write(method, token="user", file=target["file"])

    def verify(self, gw, target, params, before):
        file = self._info(gw, target["file"])
        return Verification(
            bool(file.get("public_url_shared")) is self.shared,
            {"public_url_shared": file.get("public_url_shared")},
        )


class UninstallApp(Operation):
    """admin.apps.uninstall; checked with admin.apps.approved.list (the app is no longer installed)."""

    def _installed(self, gw: SlackGateway) -> list[dict[str, Any]]:
        return [
            entry.get("app") or {}
            for entry in gw.read_all("admin.apps.approved.list", "approved_apps", token="admin")
        ]

    def inspect(self, gw, target, params):
        wanted = str(target["app"])
        app = next((a for a in self._installed(gw) if wanted in (a.get("id"), a.get("name"))), None)
        if app is None:
            raise TargetMissing(f"no installed Slack app {wanted!r} (already uninstalled?)")
        return {"id": app["id"], "name": app.get("name")}

    def apply(self, gw, target, params, before):
        extra = {"team_ids": gw.team_id} if gw.team_id else {}
        gw.write("admin.apps.uninstall", token="admin", app_id=before["id"], **extra)

    def verify(self, gw, target, params, before):
        still = [a.get("id") for a in self._installed(gw) if a.get("id") == before["id"]]
        return Verification(not still, {"installed": bool(still)})


_P = Provider.SLACK

ACTIONS = (
    ActionSpec(
        name="slack.reset_sessions",
        provider=_P,
        title="Reset Slack sessions",
        description="Sign the user out of every Slack client (admin.users.session.reset).",
        target=(USER,),
        permission="admin.users:write (org admin user token)",
        reversible=True,
        inverse=None,  # nothing to undo: the user signs in again
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="Audit Logs API: a new user_session_reset_by_admin entry for the user",
        operation=ResetSessions(),
    ),
    ActionSpec(
        name="slack.deactivate_user",
        provider=_P,
        title="Deactivate the Slack user",
        description="Remove the user from the workspace (admin.users.remove).",
        target=(USER,),
        permission="admin.users:write (org admin user token)",
        reversible=False,  # reactivation needs SCIM or the admin console
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user",),
        verification="users.info(user).deleted is true",
        operation=DeactivateUser(),
    ),
    ActionSpec(
        name="slack.remove_from_channels",
        provider=_P,
        title="Remove the user from Slack channels",
        description=(
            "Take a guest (or member) out of every channel they are in, private ones included, or out of"
            " the one channel named (admin.conversations.kick)."
        ),
        target=(
            USER,
            Field("channel", "channel id (C…) or name; every channel when left out", required=False),
        ),
        permission="admin.conversations:write (org admin user token)",
        reversible=True,
        inverse="slack.invite_to_channels",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user", "channel"),
        verification="conversations.members of each channel no longer lists the user",
        operation=RemoveFromChannels(),
    ),
    ActionSpec(
        name="slack.invite_to_channels",
        provider=_P,
        title="Invite the user back to Slack channels",
        description="Add the user to the channels a removal took them out of (admin.conversations.invite).",
        target=(USER, Field("channel", "channel id (C…) or name", required=False)),
        params=(Field("channels", "channel ids saved by the removal", required=False),),
        permission="admin.conversations:write (org admin user token)",
        reversible=True,
        inverse="slack.remove_from_channels",
        blast_radius=BlastRadius.USER,
        idempotency_fields=("user", "channel"),
        verification="conversations.members of each channel lists the user again",
        operation=InviteToChannels(),
        rollback_only=True,
    ),
    ActionSpec(
        name="slack.revoke_public_url",
        provider=_P,
        title="Revoke a file's public URL",
        description="Turn off the public link of a file (files.revokePublicURL).",
        target=(Field("file", "Slack file id (F…)"),),
        permission="files:write (user token of the owner or an admin)",
        reversible=True,
        inverse="slack.share_public_url",
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("file",),
        verification="files.info(file).public_url_shared is false",
        operation=SetPublicUrl(False),
    ),
    ActionSpec(
        name="slack.share_public_url",
        provider=_P,
        title="Share a file's public URL again",
        description="Turn the public link back on (files.sharedPublicURL; a new URL).",
        target=(Field("file", "Slack file id (F…)"),),
        permission="files:write (user token)",
        reversible=True,
        inverse="slack.revoke_public_url",
        blast_radius=BlastRadius.OBJECT,
        idempotency_fields=("file",),
        verification="files.info(file).public_url_shared is true",
        operation=SetPublicUrl(True),
        rollback_only=True,
    ),
    ActionSpec(
        name="slack.uninstall_app",
        provider=_P,
        title="Uninstall a Slack app",
        description="Remove an app (and its tokens) from the workspace (admin.apps.uninstall).",
        target=(Field("app", "app id (A…) or name"),),
        permission="admin.apps:write (org admin user token)",
        reversible=False,  # reinstalling needs the app's OAuth flow
        blast_radius=BlastRadius.APP,
        idempotency_fields=("app",),
        verification="admin.apps.approved.list no longer lists the app",
        operation=UninstallApp(),
    ),
)
