"""The simulator's responses against the vendors' own machine-readable descriptions, not against
test data written from the simulator's knowledge: Google's discovery documents as
google-api-python-client ships them (each method's response schema, every property, type, format
and enum), and Slack's Audit Logs entries against slack_sdk's typed model (a key the model does not
know lands in its `unknown_fields`).

The responses are read through the official clients, scenario by scenario, so story events (a
Takeout, an OU-scoped policy, a guest, a workspace export) are checked as well as the background.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient
import pytest
from slack_sdk.audit_logs.v1.logs import LogsResponse

from simulator.vendors.google.base import KNOWN_APPLICATIONS
from tests.simulator.test_google import REPORTS

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
START = "2026-03-02T00:00:00Z"
INTEGER = re.compile(r"-?\d+")


@cache
def discovery(name: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS / f"{name}.json").read_text())


def response_schema(document: str, method: str) -> str:
    """The schema name a method answers with, from the document (e.g. `activities.list`)."""
    node: dict[str, Any] = discovery(document)
    *resources, name = method.split(".")
    for resource in resources:
        node = node["resources"][resource]
    return str(node["methods"][name]["response"]["$ref"])


def issues(document: str, schema: dict[str, Any], value: Any, path: str) -> Iterator[str]:
    """Every way `value` departs from `schema` (properties not declared, wrong types, formats and
    enum values), each with its JSON path."""
    if "$ref" in schema:
        yield from issues(document, discovery(document)["schemas"][schema["$ref"]], value, path)
        return
    kind = schema.get("type")
    if kind == "any":
        return
    if kind == "object":
        if not isinstance(value, dict):
            yield f"{path}: {type(value).__name__}, not an object"
            return
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                yield from issues(document, properties[key], item, f"{path}.{key}")
            elif extra is not None:
                yield from issues(document, extra, item, f"{path}.{key}")
            else:
                yield f"{path}.{key}: not a property of the discovery schema"
    elif kind == "array":
        if not isinstance(value, list):
            yield f"{path}: {type(value).__name__}, not an array"
            return
        for index, item in enumerate(value):
            yield from issues(document, schema.get("items", {}), item, f"{path}[{index}]")
    elif kind == "string":
        if not isinstance(value, str):
            yield f"{path}: {type(value).__name__}, not a string"
            return
        form = schema.get("format")
        if form in ("int64", "uint64") and not INTEGER.fullmatch(value):
            yield f"{path}: {value!r} is not an {form}"
        if form == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                yield f"{path}: {value!r} is not an RFC 3339 date-time"
        if "enum" in schema and value not in schema["enum"]:
            yield f"{path}: {value!r} is not one of the schema's enum"
        if path.endswith(".kind") and "default" in schema and value != schema["default"]:
            yield f"{path}: {value!r}, the API returns {schema['default']!r}"
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            yield f"{path}: {value!r} is not an integer"
    elif kind == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            yield f"{path}: {value!r} is not a number"
    elif kind == "boolean" and not isinstance(value, bool):
        yield f"{path}: {value!r} is not a boolean"


def conform(document: str, method: str, response: dict[str, Any]) -> list[str]:
    name = response_schema(document, method)
    return list(issues(document, {"$ref": name}, response, name))


def test_the_schema_check_finds_what_it_is_meant_to_find() -> None:
    # an undeclared property, a wrong type, a bad int64 and an enum value the document does not know
    bad = {
        "kind": "admin#reports#activities",
        "items": [{"id": {"time": "yesterday", "uniqueQualifier": "x1"}, "riskType": "none"}],
        "nextPageToken": 7,
    }
    found = conform("admin.reports_v1", "activities.list", bad)
    assert any("riskType: not a property" in i for i in found)
    assert any("nextPageToken: int, not a string" in i for i in found)
    assert any("uniqueQualifier: 'x1' is not an int64" in i for i in found)
    assert any("time: 'yesterday' is not an RFC 3339 date-time" in i for i in found)
    assert conform("admin.directory_v1", "users.get", {"kind": "admin#directory#user"}) == []
    assert conform("admin.directory_v1", "users.get", {"kind": "directory#user"}) == [
        "User.kind: 'directory#user', the API returns 'admin#directory#user'"
    ]


def test_the_applications_the_simulator_accepts_are_the_discovery_documents() -> None:
    parameters = discovery("admin.reports_v1")["resources"]["activities"]["methods"]["list"]["parameters"]
    assert set(parameters["applicationName"]["enum"]) == KNOWN_APPLICATIONS


APPLICATIONS = ("login", "admin", "drive", "token", "saml", "user_accounts", "takeout")


@pytest.mark.parametrize(
    "scenario", ["google_delegated_admin", "insider_exfiltration", "oauth_consent_phishing"]
)
def test_google_reports_directory_drive_and_policies_conform_to_the_discovery_documents(
    make_simulator, google, scenario
):
    sim = make_simulator(scenario, users=20, days=3, start=START)
    reports = google(sim.info, "admin", "reports_v1", scopes=REPORTS)
    directory = google(sim.info, "admin", "directory_v1")
    drive = google(sim.info, "drive", "v3")
    found: list[str] = []
    seen: dict[str, int] = {}

    for app in APPLICATIONS:
        request = reports.activities().list(userKey="all", applicationName=app, maxResults=500)
        while request is not None:
            response = request.execute()
            seen[app] = seen.get(app, 0) + len(response.get("items", []))
            found += conform("admin.reports_v1", "activities.list", response)
            request = reports.activities().list_next(request, response)
    users = directory.users().list(customer="my_customer", maxResults=500, projection="full").execute()
    found += conform("admin.directory_v1", "users.list", users)
    subject = users["users"][0]["primaryEmail"]
    found += conform("admin.directory_v1", "users.get", directory.users().get(userKey=subject).execute())
    found += conform("admin.directory_v1", "tokens.list", directory.tokens().list(userKey=subject).execute())
    found += conform(
        "admin.directory_v1",
        "roleAssignments.list",
        directory.roleAssignments().list(customer="my_customer").execute(),
    )
    found += conform(
        "admin.directory_v1", "roles.list", directory.roles().list(customer="my_customer").execute()
    )
    files = (
        drive.files()
        .list(
            pageSize=100,
            fields="files(id,name,mimeType,owners(emailAddress),permissions(id,type,role,emailAddress,domain,allowFileDiscovery)),nextPageToken",
        )
        .execute()
    )
    found += conform("drive.v3", "files.list", files)
    found += conform("drive.v3", "files.list", drive.files().list(pageSize=20).execute())
    found += conform(
        "drive.v3",
        "permissions.list",
        drive.permissions().list(fileId=files["files"][0]["id"], fields="*").execute(),
    )
    policies = google(sim.info, "cloudidentity", "v1").policies().list().execute()
    found += conform("cloudidentity.v1", "policies.list", policies)
    gmail = google(
        sim.info,
        "gmail",
        "v1",
        scopes=["https://www.googleapis.com/auth/gmail.readonly"],
        subject=sim.info["google.subject"],
    )
    threads = gmail.users().threads().list(userId="me", maxResults=20).execute()
    found += conform("gmail.v1", "users.threads.list", threads)
    for thread in threads.get("threads", [])[:3]:
        full = gmail.users().threads().get(userId="me", id=thread["id"], format="metadata").execute()
        found += conform("gmail.v1", "users.threads.get", full)
    messages = gmail.users().messages().list(userId="me", maxResults=20).execute()
    found += conform("gmail.v1", "users.messages.list", messages)
    for message in messages.get("messages", [])[:3]:
        found += conform(
            "gmail.v1",
            "users.messages.get",
            gmail.users().messages().get(userId="me", id=message["id"]).execute(),
        )

    assert found == []
    assert seen["login"] and seen["admin"] and seen["drive"]  # the check had something to look at
    if scenario == "google_delegated_admin":
        assert seen["takeout"] == 3


# Fields slack_sdk's model does not have, each with its reason: the anomaly event's details (Slack's
# "Audit logs anomaly events" reference: reason, action_timestamp, location, previous_ip_address,
# previous_ua, ip_address_details)
DOCUMENTED_BEYOND_THE_SDK = {
    "anomaly": {
        "entry.details.action_timestamp",
        "entry.details.location",
        "entry.details.previous_ip_address",
        "entry.details.previous_ua",
        "entry.details.ip_address_details",
    },
}


def unknown_fields(model: Any, path: str = "entry") -> Iterator[str]:
    """Keys slack_sdk's typed model did not recognise, anywhere in the object."""
    for key, value in vars(model).items():
        if key == "unknown_fields":
            yield from (f"{path}.{k}" for k in value)
        elif hasattr(value, "unknown_fields"):
            yield from unknown_fields(value, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if hasattr(item, "unknown_fields"):
                    yield from unknown_fields(item, f"{path}.{key}[{index}]")


@pytest.mark.parametrize(
    "scenario", ["slack_guest_exfiltration", "slack_session_theft", "insider_exfiltration"]
)
def test_slack_audit_entries_are_all_known_to_slack_sdks_typed_model(make_simulator, audit_logs, scenario):
    sim = make_simulator(scenario, users=20, days=3, start=START)
    client = audit_logs(sim.info)
    entries, cursor = [], None
    while True:
        body = client.logs(limit=500, cursor=cursor).body
        entries += body["entries"]
        cursor = body["response_metadata"]["next_cursor"]
        if not cursor:
            break

    typed = LogsResponse(entries=entries, response_metadata={"next_cursor": ""})

    assert len(typed.entries) == len(entries) > 0
    unknown = [
        (raw["action"], path)
        for entry, raw in zip(typed.entries, entries, strict=True)
        for path in unknown_fields(entry)
        if path not in DOCUMENTED_BEYOND_THE_SDK.get(raw["action"], ())
    ]
    assert unknown == []
    assert {e["action"] for e in entries} >= {"user_login", "pref.sso_setting_changed"}
