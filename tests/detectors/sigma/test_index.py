"""The rule index tries an event only against rules that can match it, and finds exactly what trying all would."""

from __future__ import annotations

from datetime import UTC, datetime

from core.normalise import with_event_identity
from detectors.pipeline import default_rules_path
from detectors.sigma.events import EventRecord, EventView, make_records
from detectors.sigma.index import RuleIndex, naive_match
from detectors.sigma.loader import load_pack
from tests.detectors.sigma.conftest import rule_yaml, view


def test_events_are_tried_only_against_rules_filed_under_their_values(make_pack) -> None:
    pack = make_pack(
        rule_yaml(
            "s:\n  action: user_login_failed\ncondition: s",
            product="slack",
            service="audit",
            name="login_failed",
        ),
        rule_yaml(
            "s:\n  action: [app_installed, app_approved]\ncondition: s",
            product="slack",
            service="audit",
            name="apps",
        ),
        rule_yaml(
            "s:\n  details.reason: tor\ncondition: not s",
            product="slack",
            service="audit",
            name="unindexable",
        ),
    )
    index = RuleIndex(pack.rules)
    stream = index.streams[("slack", "audit")]
    assert stream.indexed_fields == ["action"]
    assert [r.rule_id for r in stream.always] == ["unindexable"]
    candidates = index.candidates(view({"action": "APP_APPROVED"}, provider="slack", stream="audit"))
    assert sorted(r.rule_id for r in candidates) == ["apps", "unindexable"]
    assert index.candidates(view({"name": "x"}, provider="google", stream="login")) == []


def test_an_or_of_two_fields_is_not_indexed_on_either(make_pack) -> None:
    pack = make_pack(rule_yaml("a:\n  x: 1\nb:\n  y: 2\ncondition: a or b"))
    assert RuleIndex(pack.rules).streams[("m365", "signins")].always == (pack.rules[0],)


def test_index_finds_the_same_matches_as_trying_every_rule_on_the_shipped_pack() -> None:
    pack = load_pack([default_rules_path()])
    index = RuleIndex(pack.rules)
    checked = 0
    for item in [*pack.rules, *pack.correlations]:
        for test in item.tests:
            for number, event in enumerate(test.events):
                data = with_event_identity(
                    event.provider, event.stream, event.data, event_id=f"t{number}", at=datetime.now(UTC)
                )
                for rec in make_records(event.provider, event.stream, data, event_id=number, ts=0):
                    current = EventView(rec)
                    assert set(index.match(current)) == set(naive_match(pack.rules, EventView(rec))), (
                        item.rule_id,
                        test.name,
                    )
                    checked += 1
    assert checked > 200


def _same_as_per_event(index: RuleIndex, records: list) -> int:
    batch = index.match_batch(records)
    for rec, found in zip(records, batch, strict=True):
        assert found == index.match(EventView(rec)), (rec.provider, rec.stream, rec.data)
    return sum(map(len, batch))


def test_the_batch_matcher_finds_what_the_per_event_walk_does_in_the_same_order_on_the_shipped_pack() -> None:
    pack = load_pack([default_rules_path()])
    records = []
    for item in [*pack.rules, *pack.correlations]:
        for test in item.tests:
            for number, event in enumerate(test.events):
                data = with_event_identity(
                    event.provider, event.stream, event.data, event_id=f"t{number}", at=datetime.now(UTC)
                )
                records.extend(make_records(event.provider, event.stream, data, event_id=number, ts=0))
    assert _same_as_per_event(RuleIndex(pack.rules), records) > 100


def test_the_batch_matcher_agrees_on_awkward_shapes_and_every_value_kind(make_pack) -> None:
    detections = {
        "eq_nested": "s:\n  status.errorCode: [50126, 50053]\nf:\n  appDisplayName|contains: [Graph, Teams]\ncondition: s and not f",
        "eq_list": "s:\n  clientAppUsed: IMAP4\ncondition: s",
        "starts": "s:\n  userPrincipalName|startswith: [adm, root]\n  ipAddress|cidr: [10.0.0.0/8, '2001:db8::/32']\ncondition: s",
        "ends": "s:\n  userPrincipalName|endswith: '@contoso.example'\ncondition: s",
        "wild": "s:\n  appDisplayName: 'Az*e P?rtal'\ncondition: s",
        "regex": "s:\n  userAgent|re: '^python'\ncondition: s",
        "cidr_only": "s:\n  ipAddress|cidr: 20.1.0.0/16\ncondition: s",
        "any": "s:\n  location.city: '*'\nt:\n  location.countryOrRegion: [RU, KP]\ncondition: s or t",
        "exists": "s:\n  deviceDetail.browser|exists: true\n  isInteractive: true\ncondition: s",
        "nothing": "s:\n  riskDetail: null\n  status.errorCode: 0\ncondition: s",
        "cased": "s:\n  appDisplayName|cased: Graph\ncondition: s",
        "compare": "s:\n  riskScore|gte: 50\ncondition: s",
        "keyword": "k:\n  - mimikatz\ncondition: k",
        "fieldref": "s:\n  userDisplayName|fieldref: userPrincipalName\ncondition: s",
        "or_not": "a:\n  status.errorCode: 50126\nb:\n  userAgent|contains: curl\ncondition: (a or b) and not 1 of f*\nf1:\n  ipAddress|cidr: 40.0.0.0/8",
    }
    pack = make_pack(*(rule_yaml(text, name=name) for name, text in detections.items()))
    assert not pack.problems, pack.problems
    shapes = [
        {"status": {"errorCode": 50126}, "appDisplayName": "Azure Portal", "ipAddress": "10.1.2.3"},
        {"status": {"errorCode": "50053"}, "appDisplayName": "Microsoft Graph", "ipAddress": "2001:db8::1"},
        {"Status": {"ErrorCode": 50126}, "APPDISPLAYNAME": "azure portal", "userAgent": "python-requests"},
        {"status": [{"errorCode": 50126}, {"errorCode": 0}], "clientAppUsed": ["Browser", "IMAP4"]},
        {
            "status.errorCode": 50053,
            "userPrincipalName": "admin@contoso.example",
            "ipAddress": "20.1.9.9:443",
        },
        {"status": {"errorCode": None}, "userPrincipalName": ["root@x.example", "bob@contoso.example"]},
        {"ipAddress": ["20.1.0.1", "40.2.2.2"], "userAgent": ["curl/8", 7], "riskScore": "75"},
        {"ipAddress": 12345, "location": {"city": "", "countryOrRegion": "RU"}, "riskDetail": None},
        {
            "location": {"city": None},
            "deviceDetail": {"browser": None},
            "isInteractive": True,
            "riskScore": 10,
        },
        {"deviceDetail": [], "isInteractive": "TRUE", "status": {"errorCode": 0}, "appDisplayName": "Graph"},
        {"userDisplayName": "bob", "userPrincipalName": "bob", "note": "ran MimiKatz here"},
        {"userAgent": "curl/8", "status": {"errorCode": 50126}, "ipAddress": "40.9.9.9", "Status": {"x": 1}},
        {"statuS": {"errorCode": 50126}, "status": {"errorCode": 1}, "appDisplayName": None},
        {},
    ]
    records = [EventRecord(n, "m365", "signins", float(n), data) for n, data in enumerate(shapes)]
    records.append(EventRecord("other", "m365", "unified_audit", 0.0, {"Operation": "x"}))
    assert _same_as_per_event(RuleIndex(pack.rules), records) > 10


def test_objects_with_the_same_keys_in_another_order_or_differing_only_in_case_match_as_per_event(
    make_pack,
) -> None:
    # the batch reads a key map once for objects with the first object's set of keys: order
    # must not matter, and keys that differ only in case must still go through their own map
    pack = make_pack(
        rule_yaml("s:\n  status.errorCode: 50126\ncondition: s", name="failure"),
        rule_yaml("s:\n  appDisplayName|contains: graph\ncondition: s", name="graph"),
    )
    shapes = [
        {"appDisplayName": "Teams", "status": {"errorCode": 0, "failureReason": "none"}},
        {"status": {"failureReason": "bad", "errorCode": 50126}, "appDisplayName": "Graph Explorer"},
        {"status": {"ErrorCode": 50126, "errorCode": 0}, "appDisplayName": "Teams"},
        {"status": {"errorCode": 0, "ErrorCode": 50126}, "APPDISPLAYNAME": "graph", "appDisplayName": "x"},
        {"appDisplayName": "x", "APPDISPLAYNAME": "graph", "status": {"errorCode": 50126}},
        {"appDisplayName": ["Teams", "Graph"], "status": [{"errorCode": 50126}]},
    ]
    records = [EventRecord(n, "m365", "signins", float(n), data) for n, data in enumerate(shapes)]
    assert _same_as_per_event(RuleIndex(pack.rules), records) >= 3
