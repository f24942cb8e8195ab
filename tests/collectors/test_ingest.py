"""`tenantguard ingest`: exported logs load through the same normalisers, twice adds nothing, and
a bad line is quarantined with file:line and the reason while the rest loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from collectors.errors import IngestError
from collectors.ingest import ingest_files
from core.db import Database
from core.models import Connection, Event, QuarantinedRecord

SLACK = {
    "id": "e1",
    "date_create": "1763632801",
    "action": "user_login",
    "actor": {"type": "user", "user": {"id": "W1", "email": "a@x.example"}},
    "context": {"ip_address": "1.2.3.4"},
}


def _jsonl(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_with_a_bad_line_loads_the_rest_and_quarantines_the_line(db: Database, tmp_path: Path) -> None:
    export = _jsonl(
        tmp_path / "slack.jsonl",
        json.dumps(SLACK),
        '{"id": "e2", "date_create": 17636',
        "",
        json.dumps({**SLACK, "id": "e3"}),
        json.dumps({"id": "e4"}),
    )
    report = ingest_files(db, provider="slack", stream="audit", files=[export])
    assert (report.records, report.events_new, report.quarantined) == (4, 2, 2)
    with db.session(readonly=True) as s:
        sources = {q.source: q.reason for q in s.exec(select(QuarantinedRecord)).all()}
        connection = s.exec(select(Connection).where(Connection.name == "ingest:slack")).one()
    assert set(sources) == {f"{export}:2", f"{export}:5"}
    assert "not JSON" in sources[f"{export}:2"] and "date_create" in sources[f"{export}:5"]
    assert connection.enabled is False


def test_ingesting_the_same_export_twice_adds_nothing(db: Database, tmp_path: Path) -> None:
    export = tmp_path / "audit.json"
    export.write_text(json.dumps([SLACK, {**SLACK, "id": "e2"}]))
    first = ingest_files(db, provider="slack", stream="audit", files=[export])
    second = ingest_files(db, provider="slack", stream="audit", files=[export])
    assert (first.events_new, second.events_new, second.duplicates) == (2, 0, 2)


def test_google_per_event_exports_get_their_position_from_file_order(db: Database, tmp_path: Path) -> None:
    ident = {"time": "2026-11-20T10:00:01.123Z", "uniqueQualifier": "-7", "applicationName": "drive"}
    records = [
        {
            "id": ident,
            "actor": {"email": "a@x"},
            "type": "acl_change",
            "name": "change_user_access",
            "parameters": {},
        },
        {
            "id": ident,
            "actor": {"email": "a@x"},
            "type": "acl_change",
            "name": "change_document_visibility",
            "parameters": {},
        },
    ]
    export = _jsonl(tmp_path / "drive.jsonl", *(json.dumps(r) for r in records))
    ingest_files(db, provider="google", stream="drive", files=[export])
    with db.session(readonly=True) as s:
        ids = sorted(s.exec(select(Event.provider_event_id)).all())
    assert ids == ["2026-11-20T10:00:01.123Z/-7/0", "2026-11-20T10:00:01.123Z/-7/1"]


def test_an_unknown_stream_is_refused_before_anything_is_read(db: Database, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="slack/audit"):
        ingest_files(db, provider="slack", stream="messages", files=[tmp_path / "x"])


SIGNIN = {
    "id": "66ea54eb-6301-4ee5-be62-ff5a759b8100",
    "createdDateTime": "2026-11-20T10:00:01Z",
    "userPrincipalName": "alice@contoso.example",
    "ipAddress": "131.107.159.37",
    "status": {"errorCode": 0},
}


def _stored(db: Database) -> list[Event]:
    with db.session(readonly=True) as s:
        return list(s.exec(select(Event).order_by(Event.provider_event_id)).all())


def test_a_graph_page_and_an_azure_monitor_batch_are_read_as_their_records(
    db: Database, tmp_path: Path
) -> None:
    page = tmp_path / "signins-page.json"
    page.write_text(
        json.dumps(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
                "value": [SIGNIN, {**SIGNIN, "id": "66ea54eb-6301-4ee5-be62-ff5a759b8101"}],
                "@odata.nextLink": "https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=x",
            }
        )
    )
    # Event Hub / storage account batches of the diagnostic setting: {"records": [...]} per line
    batch = _jsonl(
        tmp_path / "PT1H.json",
        json.dumps(
            {
                "records": [
                    {
                        "time": "2026-11-20T11:00:00Z",
                        "category": "SignInLogs",
                        "operationName": "Sign-in activity",
                        "resultType": "50126",
                        "callerIpAddress": "45.133.1.9",
                        "properties": {"id": "a1", "userPrincipalName": "bob@contoso.example"},
                    }
                ]
            }
        ),
    )
    report = ingest_files(db, provider="m365", stream="signins", files=[page, batch])
    assert (report.records, report.events_new, report.quarantined) == (3, 3, 0)
    by_id = {e.provider_event_id: e for e in _stored(db)}
    assert by_id["a1"].outcome == "failure" and by_id["a1"].raw["status"]["errorCode"] == 50126


def test_google_and_slack_api_pages_are_read_as_their_records(db: Database, tmp_path: Path) -> None:
    google = tmp_path / "login.json"
    google.write_text(
        json.dumps(
            {
                "kind": "admin#reports#activities",
                "etag": '"x"',
                "items": [
                    {
                        "kind": "admin#reports#activity",
                        "id": {
                            "time": "2026-11-20T10:00:01.123Z",
                            "uniqueQualifier": "-1",
                            "applicationName": "login",
                        },
                        "actor": {"email": "a@x.example"},
                        "events": [{"type": "login", "name": "login_failure"}],
                    }
                ],
                "nextPageToken": "t",
            }
        )
    )
    slack = tmp_path / "audit.json"
    slack.write_text(json.dumps({"entries": [SLACK], "response_metadata": {"next_cursor": ""}}))
    assert ingest_files(db, provider="google", stream="login", files=[google]).events_new == 1
    assert ingest_files(db, provider="slack", stream="audit", files=[slack]).events_new == 1


def test_a_unified_audit_csv_export_reads_each_rows_audit_data(db: Database, tmp_path: Path) -> None:
    record = {
        "Id": "4f1c0d2e-1",
        "CreationTime": "2026-11-20T10:00:01",
        "Operation": "New-InboxRule",
        "UserId": "cfo@contoso.example",
        "ClientIP": "45.133.1.9:50412",
        "Parameters": [{"Name": "ForwardTo", "Value": "x@proton.example"}],
    }
    export = tmp_path / "audit_log_search.csv"
    rows = [
        ["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData"],
        [
            "4f1c0d2e-1",
            "2026-11-20T10:00:01",
            "ExchangeAdmin",
            "New-InboxRule",
            "cfo@contoso.example",
            json.dumps(record),
        ],
        [
            "4f1c0d2e-2",
            "2026-11-20T10:00:02",
            "ExchangeAdmin",
            "Set-Mailbox",
            "cfo@contoso.example",
            "{not json",
        ],
    ]
    import csv

    with export.open("w", newline="", encoding="utf-8-sig") as handle:
        csv.writer(handle).writerows(rows)
    report = ingest_files(db, provider="m365", stream="unified_audit", files=[export])
    assert (report.records, report.events_new, report.quarantined) == (2, 1, 1)
    [event] = _stored(db)
    assert event.ip == "45.133.1.9" and event.raw["Parameters"][0]["Value"] == "x@proton.example"
    assert report.problems and "AuditData is not JSON" in report.problems[0] and ":3" in report.problems[0]


def test_a_log_analytics_signinlogs_csv_export_is_stored_as_graph_signins(
    db: Database, tmp_path: Path
) -> None:
    export = tmp_path / "query_data.csv"
    export.write_text(
        "TimeGenerated [UTC],TimeGenerated,Id,UserPrincipalName,IPAddress,Location,LocationDetails,Status,"
        "ResultType,IsInteractive,AuthenticationProtocol,Type\n"
        '"11/20/2026, 10:00:02.100 AM",2026-11-20T10:00:02.1Z,66ea54eb-1,bob@contoso.example,45.133.1.9,NL,'
        '"{""city"":""Amsterdam"",""countryOrRegion"":""NL""}","{""errorCode"":0}",0,True,deviceCode,SigninLogs\n'
    )
    report = ingest_files(db, provider="m365", stream="signins", files=[export])
    assert (report.events_new, report.quarantined) == (1, 0)
    [event] = _stored(db)
    assert (event.country, event.outcome, event.action) == ("NL", "success", "signin")
    assert event.raw["location"] == {"city": "Amsterdam", "countryOrRegion": "NL"}


# The header row of the Entra admin centre's sign-ins download (Sign-in logs > Download > CSV), as
# the portal writes it: "Application ID " and "Resource ID " end in a space, "Autonomous system  number"
# has two, "Incoming token type" appears twice.
ENTRA_PORTAL_HEADER = (
    "Date (UTC),Request ID,User agent,Correlation ID,User ID,User,Username,User type,Cross tenant access type,"
    "Incoming token type,Authentication Protocol,Unique token identifier,Original transfer method,"
    "Client credential type,Token Protection - Sign In Session,Token Protection - Sign In Session StatusCode,"
    "Application,Application ID ,App owner tenant ID,Resource,Resource ID ,Resource tenant ID,"
    "Resource owner tenant ID,Home tenant ID,Home tenant name,IP address,Location,Status,Sign-in error code,"
    "Failure reason,Client app,Device ID,Browser,Operating System,Compliant,Managed,Join Type,"
    "Multifactor authentication result,Multifactor authentication auth method,"
    "Multifactor authentication auth detail,Authentication requirement,Sign-in identifier,Session ID,"
    "IP address (seen by resource),Through Global Secure Access,Global Secure Access IP address,"
    "Autonomous system  number,Flagged for review,Token issuer type,Incoming token type,Token issuer name,"
    "Latency,Conditional Access,Managed Identity type,Associated Resource Id,Federated Token Id,"
    "Federated Token Issuer"
)


def _portal_row(**cells: str) -> str:
    import csv
    import io

    names = next(csv.reader([ENTRA_PORTAL_HEADER]))
    out = io.StringIO()
    csv.writer(out).writerow([cells.get(name.strip(), "") for name in names])
    return out.getvalue()


def test_the_entra_admin_centre_signins_csv_is_stored_as_graph_signins(db: Database, tmp_path: Path) -> None:
    common = {
        "User agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        "User ID": "26be570a-ae82-4189-b4e2-a37c6808512d",
        "User": "Dave Rao",
        "Username": "dave@contoso.example",
        "User type": "Member",
        "Application": "OfficeHome",
        "Application ID": "4765445b-32c6-49b0-83e6-1d93765276ca",
        "Resource": "Office 365 Exchange Online",
        "IP address": "185.220.101.34",
        "Location": "Moscow, Moscow, RU",
        "Client app": "Browser",
        "Browser": "Chrome 120.0.0",
        "Operating System": "Windows10",
        "Compliant": "False",
        "Managed": "False",
        "Token issuer type": "AzureAD",
        "Conditional Access": "Not Applied",
        "Correlation ID": "d79f5bee-5860-4832-928f-3133e22ae912",
    }
    export = tmp_path / "InteractiveSignIns_2026-11-20_2026-11-21.csv"
    export.write_text(
        ENTRA_PORTAL_HEADER
        + "\n"
        + _portal_row(
            **common,
            **{"Date (UTC)": "2026-11-20T02:10:05Z", "Request ID": "5e1f0c2a-1b3c-4d5e-8f90-112233445566"},
            **{"Status": "Failure", "Sign-in error code": "50126"},
            **{"Failure reason": "Error validating credentials due to invalid username or password."},
            **{"Authentication requirement": "Single-factor authentication"},
        )
        + _portal_row(
            **common,
            **{"Date (UTC)": "2026-11-20T03:11:40Z", "Request ID": "9a8b7c6d-0000-4d5e-8f90-aabbccddeeff"},
            **{"Status": "Interrupted", "Sign-in error code": "50074"},
            **{"Authentication requirement": "Multifactor authentication"},
        )
        + _portal_row(
            **common,
            **{"Date (UTC)": "2026-11-20T03:12:02Z", "Request ID": "9a8b7c6d-0000-4d5e-8f90-aabbccddeeff"},
            **{
                "Status": "Success",
                "Sign-in error code": "0",
                "Session ID": "0a1b2c3d-4e5f-6789-abcd-ef0123456789",
            },
            **{"Multifactor authentication result": "MFA completed in Azure AD"},
            **{"Multifactor authentication auth method": "Mobile app notification"},
            **{"Authentication requirement": "Multifactor authentication"},
        ),
        encoding="utf-8-sig",
    )
    report = ingest_files(db, provider="m365", stream="signins", files=[export])
    assert (report.records, report.events_new, report.quarantined) == (3, 3, 0)
    events = sorted(_stored(db), key=lambda e: e.occurred_at)
    assert [e.outcome for e in events] == ["failure", "failure", "success"]
    assert {(e.actor, e.ip, e.country, e.action) for e in events} == {
        ("dave@contoso.example", "185.220.101.34", "RU", "signin")
    }
    failed, interrupted, success = (e.raw for e in events)
    assert (
        failed["status"]["errorCode"] == 50126 and failed["appId"] == "4765445b-32c6-49b0-83e6-1d93765276ca"
    )
    assert failed["location"] == {"city": "Moscow", "state": "Moscow", "countryOrRegion": "RU"}
    assert failed["authenticationRequirement"] == "singleFactorAuthentication"
    assert failed["conditionalAccessStatus"] == "notApplied" and failed["userType"] == "member"
    assert failed["deviceDetail"]["isCompliant"] is False
    # the interrupt and the success of one request share its Request ID: both are kept
    assert interrupted["id"] == "9a8b7c6d-0000-4d5e-8f90-aabbccddeeff"
    assert success["id"] == "9a8b7c6d-0000-4d5e-8f90-aabbccddeeff#1"
    assert success["sessionId"] == "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    assert success["authenticationDetails"][0]["authenticationMethod"] == "Mobile app notification"
    # loading the download again adds nothing
    assert ingest_files(db, provider="m365", stream="signins", files=[export]).events_new == 0


def test_a_non_interactive_signins_download_is_stored_as_non_interactive(
    db: Database, tmp_path: Path
) -> None:
    export = tmp_path / "NonInteractiveSignIns_2026-11-20_2026-11-21.csv"
    export.write_text(
        ENTRA_PORTAL_HEADER
        + "\n"
        + _portal_row(
            **{"Date (UTC)": "2026-11-20T04:00:00Z", "Request ID": "77aa0000-1111-2222-3333-444455556666"},
            **{"Username": "dave@contoso.example", "IP address": "203.0.113.5", "Location": "US"},
            **{"Status": "Success", "Sign-in error code": "0", "Application": "Microsoft Teams"},
        )
    )
    ingest_files(db, provider="m365", stream="signins", files=[export])
    [event] = _stored(db)
    assert event.action == "signin_noninteractive" and event.country == "US"
    assert event.raw["location"]["city"] is None
