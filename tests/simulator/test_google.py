"""google-api-python-client with service-account credentials (domain-wide delegation) against the simulator."""

from __future__ import annotations

import json

import pytest
from googleapiclient.errors import HttpError

REPORTS = ["https://www.googleapis.com/auth/admin.reports.audit.readonly"]


def activities(client, **params) -> tuple[list[dict], int]:
    request = client.activities().list(**params)
    items, pages = [], 0
    while request is not None:
        response = request.execute()
        items.extend(response.get("items", []))
        pages += 1
        request = client.activities().list_next(request, response)
    return items, pages


def test_login_activities_page_newest_first_and_match_the_ground_truth_ids(simulator, google):
    reports = google(simulator.info, "admin", "reports_v1", scopes=REPORTS)

    items, pages = activities(reports, userKey="all", applicationName="login", maxResults=40)

    ids = [
        f"{a['id']['time']}/{a['id']['uniqueQualifier']}/{i}" for a in items for i in range(len(a["events"]))
    ]
    times = [a["id"]["time"] for a in items]
    expected = simulator.events("google:login", visible=True)
    assert pages >= 3
    assert times == sorted(times, reverse=True)
    assert len(ids) == len(set(ids)) == expected["count"]
    assert set(ids) == set(expected["ids"])


def test_drive_acl_changes_of_the_insider_are_found_with_event_name_and_filters(make_simulator, google):
    sim = make_simulator("insider_exfiltration")
    reports = google(sim.info, "admin", "reports_v1", scopes=REPORTS)
    step = next(s for s in sim.truth["stories"][0]["steps"] if s["id"] == "public_links")

    items, _ = activities(
        reports,
        userKey="all",
        applicationName="drive",
        eventName="change_document_visibility",
        filters="visibility==people_with_link",
    )

    found = {
        f"{a['id']['time']}/{a['id']['uniqueQualifier']}/{i}" for a in items for i in range(len(a["events"]))
    }
    assert {e["id"] for e in step["events"]} <= found
    assert all(len(a["events"]) == 2 for a in items if a["id"]["time"] >= step["at"][:10])


def test_reporting_lag_hides_the_newest_events_until_time_passes(make_simulator, google):
    sim = make_simulator(
        lag={"google:login": "6h"}, start="2026-03-04T18:00:00Z"
    )  # ends on a Wednesday evening
    reports = google(sim.info, "admin", "reports_v1", scopes=REPORTS)
    before, _ = activities(reports, userKey="all", applicationName="login")

    sim.advance(6 * 3600)
    after, _ = activities(reports, userKey="all", applicationName="login")

    assert len(after) > len(before)
    assert len(after) == sim.events("google:login")["count"]


def test_an_expired_token_gets_401_and_google_auth_refreshes_it(simulator, google):
    reports = google(simulator.info, "admin", "reports_v1", scopes=REPORTS)
    reports.activities().list(userKey="all", applicationName="token").execute()
    simulator.expire_tokens("google")

    reports.activities().list(userKey="all", applicationName="token").execute()

    grants = [r for r in simulator.requests if r["path"] == "/google/token"]
    statuses = [r["status"] for r in simulator.requests if "/applications/token" in r["path"]]
    assert len(grants) == 2
    assert statuses == [200, 401, 200]


def test_429_is_retried_by_execute_num_retries(make_simulator, google):
    sim = make_simulator(faults="429=1@google:reports,retry_after=0,max_consecutive=1")
    reports = google(sim.info, "admin", "reports_v1", scopes=REPORTS)

    with pytest.raises(HttpError) as refused:
        reports.activities().list(userKey="all", applicationName="admin").execute()
    response = reports.activities().list(userKey="all", applicationName="saml").execute(num_retries=3)

    assert refused.value.status_code == 429
    assert response["kind"] == "admin#reports#activities"


def test_a_truncated_page_is_not_json_then_the_retry_succeeds(make_simulator, google):
    sim = make_simulator(faults="truncated=1@google:reports,max_consecutive=1")
    reports = google(sim.info, "admin", "reports_v1", scopes=REPORTS)
    request = reports.activities().list(userKey="all", applicationName="login", maxResults=5)

    broken = request.execute()  # the client hands back the undecodable text as a str
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)
    assert len(request.execute()["items"]) == 5


def test_reports_need_an_admin_subject(simulator, google):
    not_admin = simulator.truth["stories"][0]["people"][-1]
    reports = google(simulator.info, "admin", "reports_v1", scopes=REPORTS, subject=not_admin)

    with pytest.raises(HttpError) as denied:
        reports.activities().list(userKey="all", applicationName="login").execute()

    assert denied.value.status_code == 403


def test_directory_users_page_and_query_two_step_verification(simulator, google):
    directory = google(simulator.info, "admin", "directory_v1")
    request = directory.users().list(customer="my_customer", maxResults=12)
    users, pages = [], 0
    while request is not None:
        response = request.execute()
        users.extend(response["users"])
        pages += 1
        request = directory.users().list_next(request, response)

    unenrolled = (
        directory.users()
        .list(customer="my_customer", query="isEnrolledIn2Sv=false")
        .execute()
        .get("users", [])
    )

    assert pages >= 3
    assert len({u["id"] for u in users}) == len(users)
    assert all(not u["isEnrolledIn2Sv"] for u in unenrolled)


def test_gmail_threads_need_the_mailbox_owner_as_subject(make_simulator, google):
    sim = make_simulator("oauth_consent_phishing")
    story = sim.truth["stories"][0]
    owner = sim.info["google.subject"]
    gmail = google(
        sim.info, "gmail", "v1", scopes=["https://www.googleapis.com/auth/gmail.readonly"], subject=owner
    )

    threads = gmail.users().threads().list(userId="me", maxResults=5).execute()
    first = (
        gmail.users().threads().get(userId="me", id=threads["threads"][0]["id"], format="metadata").execute()
    )

    assert first["messages"][0]["payload"]["headers"]
    with pytest.raises(HttpError) as denied:
        gmail.users().threads().list(userId=story["people"][0]).execute()
    assert denied.value.status_code == 403


def test_cloud_identity_policies_show_the_weakened_settings(make_simulator, google):
    sim = make_simulator("admin_privilege_abuse")
    policies = google(sim.info, "cloudidentity", "v1").policies().list().execute()["policies"]

    by_type = {p["setting"]["type"]: p["setting"]["value"] for p in policies}

    assert "enforcedFrom" not in by_type["settings/security.two_step_verification_enforcement"]
    assert by_type["settings/drive_and_docs.external_sharing"]["externalSharingMode"] == "ALLOWED"


def test_drive_answers_the_fields_asked_for_and_a_short_default(simulator, google):
    """Drive v3 partial responses: the default file set is kind/id/name/mimeType; `fields` selects
    nested properties, including the inline permissions the collector reads."""
    info = simulator.info
    owner = simulator.truth["stories"][0]["people"][0]
    drive = google(info, "drive", "v3", scopes=["https://www.googleapis.com/auth/drive"], subject=owner)
    fields = (
        "kind,nextPageToken,files(id,name,mimeType,owners(emailAddress),webViewLink,"
        "permissions(id,type,role,emailAddress,domain,allowFileDiscovery))"
    )

    default = drive.files().list(q="'me' in owners and trashed = false").execute()
    chosen = drive.files().list(q="'me' in owners and trashed = false", fields=fields).execute()
    one = drive.files().get(fileId=chosen["files"][0]["id"], fields="id,owners/emailAddress").execute()

    assert default["files"] and {tuple(sorted(f)) for f in default["files"]} == {
        ("id", "kind", "mimeType", "name")
    }
    assert set(chosen) <= {"kind", "nextPageToken", "files"} and chosen["kind"] == "drive#fileList"
    for item in chosen["files"]:
        assert set(item) == {"id", "name", "mimeType", "owners", "webViewLink", "permissions"}
        assert item["owners"] == [{"emailAddress": owner}]
        listed = drive.permissions().list(fileId=item["id"]).execute()["permissions"]
        assert [p["id"] for p in item["permissions"]] == [p["id"] for p in listed]
        assert all(
            set(p) <= {"id", "type", "role", "emailAddress", "domain", "allowFileDiscovery"}
            for p in item["permissions"]
        )
    assert one == {"id": chosen["files"][0]["id"], "owners": [{"emailAddress": owner}]}


def test_drive_refuses_a_malformed_field_selection(simulator, google):
    info = simulator.info
    drive = google(info, "drive", "v3", scopes=["https://www.googleapis.com/auth/drive"])

    with pytest.raises(HttpError) as caught:
        drive.files().list(fields="files(id,name").execute()

    assert caught.value.resp.status == 400
    assert "Invalid field selection" in str(caught.value)


def test_groups_list_takes_the_group_scopes_the_discovery_document_lists(simulator, google):
    """directory.groups.list: admin.directory.group(.readonly) only, as in admin.directory_v1.json."""
    info = simulator.info
    group_only = google(
        info,
        "admin",
        "directory_v1",
        scopes=["https://www.googleapis.com/auth/admin.directory.group.readonly"],
    )
    user_only = google(
        info,
        "admin",
        "directory_v1",
        scopes=["https://www.googleapis.com/auth/admin.directory.user.readonly"],
    )

    groups = group_only.groups().list(customer="my_customer").execute()
    with pytest.raises(HttpError) as caught:
        user_only.groups().list(customer="my_customer").execute()

    assert groups["kind"] == "admin#directory#groups" and groups["groups"]
    assert {g["kind"] for g in groups["groups"]} == {"admin#directory#group"}
    assert caught.value.resp.status == 403
