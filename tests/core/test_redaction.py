"""Redaction: what collectors run on every chat/mail text before a Message row exists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import RedactionPolicyError
from core.redaction import (
    DEFAULT_KINDS,
    RedactionKind,
    RedactionPolicy,
    luhn_valid,
    redact,
    verhoeff_valid,
)

SECRETS = {
    "slack bot token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "slack user token": "xoxp-123456789012-123456789012-123456789012-0123456789abcdef0123456789abcdef",
    "slack app token": "xapp-1-A0123456789-1234567890123-0123456789abcdef",
    "slack webhook": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "google api key": "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "google access token": "ya29.a0AfH6SMBx1234567890abcdefghijklmnopqrstuvwxyz",
    "google refresh token": "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "google client secret": "GOCSPX-AbCdEfGhIjKlMnOpQrStUvWxYz12",
    "aws access key id": "AKIAIOSFODNN7EXAMPLE",
    "github token": "ghp_0123456789abcdefghijklmnopqrstuvwxyz",
    "github fine-grained token": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789",
    "gitlab token": "glpat-AbCdEfGhIjKlMnOpQrSt",
    "stripe key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "openai key": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "azure client secret": "abc8Q~AbCdEfGhIjKlMnOpQrStUvWxYz012345_",
    "jwt": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    ),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_provider_tokens_are_removed_whole(name: str) -> None:
    # given a chat message pasting a credential
    secret = SECRETS[name]
    text = f"hey, can you try with {secret} please?"
    # when it is redacted
    result = redact(text)
    # then nothing of the credential survives, and the sentence around it does
    assert secret not in result.text
    assert secret[-6:] not in result.text
    assert result.text.startswith("hey, can you try with [REDACTED:secret]")
    assert result.text.endswith(" please?")
    assert result.counts == {"secret": 1}


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("my password: hunter2!", "my password: ", "hunter2"),
        ("Password is Tr0ub4dor&3 now", "Password is ", "Tr0ub4dor&3"),
        ('{"password": "correct horse battery"}', '{"password": ', "correct horse"),
        ("pwd=S3cr3t;user=bob", "pwd=", "S3cr3t"),
        ("client_secret = abcDEF123456", "client_secret = ", "abcDEF123456"),
        ("api_key: 'k-9f8e7d6c5b4a'", "api_key: ", "9f8e7d6c5b4a"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key=", "wJalr"),
        ("curl -H 'Authorization: Bearer abc123def456ghi789'", "Authorization: Bearer ", "abc123def456"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ", "dXNlcjpw"),
        ("db at postgres://app:pa55word@db.internal:5432/x", "postgres://app:", "pa55word"),
    ],
)
def test_credentials_in_assignments_keep_the_label_and_lose_the_value(
    text: str, kept: str, gone: str
) -> None:
    result = redact(text)
    assert kept in result.text
    assert gone not in result.text
    assert result.counts == {"secret": 1}


def test_a_private_key_block_is_removed_from_begin_to_end() -> None:
    key = (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq98rYr\nq1w2e3r4t5y6u7i8o9p0\n"
        "-----END RSA PRIVATE KEY-----"
    )
    result = redact(f"here is the key:\n{key}\nthanks")
    assert result.text == "here is the key:\n[REDACTED:secret]\nthanks"


def test_a_truncated_private_key_block_is_still_removed() -> None:
    result = redact("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAABG5vbmU=")
    assert "b3BlbnNz" not in result.text
    assert result.counts == {"secret": 1}


def test_words_after_bearer_or_token_that_are_not_credentials_stay() -> None:
    text = "we use bearer authentication; the token expired; see tokenizer docs"
    assert redact(text).text == text


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",  # Visa
        "4111 1111 1111 1111",
        "5555-5555-5555-4444",  # Mastercard
        "2223003122003222",  # Mastercard 2-series
        "378282246310005",  # Amex
        "3782 822463 10005",
        "6011111111111117",  # Discover
        "3530111333300000",  # JCB
        "30569309025904",  # Diners
    ],
)
def test_luhn_valid_card_numbers_of_real_networks_are_removed(card: str) -> None:
    result = redact(f"charged to {card} yesterday")
    assert result.text == "charged to [REDACTED:payment_card] yesterday"
    assert result.counts == {"payment_card": 1}


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # Luhn fails
        "4111 1111 1111 1112",
        "1234567812345670",  # Luhn passes but no card network starts with 1
        "1705312200000",  # epoch milliseconds
        "4111 1111-1111 1111",  # mixed separators
        "41111111111111110000",  # 20 digits
    ],
)
def test_numbers_that_are_not_cards_are_left_alone(number: str) -> None:
    text = f"reference {number} done"
    assert redact(text).text == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("SSN 123-45-6789 on file", "123-45-6789"),
        ("ssn: 123456789", "123456789"),
        ("NI number AB 12 34 56 C", "AB 12 34 56 C"),
        ("NINO JG103759A", "JG103759A"),
        ("SIN 130 692 544", "130 692 544"),
        ("DNI 12345678Z", "12345678Z"),
        ("NIE X1234567L", "X1234567L"),
        ("Aadhaar 2345 6789 0125", "2345 6789 0125"),
    ],
)
def test_national_ids_with_valid_shapes_and_checksums_are_removed(text: str, secret: str) -> None:
    result = redact(text)
    assert secret not in result.text
    assert result.counts == {"national_id": 1}


@pytest.mark.parametrize(
    "text",
    [
        "SSN 000-12-3456",  # area 000 never issued
        "SSN 666-12-3456",
        "id 900-12-3456",
        "SSN 123-00-4567",
        "NI GB 12 34 56 A",  # GB prefix never issued
        "SIN 130 692 545",  # Luhn fails
        "SIN 046 454 286",  # 0 is reserved for fictitious numbers
        "DNI 12345678A",  # wrong check letter
        "Aadhaar 2345 6789 0124",  # Verhoeff fails
        "version 1.2.3-45-6789abc",
    ],
)
def test_look_alike_ids_that_fail_their_rules_are_left_alone(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "+1 (415) 555-0199",
        "+33612345678",
        "(415) 555-0199",
        "415-555-0199",
        "07700 900123",
    ],
)
def test_phone_numbers_are_removed(phone: str) -> None:
    result = redact(f"call me on {phone} later")
    assert result.text == "call me on [REDACTED:phone] later"


@pytest.mark.parametrize(
    "text",
    [
        "at 2024-01-15T10:30:00Z from 203.0.113.5",
        "event 1705312200.123456 in C0123ABCD",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "ticket INC-20240115-0042, order 98765",
        "build 2024.01.15 took 12:30:45",
        "IP 10.0.0.1 and 192.168.100.254",
        "file Q3-report-2024-final.xlsx shared with 3 people",
        "m365 event 7d5f1c3e-0001-4000-8000-000000000001",
    ],
)
def test_timestamps_ids_and_addresses_are_untouched(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.counts == {}


def test_email_addresses_stay_by_default_and_go_when_the_policy_asks() -> None:
    text = "forwarded to mallory@evil.example by alice@corp.example"
    assert redact(text).text == text
    policy = RedactionPolicy.from_config({"email": True})
    result = redact(text, policy)
    assert result.text == "forwarded to [REDACTED:email] by [REDACTED:email]"
    assert result.counts == {"email": 2}


def test_a_policy_can_keep_phone_numbers_but_never_secrets() -> None:
    policy = RedactionPolicy.from_config({"kinds": ["payment_card"]})
    assert policy.kinds == {RedactionKind.SECRET, RedactionKind.PAYMENT_CARD}
    result = redact("ring +44 20 7946 0958, password: hunter2", policy)
    assert result.text == "ring +44 20 7946 0958, password: [REDACTED:secret]"
    with pytest.raises(RedactionPolicyError, match="secret"):
        RedactionPolicy.from_config({"secret": False})


def test_an_unknown_kind_in_a_policy_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(RedactionPolicyError, match="'passport'.*payment_card"):
        RedactionPolicy.from_config({"kinds": ["passport"]})


def test_the_default_policy_covers_everything_except_email() -> None:
    assert set(DEFAULT_KINDS) == set(RedactionKind) - {RedactionKind.EMAIL}


def test_overlapping_findings_are_redacted_once_as_the_most_specific_kind() -> None:
    # a token pasted in a URL query also contains digits that look like a phone number
    result = redact("https://x.example/cb?token=ghp_0123456789abcdefghijklmnopqrstuvwxyz&n=415-555-0199")
    assert "ghp_" not in result.text
    assert result.counts == {"secret": 1, "phone": 1}


def test_redacting_twice_changes_nothing_more() -> None:
    once = redact("password: hunter2, card 4111111111111111, call +44 20 7946 0958")
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.counts == {}


def test_non_ascii_text_keeps_its_characters_around_the_placeholders() -> None:
    result = redact("Größe: ünïcødé — Passwort: geheim123 — 日本語 4111111111111111 ✓")
    assert result.text == "Größe: ünïcødé — Passwort: [REDACTED:secret] — 日本語 [REDACTED:payment_card] ✓"


def test_a_hostile_long_message_is_handled() -> None:
    text = ("1" * 5000 + " ") * 20 + "+" * 10000 + "-----BEGIN PRIVATE KEY-----" + "A" * 50000
    result = redact(text)
    assert result.counts == {"secret": 1}
    assert "AAAA" not in result.text


def test_checksums_match_their_published_examples() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert verhoeff_valid("2363") and not verhoeff_valid("2364")


def _luhn_complete(body: str) -> str:
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable")


@settings(max_examples=150, deadline=None)
@given(
    body=st.text(alphabet="0123456789", min_size=14, max_size=14),
    before=st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=30),
    after=st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=30),
)
def test_any_visa_number_never_survives_whatever_surrounds_it(body: str, before: str, after: str) -> None:
    card = _luhn_complete("4" + body)
    result = redact(f"{before} {card} {after}")
    assert card not in result.text


@settings(max_examples=150, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="+@"), max_size=200
    )
)
def test_text_without_digits_or_credential_words_is_returned_unchanged(text: str) -> None:
    lowered = text.lower()
    if any(word in lowered for word in ("pass", "pwd", "token", "secret", "key", "bearer", "://", "basic")):
        return
    assert redact(text).text == text
