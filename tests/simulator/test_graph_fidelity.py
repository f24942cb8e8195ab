"""Graph behaviours the collectors depend on, checked against the published resource descriptions
(tests/simulator/data/graph_v1.json names its source) through msal + requests."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

SCHEMA = json.loads((Path(__file__).parent / "data" / "graph_v1.json").read_text())
NON_INTERACTIVE = "signInEventTypes/any(t: t eq 'nonInteractiveUser')"


def properties(resource: str, version: str = "v1.0") -> set[str]:
    entry = SCHEMA[resource]
    names = set(entry["v1.0"])
    return names | set(entry.get("beta_only", [])) if version == "beta" else names


def every(session, url: str, params: dict) -> list[dict]:
    items, response = [], session.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        if "@odata.nextLink" not in body:
            return items
        response = session.get(body["@odata.nextLink"])


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("auditLogs/signIns", "signIn"),
        ("auditLogs/directoryAudits", "directoryAudit"),
        ("identityProtection/riskDetections", "riskDetection"),
        ("roleManagement/directory/roleDefinitions", "unifiedRoleDefinition"),
    ],
)
def test_items_have_only_properties_of_their_resource_in_each_version(simulator, graph, path, resource):
    info = simulator.info
    session = graph(info)

    for version, base in (("v1.0", info["m365.graph_base_url"]), ("beta", info["m365.graph_beta_url"])):
        items = session.get(f"{base}/{path}", params={"$top": "300"}).json()["value"]
        assert items
        extra = {k for item in items for k in item} - properties(resource, version)
        assert extra == set(), f"{version} {path}: {extra}"
    v1_keys = {k for i in session.get(f"{info['m365.graph_base_url']}/{path}").json()["value"] for k in i}
    assert "riskType" not in v1_keys and "isPrivileged" not in v1_keys


def test_beta_keeps_its_own_properties(simulator, graph):
    info = simulator.info
    session = graph(info)

    roles = session.get(f"{info['m365.graph_beta_url']}/roleManagement/directory/roleDefinitions").json()
    detections = session.get(f"{info['m365.graph_beta_url']}/identityProtection/riskDetections").json()

    assert any(r["isPrivileged"] for r in roles["value"]) and not all(
        r["isPrivileged"] for r in roles["value"]
    )
    assert all("riskType" in d for d in detections["value"])


def test_v1_sign_ins_carry_the_user_agent_and_only_interactive_ones_unfiltered(simulator, graph):
    info = simulator.info

    items = graph(info).get(f"{info['m365.graph_base_url']}/auditLogs/signIns", params={"$top": "500"}).json()
    items = items["value"]

    assert all(i["userAgent"] for i in items)
    assert {tuple(i["signInEventTypes"]) for i in items} == {("interactiveUser",)}
    assert all(i["isInteractive"] is True for i in items)


def test_non_interactive_sign_ins_at_realistic_volume_within_the_users_sessions(simulator, graph):
    info = simulator.info
    session = graph(info)
    url = f"{info['m365.graph_beta_url']}/auditLogs/signIns"

    interactive = every(session, url, {"$top": "999"})
    others = every(session, url, {"$top": "999", "$filter": NON_INTERACTIVE})

    # Entra's non-interactive log is several times the interactive one (token refreshes)
    assert len(others) >= 2 * len(interactive)
    assert all(
        i["isInteractive"] is False and i["signInEventTypes"] == ["nonInteractiveUser"] for i in others
    )
    assert all(i["status"]["errorCode"] == 0 and i["incomingTokenType"] != "none" for i in others)
    sessions = {(i["userId"], i["sessionId"]): i for i in interactive}
    # each refresh belongs to a session an interactive sign-in opened, from the same place and device
    # (sessions opened before the scenario's first day have their refreshes only)
    start = datetime.fromisoformat(simulator.truth["start"].replace("Z", "+00:00"))
    for item in others:
        opened = sessions.get((item["userId"], item["sessionId"]))
        if opened is None:
            assert datetime.fromisoformat(item["createdDateTime"][:19] + "+00:00") < start + timedelta(days=1)
            continue
        assert (item["ipAddress"], item["userAgent"]) == (opened["ipAddress"], opened["userAgent"])
    assert len({i["correlationId"] for i in others}) == len(others)  # one per token request
    assert max(Counter(i["sessionId"] for i in others).values()) > 1


def test_the_collectors_non_interactive_filter_is_accepted_on_both_versions(simulator, graph):
    info = simulator.info
    session = graph(info)
    flt = "createdDateTime ge 2020-01-01T00:00:00Z and signInEventTypes/any(t: t ne 'interactiveUser')"

    for base in (info["m365.graph_base_url"], info["m365.graph_beta_url"]):
        response = session.get(f"{base}/auditLogs/signIns", params={"$filter": flt, "$top": "5"})
        assert response.status_code == 200, response.text
        assert [i["signInEventTypes"] for i in response.json()["value"]] == [["nonInteractiveUser"]] * 5


@pytest.mark.parametrize(
    ("path", "flt", "why"),
    [
        ("auditLogs/signIns", "contains(userPrincipalName, 'a')", "contains"),
        ("auditLogs/signIns", "endswith(userPrincipalName, '.example')", "endswith"),
        ("auditLogs/signIns", "userAgent eq 'curl/8.0'", "userAgent"),
        ("auditLogs/signIns", "not(isInteractive eq true)", "not"),
        ("auditLogs/signIns", "status/errorCode ne 0", "ne"),
        ("auditLogs/signIns", "riskEventTypes_v2/any(t: t ne 'unfamiliarFeatures')", "ne"),
        ("auditLogs/signIns", "authenticationDetails/any(a: a/succeeded eq false)", "authenticationDetails"),
        ("auditLogs/directoryAudits", "contains(activityDisplayName, 'role')", "contains"),
        ("auditLogs/directoryAudits", "additionalDetails/any(d: d/key eq 'x')", "additionalDetails"),
    ],
)
def test_filters_the_reporting_service_refuses_are_refused(simulator, graph, path, flt, why):
    info = simulator.info

    response = graph(info).get(f"{info['m365.graph_base_url']}/{path}", params={"$filter": flt})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest" and "Invalid filter clause" in error["message"]
    assert why in error["message"]


@pytest.mark.parametrize(
    ("path", "flt"),
    [
        ("auditLogs/signIns", "startswith(appDisplayName, 'Microsoft') and status/errorCode eq 0"),
        ("auditLogs/signIns", "riskEventTypes_v2/any(t: t eq 'unfamiliarFeatures')"),
        ("auditLogs/signIns", "location/countryOrRegion eq 'RU' or ipAddress eq '10.0.0.1'"),
        ("auditLogs/directoryAudits", "targetResources/any(t: startswith(t/displayName, 'Global'))"),
        ("auditLogs/directoryAudits", "category eq 'RoleManagement' and result eq 'success'"),
    ],
)
def test_documented_filters_are_accepted(simulator, graph, path, flt):
    info = simulator.info

    response = graph(info).get(f"{info['m365.graph_base_url']}/{path}", params={"$filter": flt})

    assert response.status_code == 200, response.text


def test_select_returns_exactly_the_selected_properties(simulator, graph):
    info = simulator.info
    session = graph(info)
    fields = "displayName,externalUserState,assignedLicenses,accountEnabled"

    users = session.get(f"{info['m365.graph_base_url']}/users", params={"$select": fields}).json()
    signins = session.get(
        f"{info['m365.graph_base_url']}/auditLogs/signIns",
        params={"$select": "createdDateTime,userAgent,status", "$top": "20"},
    ).json()

    assert users["@odata.context"].endswith(f"$metadata#users({fields})")
    assert {tuple(u) for u in users["value"]} == {tuple(fields.split(","))}
    assert all(u["externalUserState"] is None and u["assignedLicenses"] == [] for u in users["value"])
    assert {tuple(sorted(i)) for i in signins["value"]} == {("createdDateTime", "status", "userAgent")}
    assert signins["@odata.context"].endswith("auditLogs/signIns(createdDateTime,userAgent,status)")


@pytest.mark.parametrize("path", ["users", "auditLogs/signIns", "users/{user}"])
def test_select_of_a_property_the_resource_lacks_is_refused(simulator, graph, path):
    info = simulator.info
    user = simulator.truth["stories"][0]["people"][0]

    response = graph(info).get(
        f"{info['m365.graph_base_url']}/{path.format(user=user)}", params={"$select": "id,isPrivileged"}
    )

    assert response.status_code == 400
    assert "Could not find a property named 'isPrivileged'" in response.json()["error"]["message"]


def test_single_objects_carry_their_odata_context(simulator, graph):
    info = simulator.info
    session = graph(info)
    base = info["m365.graph_base_url"]
    user = simulator.truth["stories"][0]["people"][0]
    sp = session.get(f"{base}/servicePrincipals", params={"$top": "1"}).json()["value"][0]
    policy = session.get(f"{base}/identity/conditionalAccess/policies").json()["value"][0]

    for path in (
        f"users/{user}",
        f"servicePrincipals/{sp['id']}",
        f"identity/conditionalAccess/policies/{policy['id']}",
        f"users/{user}/drive",
    ):
        body = session.get(f"{base}/{path}").json()
        assert body["@odata.context"].startswith("https://graph.microsoft.com/v1.0/$metadata#"), path
        assert body["@odata.context"].endswith("/$entity"), path
    one = session.get(f"{base}/users/{user}", params={"$select": "id,mail"}).json()
    assert one == {"@odata.context": one["@odata.context"], "id": one["id"], "mail": user}
    assert one["@odata.context"].endswith("#users(id,mail)/$entity")


def test_every_graph_response_has_a_request_id(make_simulator, graph):
    sim = make_simulator("account_takeover", users=10, days=1, faults="429=1@/graph/v1.0/groups")
    info = sim.info
    session = graph(info)
    base = info["m365.graph_base_url"]

    responses = [
        session.get(f"{base}/users", params={"$top": "1"}),
        session.get(f"{base}/users/nobody@nowhere.example"),
        session.get(f"{base}/auditLogs/signIns", params={"$filter": "contains(ipAddress, '1')"}),
        session.get(f"{base}/groups"),  # throttled
        session.get(f"{base}/no/such/path"),
        session.get(f"{base}/organization", headers={"Authorization": "Bearer nope"}),
        session.get(f"{base}/organization", headers={"client-request-id": "caller-chosen-id"}),
    ]

    assert [r.status_code for r in responses] == [200, 404, 400, 429, 404, 401, 200]
    ids = [r.headers["request-id"] for r in responses]
    assert len(set(ids)) == len(ids)
    for response in responses[1:5]:
        assert response.json()["error"]["innerError"]["request-id"] == response.headers["request-id"]
    assert responses[-1].headers["client-request-id"] == "caller-chosen-id"
    assert responses[0].headers["client-request-id"] == responses[0].headers["request-id"]


@pytest.mark.parametrize(
    "flt",
    [
        "createdDateTime ge 2026-03-02T06:00:00Z and createdDateTime lt 2026-03-03T00:00:00Z",
        "createdDateTime ge 2026-03-02T06:00:00Z and createdDateTime lt 2026-03-03T00:00:00Z"
        " and signInEventTypes/any(t: t ne 'interactiveUser')",
        f"createdDateTime gt 2026-03-02T06:00:00Z and {NON_INTERACTIVE} and status/errorCode eq 0",
        "createdDateTime le 2026-03-03T00:00:00Z and signInEventTypes/any(t: t eq 'interactiveUser')",
        "(createdDateTime ge 2026-03-02T06:00:00Z and createdDateTime lt 2026-03-03T00:00:00Z)"
        f" and {NON_INTERACTIVE}",
        f"createdDateTime ge 2026-03-02T06:00:00Z or {NON_INTERACTIVE}",
    ],
)
def test_signins_a_filter_decides_on_the_record_are_those_it_accepts_rendered(flt):
    """What the sign-ins handler decides without rendering (the window's time, the kinds) keeps
    exactly the records whose rendered item the whole filter accepts (interactive ones only unless
    it names signInEventTypes), story records included."""
    from simulator.odata import evaluate, parse_filter, time_bounds
    from simulator.render import render
    from simulator.store import Window
    from simulator.vendors.graph.audit_logs import _interactive, _names_event_types, signin_filters
    from simulator.world import build_world

    world = build_world("token_theft", start="2026-03-01T00:00:00Z", users=20, days=3)
    node = parse_filter(flt)
    start, end = time_bounds(node, "createdDateTime")
    window = Window(start or 0, end or 1 << 62, descending=True)
    records = list(world.store.iterate("m365:signins", window))
    keep, predicate = signin_filters(world.ctx, node)
    served = [
        r[1]
        for r in records
        if (keep is None or keep(r))
        and (predicate is None or predicate(render(world.ctx, "m365:signins", r)))
    ]
    default = (lambda r: True) if _names_event_types(node) else _interactive
    expected = [r[1] for r in records if default(r) and evaluate(node, render(world.ctx, "m365:signins", r))]

    assert expected and served == expected
