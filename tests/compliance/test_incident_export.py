"""Incidents in open formats: OCSF Incident Finding events that validate against the OCSF 1.7.0 schema
models, JSONL and CSV with the same incidents, streamed a keyset batch at a time."""

from __future__ import annotations

import csv
import io

import orjson
from ocsf.v1_7_0.events import IncidentFinding

from compliance.incident_export import MAX_FINDINGS, stream_incidents
from compliance.ocsf import FindingFormat
from tests.factories import at


def _incidents(make_incident, make_finding) -> dict[str, int]:
    takeover = make_incident(
        "Account takeover of alice", priority="P1", assignee="ann", summary="MFA fatigue, then forwarding"
    )
    make_finding("MFA fatigue", incident_id=takeover.id, mitre=["T1621"], first_seen=at(0))
    make_finding(
        "Forwarding rule to an outside address",
        incident_id=takeover.id,
        mitre=["T1114.003"],
        first_seen=at(5),
    )
    closed = make_incident("Spray from one address", priority="P3", status="false_positive", closed_at=at(60))
    make_finding("Password spray", incident_id=closed.id)
    orphan = make_incident("Findings aged out", priority="P4", severity="low")
    big = make_incident("A noisy one", priority="P2")
    for n in range(MAX_FINDINGS + 5):
        make_finding(f"noise {n}", incident_id=big.id)
    return {"takeover": takeover.id, "closed": closed.id, "orphan": orphan.id, "big": big.id}


def test_every_incident_exports_as_an_ocsf_incident_finding_that_validates(
    db, make_incident, make_finding
) -> None:
    ids = _incidents(make_incident, make_finding)
    with db.session(readonly=True) as session:
        lines = b"".join(
            stream_incidents(session, FindingFormat.OCSF, batch=2, base_url="https://tg.example")
        ).splitlines()
    events = [orjson.loads(line) for line in lines]
    assert [int(e["metadata"]["uid"]) for e in events] == sorted(ids.values())
    for event in events:
        IncidentFinding.model_validate(event)  # the schema models accept what we wrote
        assert event["class_uid"] == 2005 and event["category_uid"] == 2
    by_id = {int(e["metadata"]["uid"]): e for e in events}
    takeover = by_id[ids["takeover"]]
    assert takeover["priority_id"] == 4 and takeover["status_id"] == 1 and takeover["activity_id"] == 1
    assert takeover["assignee"]["name"] == "ann" and takeover["desc"] == "MFA fatigue, then forwarding"
    assert [f["title"] for f in takeover["finding_info_list"]] == [
        "MFA fatigue",
        "Forwarding rule to an outside address",
    ]
    assert {a["technique"]["uid"] for a in takeover["attacks"]} == {"T1621", "T1114.003"}
    assert takeover["src_url"] == f"https://tg.example/incidents/{ids['takeover']}"
    closed = by_id[ids["closed"]]
    assert closed["status_id"] == 5 and closed["verdict_id"] == 1 and closed["activity_id"] == 3
    assert closed["type_uid"] == 200503 and "end_time" in closed
    orphan = by_id[ids["orphan"]]
    assert orphan["finding_info_list"] == [
        {"uid": f"tenantguard:incident:{ids['orphan']}", "title": "Findings aged out"}
    ]
    big = by_id[ids["big"]]
    assert (
        len(big["finding_info_list"]) == MAX_FINDINGS and big["unmapped"]["finding_count"] == MAX_FINDINGS + 5
    )


def test_jsonl_and_csv_carry_the_same_incidents(db, make_incident, make_finding) -> None:
    ids = _incidents(make_incident, make_finding)
    with db.session(readonly=True) as session:
        jsonl = [
            orjson.loads(x)
            for x in b"".join(stream_incidents(session, FindingFormat.JSONL, batch=3)).splitlines()
        ]
        rows = list(
            csv.DictReader(
                io.StringIO(b"".join(stream_incidents(session, FindingFormat.CSV, batch=3)).decode())
            )
        )
    assert [r["id"] for r in rows] == [str(x["id"]) for x in jsonl] == [str(i) for i in sorted(ids.values())]
    takeover = next(r for r in rows if r["id"] == str(ids["takeover"]))
    assert (
        takeover["priority"] == "P1"
        and takeover["finding_count"] == "2"
        and takeover["people"] == "alice@northwind.example"
    )
    assert next(x for x in jsonl if x["id"] == ids["closed"])["status"] == "false_positive"
