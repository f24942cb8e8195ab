"""The slack_guest_exfiltration scenario through slack_sdk's AuditLogsClient, and the guest's
channel membership through the Web API (conversations.members, users.conversations,
admin.conversations.kick/invite)."""

from __future__ import annotations

START = "2026-03-02T00:00:00Z"
GUEST = "r.kowalski.home@fastmail.example"


def test_guest_in_private_channels_bulk_downloads_and_export_as_audit_entries(
    make_simulator, audit_logs, slack
):
    sim = make_simulator("slack_guest_exfiltration", start=START)
    client = audit_logs(sim.info)

    added = client.logs(action="guest_channel_join", limit=100).body["entries"]
    created = client.logs(action="guest_created", limit=100).body["entries"]
    downloads = client.logs(action="file_downloaded", limit=9999).body["entries"]
    export = client.logs(
        action="manual_export_started,manual_export_completed,manual_export_downloaded", limit=100
    ).body["entries"]

    # Slack records the join with the guest as the actor and the inviter in details.inviter
    ours = [e for e in added if e["actor"]["user"]["email"] == GUEST]
    assert {e["entity"]["channel"]["name"]: e["entity"]["channel"]["privacy"] for e in ours} == {
        "security-ops": "private",
        "finance": "public",
        "sales": "public",
    }
    [invite] = [e for e in created if e["entity"]["user"]["email"] == GUEST]
    assert invite["details"] == {"type": "multi_channel_guest"}
    inviter = invite["actor"]["user"]["email"]
    by_guest = [e for e in downloads if e["actor"]["user"]["email"] == GUEST]
    assert len(by_guest) == 45
    assert {e["context"]["ip_address"] for e in by_guest} == {invite["context"]["ip_address"]}
    assert [e["action"] for e in sorted(export, key=lambda e: e["date_create"])] == [
        "manual_export_started",
        "manual_export_completed",
        "manual_export_downloaded",
    ]
    assert {e["actor"]["user"]["email"] for e in export} == {inviter}
    assert {e["entity"]["type"] for e in export} == {"workspace"}

    # the guest is a workspace user in the Web API, in exactly the channels it was added to
    web = slack(sim.info, "slack.admin_token")
    guest = web.users_lookupByEmail(email=GUEST)["user"]
    assert guest["is_restricted"] and not guest["is_ultra_restricted"]  # a multi-channel guest
    assert web.users_info(user=guest["id"])["user"]["profile"]["email"] == GUEST

    def channels() -> set[str]:
        listed = web.users_conversations(user=guest["id"], types="public_channel,private_channel")
        return {c["name"] for c in listed["channels"]}

    assert channels() == {"security-ops", "finance", "sales"}
    ops = next(
        c for c in web.conversations_list(types="private_channel")["channels"] if c["name"] == "security-ops"
    )
    assert guest["id"] in web.conversations_members(channel=ops["id"])["members"]
    # admin.conversations.kick takes it out (a second user not in the channel fails alone), invite brings it back
    kicked = web.api_call(
        "admin.conversations.kick", params={"channel_id": ops["id"], "user_ids": f"{guest['id']},U0NOBODY"}
    )
    assert kicked["removed_user_ids"] == [guest["id"]]
    assert kicked["failed_user_ids"] == [{"user_id": "U0NOBODY", "error": "not_in_channel"}]
    assert guest["id"] not in web.conversations_members(channel=ops["id"])["members"]
    assert channels() == {"finance", "sales"}
    assert web.api_call(
        "admin.conversations.invite", params={"channel_id": ops["id"], "user_ids": guest["id"]}
    )["ok"]
    assert channels() == {"security-ops", "finance", "sales"}
    assert [c["action"] for c in sim.changes] == ["kick_from_channel", "invite_to_channel"]


# The end-to-end half (one P1/P2 incident for the story, none for the agency guest) runs in
# tests/remediation/test_slack_story_end_to_end.py, which goes on to the guest playbook on the same world.
