"""Conversations: the chat and mail about an incident join its timeline; the rest of the chat does not."""

from __future__ import annotations

from sqlmodel import select

from core.models.incident import TimelineEntry
from tests.factories import at
from timeline import build_incidents
from timeline.queries import get_timeline


def attached(db, incident_id: int) -> dict[int, list[str]]:
    with db.session(readonly=True) as session:
        entries = session.exec(
            select(TimelineEntry).where(
                TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "message"
            )
        ).all()
    return {e.body["message_id"]: e.body["reasons"] for e in entries}


def test_messages_naming_the_incidents_ip_file_or_app_are_attached(
    db, settings, make_finding, make_message
) -> None:
    make_finding(
        "File shared publicly",
        people=["alice@northwind.example"],
        ips=["203.0.113.7"],
        files=["Q3 Board Deck.pptx"],
        apps=["MailSync Pro"],
    )
    by_ip = make_message("anyone know who 203.0.113.7 is? it's hitting our tenant", sent_at=at(30))
    by_file = make_message("Who made the Q3 Board Deck public??", sent_at=at(hours=2))
    by_app = make_message(
        "IT: please revoke mailsync pro from everyone",
        sent_at=at(hours=5),
        provider="m365",
        stream="teams_messages",
    )
    make_message("the file server at 203.0.113.70 is down", sent_at=at(40))  # a different IP
    make_message("lunch at noon?", author="alice@northwind.example", sent_at=at(20))  # the person, chatting
    [incident_id] = build_incidents(db, settings, notify=False)
    found = attached(db, incident_id)
    assert sorted(found) == [by_ip, by_file, by_app]
    assert found[by_ip] == ["mentions source IP 203.0.113.7"]
    assert found[by_file] == [
        "mentions file Q3 Board Deck.pptx",
        "talks about security (“made the Q3 Board Deck public”)",
    ]


def test_a_person_of_the_incident_talking_about_security_is_attached(
    db, settings, make_finding, make_message
) -> None:
    make_finding("Impossible travel", people=["alice@northwind.example"])
    worried = make_message(
        "I just got an MFA prompt I didn't ask for", author="alice@northwind.example", sent_at=at(10)
    )
    about_her = make_message(
        "<@U0ALICE> did you share that doc? looks like phishing",
        author="bob@northwind.example",
        sent_at=at(12),
    )
    make_message("security training is on Friday", author="carol@northwind.example", sent_at=at(15))
    [incident_id] = build_incidents(db, settings, notify=False)
    found = attached(db, incident_id)
    assert list(found) == [worried]
    assert found[worried] == ["written by alice@northwind.example", "talks about security (“MFA prompt”)"]
    # once the identity tables map U0ALICE to alice, the mention counts too
    assert about_her not in found


def test_slack_mentions_resolve_through_accounts(
    db, settings, make_person, make_finding, make_message
) -> None:
    make_person(
        "alice@northwind.example",
        accounts=[{"provider": "slack", "provider_user_id": "U0ALICE", "email": "alice@northwind.example"}],
    )
    make_finding("Impossible travel", people=["alice@northwind.example"])
    about_her = make_message(
        "<@U0ALICE> did you share that doc? looks like phishing", author="U0BOB", sent_at=at(12)
    )
    [incident_id] = build_incidents(db, settings, notify=False)
    assert attached(db, incident_id)[about_her][0] == "mentions alice@northwind.example"


def test_slack_and_teams_ids_are_shown_as_the_people_and_channels_they_are(
    db, settings, make_person, make_finding, make_message
) -> None:
    from sqlmodel import select

    from core.models.identity import Account
    from core.models.incident import Incident, TimelineEntry

    make_person(
        "alice@northwind.example",
        accounts=[{"provider": "slack", "provider_user_id": "U0ALICE", "email": "alice@northwind.example"}],
    )
    make_person(
        "bob@northwind.example",
        accounts=[{"provider": "slack", "provider_user_id": "U0BOB", "email": "bob@northwind.example"}],
    )
    # a guest's account no person was resolved for, known by its Slack id only in the finding
    with db.session() as session:
        session.add(
            Account(provider="slack", provider_user_id="U0GUEST", email="r.kowalski@fastmail.example")
        )
    make_finding("Mass download from Slack", people=["alice@northwind.example"], accounts=["U0GUEST"])
    in_room = make_message(
        "<@U0ALICE> are those downloads yours? looks like phishing",
        author="U0BOB",
        sent_at=at(12),
        channel="C0IR42",
        meta={"channel_name": "incident-room"},
    )
    elsewhere = make_message(
        "<@U0ALICE> did you share that doc? looks like phishing",
        author="U0NOBODY",
        sent_at=at(13),
        channel="C0OTHER",
    )
    [incident_id] = build_incidents(db, settings, notify=False)
    with db.session(readonly=True) as session:
        titles = {
            e.body["message_id"]: e.title
            for e in session.exec(
                select(TimelineEntry).where(
                    TimelineEntry.incident_id == incident_id, TimelineEntry.kind == "message"
                )
            )
        }
        incident = session.get(Incident, incident_id)
    assert titles[in_room] == "message from bob@northwind.example in #incident-room"
    # an id nobody knows stays as it is, rather than guessing
    assert titles[elsewhere] == "message from U0NOBODY in C0OTHER"
    opened = incident.grouping[0]["text"]
    assert "r.kowalski@fastmail.example (U0GUEST)" in opened


def test_messages_outside_the_window_are_not_attached(db, settings, make_finding, make_message) -> None:
    make_finding(ips=["203.0.113.7"], people=["alice@northwind.example"])
    make_message("203.0.113.7 again", sent_at=at(days=-3))
    make_message("203.0.113.7 again", sent_at=at(days=5))
    [incident_id] = build_incidents(db, settings, notify=False)
    assert attached(db, incident_id) == {}


def test_a_person_talking_about_security_long_after_the_incident_is_not_attached(
    db, settings, make_finding, make_message
) -> None:
    # the victim is also someone who closes alerts: two days after her incident she writes about another one
    make_finding("Impossible travel", people=["alice@northwind.example"], ips=["203.0.113.7"])
    soon = make_message("that sign-in wasn't me", author="alice@northwind.example", sent_at=at(hours=20))
    make_message(
        "Closing yesterday's impossible travel alert: user was at the offsite",
        author="alice@northwind.example",
        sent_at=at(hours=40),
    )
    specific = make_message("203.0.113.7 is back in the firewall log", sent_at=at(hours=60))
    [incident_id] = build_incidents(db, settings, notify=False)
    # only a person ties the second message to the incident, and it is 40 h after it: not attached;
    # a message naming the incident's IP still counts in the whole 72 h window
    assert sorted(attached(db, incident_id)) == [soon, specific]


def test_a_person_closing_another_kind_of_alert_is_not_attached_and_one_of_its_kind_is(
    db, settings, make_finding, make_message
) -> None:
    # the traveller is also someone who closes alerts: hours later she writes about a phishing
    # alert, and about an impossible travel alert
    make_finding("Impossible travel: Lisbon then Sydney in 2 hours", people=["alice@northwind.example"])
    other = make_message(
        "Closing yesterday's phishing alert: it was the simulation",
        author="alice@northwind.example",
        sent_at=at(hours=7),
    )
    same = make_message(
        "Closing yesterday's impossible travel alert: user was at the offsite",
        author="alice@northwind.example",
        sent_at=at(hours=8),
    )
    victim = make_message(
        "Weird login alert from Okta, that wasn't me", author="alice@northwind.example", sent_at=at(hours=9)
    )
    [incident_id] = build_incidents(db, settings, notify=False)
    # then the alert of another kind is not about this incident; its own kind, and a victim's
    # "that wasn't me" beside a plain login alert, are
    found = attached(db, incident_id)
    assert other not in found
    assert sorted(found) == [same, victim]


def test_replies_in_the_thread_of_an_attached_message_follow_it(
    db, settings, make_finding, make_message
) -> None:
    make_finding(ips=["203.0.113.7"], people=["alice@northwind.example"])
    root = make_message(
        "seeing logins from 203.0.113.7",
        sent_at=at(5),
        message_id="1700000000.000100",
        thread_id="1700000000.000100",
    )
    reply = make_message("on it, resetting her sessions now", sent_at=at(9), thread_id="1700000000.000100")
    other_thread = make_message("on it", sent_at=at(9), thread_id="1700000000.999999")
    [incident_id] = build_incidents(db, settings, notify=False)
    found = attached(db, incident_id)
    assert sorted(found) == [root, reply]
    assert found[reply] == [f"same thread as message #{root}"]
    assert other_thread not in found
    # and a reply written after this build arrives at the next one, even days later
    late = make_message("closing this out", sent_at=at(days=6), thread_id="1700000000.000100")
    build_incidents(db, settings, notify=False)
    assert late in attached(db, incident_id)


def test_a_message_is_attached_once_however_often_builds_run(
    db, settings, make_finding, make_message
) -> None:
    make_finding(ips=["203.0.113.7"])
    make_message("203.0.113.7 is scanning us", sent_at=at(5))
    [incident_id] = build_incidents(db, settings, notify=False)
    build_incidents(db, settings, notify=False)
    make_finding("More from the same IP", ips=["203.0.113.7"], first_seen=at(60))
    build_incidents(db, settings, notify=False)
    assert len(attached(db, incident_id)) == 1


def test_two_incidents_each_get_their_own_conversation(db, settings, make_finding, make_message) -> None:
    make_finding(ips=["203.0.113.7"], people=["alice@northwind.example"])
    make_finding(
        "OAuth consent", apps=["Calendar Helper"], people=["dan@northwind.example"], first_seen=at(30)
    )
    about_ip = make_message("block 203.0.113.7 please", sent_at=at(35))
    about_app = make_message("what is Calendar Helper and why does it read mail?", sent_at=at(40))
    first, second = build_incidents(db, settings, notify=False)
    assert list(attached(db, first)) == [about_ip]
    assert list(attached(db, second)) == [about_app]


def test_excerpts_are_only_shown_to_roles_allowed_to_read_conversations(
    db, settings, make_finding, make_message
) -> None:
    make_finding(ips=["203.0.113.7"])
    make_message("203.0.113.7 got my password [REDACTED:secret]", sent_at=at(5), subject="urgent")
    [incident_id] = build_incidents(db, settings, notify=False)
    allowed = get_timeline(db, incident_id, kinds=["message"], include_excerpts=True).items[0]
    hidden = get_timeline(db, incident_id, kinds=["message"], include_excerpts=False).items[0]
    assert allowed.body["excerpt"] == "203.0.113.7 got my password [REDACTED:secret]"
    assert "203.0.113.7" not in str(hidden.body) and "203.0.113.7" not in hidden.title
    assert hidden.body["excerpt"].startswith("[conversation excerpt hidden")


def test_mail_shapes_from_the_collectors_are_understood(db, settings, make_finding, make_message) -> None:
    make_finding("Impossible travel", people=["alice@northwind.example"])
    # a phishing mail to alice, as Gmail headers give it
    phish = make_message(
        "Your mailbox is full. Verify your account here.",
        author='"IT Helpdesk" <helpdesk@evil.example>',
        meta={"to": "Alice Wong <alice@northwind.example>, bob@northwind.example"},
        provider="google",
        stream="gmail",
        channel="alice@northwind.example",
        thread_id="t-1",
        sent_at=at(-30),
    )
    # the same conversation in another mailbox (M365 keeps one conversationId across mailboxes)
    copy = make_message(
        "fwd: is this real?",
        author="Bob <bob@northwind.example>",
        provider="google",
        stream="gmail",
        channel="bob@northwind.example",
        thread_id="t-1",
        sent_at=at(-20),
    )
    [incident_id] = build_incidents(db, settings, notify=False)
    found = attached(db, incident_id)
    assert found[phish] == ["sent to alice@northwind.example", "talks about security (“Verify your account”)"]
    assert found[copy] == [f"same thread as message #{phish}"]


def test_a_file_attached_to_a_slack_message_counts_as_a_mention(
    db, settings, make_finding, make_message
) -> None:
    make_finding("File shared publicly", files=["Payroll-2025.xlsx"], people=["alice@northwind.example"])
    # a file name is everyday vocabulary: the file sent around, even by the person, is work
    make_message(
        "here you go", author="alice@northwind.example", sent_at=at(5), meta={"files": ["Payroll-2025.xlsx"]}
    )
    # the file in a message about security is about the incident
    worried = make_message("who made this public?", sent_at=at(6), meta={"files": ["Payroll-2025.xlsx"]})
    [incident_id] = build_incidents(db, settings, notify=False)
    assert attached(db, incident_id) == {
        worried: ["mentions file Payroll-2025.xlsx", "talks about security (“made this public”)"]
    }


def test_people_who_talk_security_every_day_are_not_a_sign(db, settings, make_finding, make_message) -> None:
    # given an analyst who writes about phishing and alerts all the time
    for day in range(1, 6):
        make_message(f"weekly phishing report #{day}", author="sam@northwind.example", sent_at=at(days=-day))
    make_finding("New device", people=["sam@northwind.example"], severity="medium")
    routine = make_message(
        "closing the impossible travel alert, user was at the offsite",
        author="sam@northwind.example",
        sent_at=at(60),
    )
    # and a colleague who never does
    make_finding("Impossible travel", people=["tia@northwind.example"], first_seen=at(5))
    unusual = make_message(
        "I got an MFA prompt I did not expect", author="tia@northwind.example", sent_at=at(65)
    )
    sam_incident, tia_incident = build_incidents(db, settings, notify=False)
    assert routine not in attached(db, sam_incident)
    assert unusual in attached(db, tia_incident)


def test_an_analysts_reply_belongs_to_the_thread_not_to_the_analysts_own_incident(
    db, settings, make_finding, make_message
) -> None:
    # given an incident about an attacker's app, and an unrelated one about the analyst's new phone
    make_finding(
        "OAuth consent to an unverified app", apps=["SecureDoc Viewer"], people=["jo@northwind.example"]
    )
    make_finding("New device", people=["bruno@northwind.example"], severity="medium", first_seen=at(10))
    question = make_message("Is SecureDoc Viewer something we use?", thread_id="t-9", sent_at=at(30))
    reply = make_message(
        "No. We're revoking the app's access now.",
        author="bruno@northwind.example",
        thread_id="t-9",
        sent_at=at(40),
    )
    app_incident, phone_incident = build_incidents(db, settings, notify=False)
    assert sorted(attached(db, app_incident)) == [question, reply]
    assert attached(db, phone_incident) == {}


def test_an_answer_in_a_small_teams_chat_follows_the_question(
    db, settings, make_person, make_finding, make_message
) -> None:
    make_person("daniel@northwind.example", name="Daniel Harris")
    make_finding("Inbox rule forwards mail outside", people=["daniel@northwind.example"])
    chat = "19:aaa_bbb@unq.gbl.spaces"
    question = make_message(
        "Did you get any weird emails from me overnight?",
        author="Daniel Harris",
        provider="m365",
        stream="teams_messages",
        channel=chat,
        sent_at=at(60),
    )
    answer = make_message(
        "Yes, one asking to change the bank details. Call IT now.",
        author="Hiro Park",
        provider="m365",
        stream="teams_messages",
        channel=chat,
        sent_at=at(63),
    )
    later = make_message(
        "lunch?", author="Hiro Park", provider="m365", stream="teams_messages", channel=chat, sent_at=at(200)
    )
    [incident_id] = build_incidents(db, settings, notify=False)
    found = attached(db, incident_id)
    assert found[question] == ["written by daniel@northwind.example", "talks about security (“weird emails”)"]
    assert found[answer] == [f"answers message #{question} in the same chat 3 min later"]
    assert later not in found


def test_canned_text_posted_by_several_people_is_no_sign(db, settings, make_finding, make_message) -> None:
    make_finding("Impossible travel", people=["uma@northwind.example"])
    canned = "Closing yesterday's impossible travel alert: user was at the offsite"
    mine = make_message(canned, author="uma@northwind.example", sent_at=at(30))
    make_message(canned, author="vic@northwind.example", sent_at=at(40))
    [incident_id] = build_incidents(db, settings, notify=False)
    assert mine not in attached(db, incident_id)
