"""Scenario generation: determinism, streaming, ground truth that points at served events, realism."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from geoip2fast import GeoIP2Fast

from simulator.errors import ScenarioError
from simulator.geo import load_geo
from simulator.scenario import available_scenarios, parse_scenario
from simulator.store import EVENT_STREAMS
from simulator.world import build_world

START = "2026-03-02T00:00:00Z"


@pytest.mark.parametrize("name", available_scenarios())
def test_every_truth_event_is_one_the_apis_serve(name):
    world = build_world(name, start=START)
    truth = world.truth()
    served = {stream: set(world.event_ids(stream)) for stream in EVENT_STREAMS}
    served.update(
        {
            s: set(world.event_ids(s))
            for s in ("slack:messages", "m365:mail", "google:gmail", "m365:teams_messages")
        }
    )

    referenced = [
        (e["provider"], e["stream"], e["id"])
        for story in truth["stories"] + truth["decoys"]
        for step in story["steps"]
        for e in step["events"]
    ]
    referenced += [
        (c["provider"], c["stream"], c["id"]) for story in truth["stories"] for c in story["conversations"]
    ]

    assert referenced or name == "quiet_week"
    missing = [r for r in referenced if r[2] not in served[f"{r[0]}:{r[1]}"]]
    assert missing == []
    assert all(step["events"] for story in truth["stories"] for step in story["steps"] if step["detectable"])


def test_the_same_seed_gives_the_same_world_and_another_seed_does_not():
    first = build_world("account_takeover", start=START, users=30, days=3)
    again = build_world("account_takeover", start=START, users=30, days=3)
    other = build_world("account_takeover", start=START, users=30, days=3, seed=99)

    assert first.truth() == again.truth()
    assert first.digest("m365:signins") == again.digest("m365:signins")
    assert first.digest("m365:signins") != other.digest("m365:signins")


def test_any_day_can_be_generated_first_with_the_same_ids():
    world = build_world("quiet_week", start=START, users=30, days=5)
    store = world.store
    day = world.options.start // 86_400_000_000 + 3
    cold = [r[1] for r in store.chunk("google:drive", day)]

    fresh = build_world("quiet_week", start=START, users=30, days=5).store
    for other_day in range(day - 3, day + 2):
        fresh.chunk("google:drive", other_day)
    warm = [r[1] for r in fresh.chunk("google:drive", day)]

    assert cold == warm


def test_one_persons_events_are_the_same_through_the_per_person_path():
    world = build_world("account_takeover", start=START, users=30, days=4)
    person = world.tenant.people[12]
    options = world.options

    direct = [r[1] for r in world.store.person_records("m365:signins", person, options.start, options.end)]
    from_chunks = [r[1] for r in world.store.all_records("m365:signins") if r[3] is person]

    assert direct == from_chunks


def test_caches_stay_bounded_while_streaming_many_days():
    world = build_world("quiet_week", start=START, users=60, days=40)

    total = sum(1 for _ in world.store.all_records("m365:unified_audit"))

    assert total > 60 * 40
    assert len(world.store._chunks._items) <= world.store._chunks.size
    assert len(world.store._plans._items) <= world.store._plans.size


def test_people_work_in_their_local_daytime():
    world = build_world("quiet_week", start=START, users=60, days=7)
    hours = Counter()
    for record in world.store.all_records("m365:signins"):
        session = record[4]
        local = datetime.fromtimestamp(record[0] / 1e6, ZoneInfo(session.city.tz))
        hours[local.hour] += 1

    daytime = sum(n for hour, n in hours.items() if 7 <= hour <= 22)
    assert daytime / sum(hours.values()) > 0.95


def test_background_has_look_alike_noise():
    world = build_world("quiet_week", start=START, users=80, days=7)
    signins = list(world.store.all_records("m365:signins"))
    networks = Counter(r[4].network for r in signins)

    failures = [r for r in signins if r[2] == "fail"]
    assert failures, "benign mistyped passwords"
    assert networks["travel"] and networks["corporate_vpn"], "travel, with and without the VPN"
    assert {r[4].city.country for r in signins} - {"US", "GB", "DE", "IN"}, "sign-ins from abroad"


def test_every_ip_block_geolocates_to_its_country_with_geoip2fast():
    lookup = GeoIP2Fast()
    wrong = [
        (code, block.prefix, lookup.lookup(block.address(7)).country_code)
        for code, country in load_geo().countries.items()
        for block in country.isp + country.hosting + country.tor
        if lookup.lookup(block.address(7)).country_code != code
    ]

    assert wrong == []


def test_attack_sign_ins_report_the_attackers_country_and_coordinates():
    world = build_world("account_takeover", start=START)
    truth = world.truth()
    step = next(s for s in truth["stories"][0]["steps"] if s["id"] == "initial_access")
    wanted = {e["id"] for e in step["events"] if e["stream"] == "signins"}
    from simulator.render import render

    signin = next(
        render(world.ctx, "m365:signins", r)
        for r in world.store.all_records("m365:signins")
        if render(world.ctx, "m365:signins", r)["id"] in wanted
    )

    assert signin["location"]["countryOrRegion"] == "RU"
    assert signin["location"]["geoCoordinates"]["latitude"] > 50
    assert GeoIP2Fast().lookup(signin["ipAddress"]).country_code == "RU"
    assert signin["riskLevelDuringSignIn"] == "high"


def test_unknown_scenario_keys_and_actions_are_refused_with_their_names():
    with pytest.raises(ScenarioError, match="colour"):
        parse_scenario({"id": "x", "colour": "blue"})
    bad_action = {"id": "x", "stories": [{"id": "s", "steps": [{"action": "m365.teleport"}]}]}
    with pytest.raises(ScenarioError, match="m365.teleport"):
        build_world(parse_scenario(bad_action), start=START)
    bad_country = {
        "id": "x",
        "stories": [
            {
                "id": "s",
                "actors": {"attacker": {"country": "XX"}},
                "steps": [{"action": "m365.password_spray"}],
            }
        ],
    }
    with pytest.raises(ScenarioError, match="XX"):
        build_world(parse_scenario(bad_country), start=START)


def test_remediation_targets_name_the_objects_the_attack_created():
    truth = build_world("account_takeover", start=START).truth()
    targets = {r["action"]: r["target"] for r in truth["stories"][0]["remediation"]}

    assert targets["remove_inbox_rule"]["rule_id"].endswith("AQ==")
    assert targets["revoke_sessions"]["user"] in truth["stories"][0]["people"]


def test_the_demo_plays_the_device_code_guest_and_delegated_admin_stories():
    from cli.demo import DEFAULT_SCENARIOS

    # every scenario the demo names exists, and the stories written for issue 24 are among them
    assert set(DEFAULT_SCENARIOS) <= set(available_scenarios())
    assert {"token_theft", "slack_guest_exfiltration", "google_delegated_admin"} <= set(DEFAULT_SCENARIOS)
    assert DEFAULT_SCENARIOS[-1] == "quiet_week"  # the no-attack control stays last


# Issue 24's attack techniques: (technique, story action, a parameter that must be set or None)
TECHNIQUES = [
    ("PIM role activation", "m365.pim_activation", None),
    ("permanent role assignment", "m365.role_assigned", None),
    ("app-only Graph writes", "m365.app_only_mail", None),
    ("token replay", "m365.token_replay", None),
    ("device-code phishing", "m365.device_code_signin", None),
    ("Slack guest into private channels", "slack.guest_invited", "channels"),
    ("Slack bulk file downloads", "slack.file_downloads", "files"),
    ("Slack workspace export", "slack.export", None),
    ("Google super admin by a delegated admin", "google.assign_role", "by"),
    ("2SV enforcement changed for one OU", "google.setting_changed", "org_unit"),
    ("Google Takeout", "google.takeout", None),
    ("mailbox permission grant", "m365.mailbox_permission", None),
]


def test_every_listed_attack_technique_is_a_detectable_step_of_a_shipped_story():
    from simulator.scenario import load_scenario

    steps = [
        step
        for name in available_scenarios()
        for story in load_scenario(name).stories
        for step in story.steps
        if step.detectable
    ]
    missing = [
        f"{technique} ({action})"
        for technique, action, param in TECHNIQUES
        if not any(s.action == action and (param is None or s.params.get(param)) for s in steps)
    ]
    assert missing == [], f"no shipped attack story plays: {missing}"
