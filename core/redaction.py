"""Redact secrets and personal data from chat and mail text before anything stores it.

Contract: collectors call :func:`redact` on every message body (and subject) BEFORE the
``Message`` row is built; only ``Redacted.text`` and ``Redacted.counts`` are ever written, so the
clear text never reaches the database, a log or an API response.

What is found, per :class:`RedactionKind`:

* ``secret`` — private key blocks; Slack ``xox?-`` tokens, ``xapp-`` tokens and webhook URLs;
  Google API keys, OAuth access/refresh tokens and client secrets; AWS access key ids and secret
  keys (labelled ``aws_secret_access_key=...`` or 40 mixed-case base64 characters alone); Azure
  storage ``AccountKey=``/``SharedAccessKey=``; GitHub/GitLab tokens; Stripe, SendGrid, npm and
  OpenAI keys; Azure AD client secrets; JWTs; ``Bearer``/``Basic`` credentials; passwords in URLs
  and in ``password: ...`` / ``pw: ...`` / ``password for the vpn is ...`` / ``api_key=...`` forms,
  URL-encoded ``token%3D...`` too (the keyword is kept, only the value goes). Secrets are always redacted: a policy cannot switch them off.
* ``payment_card`` — 13–19 digits (optionally grouped with spaces or hyphens) whose prefix belongs
  to a card network AND that pass the Luhn check, and IBANs (the country's length and the mod-97
  check); anything else is left alone.
* ``national_id`` — US SSN (``123-45-6789``, area/group/serial rules), UK National Insurance
  numbers (prefix rules), Canadian SIN (grouped, Luhn), Spanish DNI/NIE (check letter) and Indian
  Aadhaar (grouped, Verhoeff check). Each has a checksum or a strict shape, which keeps dates,
  ids and order numbers out.
* ``phone`` — international ``+CC ...`` numbers with 8–15 digits, North American numbers written
  with separators, UK national numbers starting ``01/02/03/07``.
* ``email`` — only when the policy asks for it (an incident's people are usually the point of the
  conversation, so most tenants keep addresses visible).

Every pattern runs on RE2 (linear time, no catastrophic backtracking), so a hostile message costs
time proportional to its length; token bodies are unbounded on purpose so that a long JWT is
removed whole rather than leaving its tail behind.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

import re2

from core.errors import RedactionPolicyError


class RedactionKind(StrEnum):
    SECRET = "secret"
    PAYMENT_CARD = "payment_card"
    NATIONAL_ID = "national_id"
    PHONE = "phone"
    EMAIL = "email"


# When two findings overlap, the more specific (earlier) kind wins.
_KIND_ORDER = (
    RedactionKind.SECRET,
    RedactionKind.PAYMENT_CARD,
    RedactionKind.NATIONAL_ID,
    RedactionKind.PHONE,
    RedactionKind.EMAIL,
)
DEFAULT_KINDS = frozenset(_KIND_ORDER) - {RedactionKind.EMAIL}
PLACEHOLDER = "[REDACTED:{kind}]"
_PLACEHOLDER_PREFIX = "[REDACTED:"


@dataclass(frozen=True)
class RedactionPolicy:
    """Which kinds of data a tenant wants removed; secrets are always among them."""

    kinds: frozenset[RedactionKind] = DEFAULT_KINDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", frozenset(self.kinds) | {RedactionKind.SECRET})

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> RedactionPolicy:
        """Build from a tenant's ``Connection.config["redaction"]``.

        Accepted shapes: ``{"kinds": ["payment_card", "phone", ...]}`` (the full list), or
        toggles on top of the default such as ``{"email": true, "phone": false}``.
        """
        if not config:
            return cls()
        if not isinstance(config, Mapping):
            raise RedactionPolicyError(
                f"redaction policy must be a mapping like {{'kinds': [...]}}, not {config!r}"
            )
        if "kinds" in config:
            return cls(frozenset(_parse_kind(name) for name in config["kinds"]))
        kinds = set(DEFAULT_KINDS)
        for name, enabled in config.items():
            kind = _parse_kind(name)
            if kind is RedactionKind.SECRET and not enabled:
                raise RedactionPolicyError(
                    "redaction policy cannot switch off 'secret': secrets are never stored in clear"
                )
            (kinds.add if enabled else kinds.discard)(kind)
        return cls(frozenset(kinds))


def _parse_kind(name: Any) -> RedactionKind:
    try:
        return RedactionKind(str(name))
    except ValueError:
        allowed = ", ".join(kind.value for kind in RedactionKind)
        raise RedactionPolicyError(f"unknown redaction kind {name!r}; use one of: {allowed}") from None


@dataclass(frozen=True)
class Redacted:
    """The text with placeholders, and how many items of each kind were removed."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# --------------------------------------------------------------------------- validators


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 7, 6, 0, 8),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_valid(digits: str) -> bool:
    check = 0
    for position, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][ord(char) - 48]]
    return check == 0


def _only_digits(text: str) -> str:
    return "".join(ch for ch in text if "0" <= ch <= "9")


def _card_network_prefix(digits: str) -> bool:
    """Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro ranges (ISO/IEC 7812 IINs)."""
    two, three, four, six = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    length = len(digits)
    if digits[0] == "4":
        return length in (13, 16, 19)
    if 51 <= two <= 55 or 222100 <= six <= 272099:
        return length == 16
    if two in (34, 37):
        return length == 15
    if four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925:
        return 16 <= length <= 19
    if 3528 <= four <= 3589:
        return 16 <= length <= 19
    if 300 <= three <= 305 or two in (36, 38, 39) or four == 3095:
        return 14 <= length <= 19
    if two == 62:
        return 16 <= length <= 19
    if two in (50, 56, 57, 58, 63, 67) or four in (6304, 6759, 6761, 6762, 6763):
        return 12 <= length <= 19
    return False


def _valid_card(match: str) -> bool:
    separators = {ch for ch in match if not ch.isdigit()}
    if len(separators) > 1:  # "4111 1111-1111 1111" is not how anyone writes a card number
        return False
    digits = _only_digits(match)
    return 13 <= len(digits) <= 19 and _card_network_prefix(digits) and luhn_valid(digits)


def _valid_ssn(match: str) -> bool:
    digits = _only_digits(match)
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _valid_nino(match: str) -> bool:
    if match.count(" ") not in (0, 2, 4):
        return False  # "AB123456C", "AB 123456 C" or "AB 12 34 56 C"; ragged spacing is something else
    return match[:2] not in _NINO_BAD_PREFIXES


def _valid_sin(match: str) -> bool:
    digits = _only_digits(match)
    return digits[0] not in "08" and len({ch for ch in match if not ch.isdigit()}) == 1 and luhn_valid(digits)


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _valid_dni(match: str) -> bool:
    body, letter = match[:-1], match[-1]
    body = {"X": "0", "Y": "1", "Z": "2"}.get(body[0], body[0]) + body[1:]
    return body.isdigit() and _DNI_LETTERS[int(body) % 23] == letter


def _valid_aadhaar(match: str) -> bool:
    digits = _only_digits(match)
    return len({ch for ch in match if not ch.isdigit()}) <= 1 and verhoeff_valid(digits)


def _valid_intl_phone(match: str) -> bool:
    return 8 <= len(_only_digits(match)) <= 15


def _valid_nanp_phone(match: str) -> bool:
    digits = _only_digits(match)
    return len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789"


def _valid_uk_phone(match: str) -> bool:
    digits = _only_digits(match)
    return len(digits) in (10, 11) and digits[1] in "1237"


def _not_a_placeholder(value: str) -> bool:
    return not value.startswith(_PLACEHOLDER_PREFIX) and not value.startswith(("'[REDACTED", '"[REDACTED'))


def _credential_value(value: str) -> bool:
    """`Bearer <x>` only counts when x looks like a credential, not a word ("bearer authentication")."""
    return _not_a_placeholder(value) and (any(ch.isdigit() for ch in value) or len(value) >= 24)


def _looks_like_aws_secret(value: str) -> bool:
    """40 base64 characters with upper and lower case and a digit: a git sha (hex) or a word is not."""
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
        and sum(c.isalpha() for c in value) >= 20
    )


def _valid_iban(match: str) -> bool:
    """ISO 13616: the country's length and the mod-97 check."""
    compact = match.replace(" ", "").upper()
    if len(compact) != _IBAN_LENGTHS.get(compact[:2], -1):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26,
    "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip


# --------------------------------------------------------------------------- detectors


class Detector(NamedTuple):
    """One pattern; `validate` sees the matched value and may veto it (checksums, ranges)."""

    name: str
    kind: RedactionKind
    pattern: Any  # a compiled re2 pattern
    validate: Callable[[str], bool] | None = None
    # A pattern with a group named "value" redacts only that group (keeps "password: ").
    value_group: int = 0


def _detector(
    name: str, kind: RedactionKind, pattern: str, validate: Callable[[str], bool] | None = None
) -> Detector:
    compiled = re2.compile(pattern)
    return Detector(name, kind, compiled, validate, compiled.groupindex.get("value", 0))


_QUOTED_OR_BARE_VALUE = r"""(?P<value>"[^"\n]{1,200}"|'[^'\n]{1,200}'|[^\s"',;&]{1,200})"""
_KEY_CHARS = r"[A-Za-z0-9_\-]"

_SECRET_DETECTORS = (
    _detector(
        "private_key",
        RedactionKind.SECRET,
        r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?-----"
        r"(?:[\s\S]*?-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,\-]*)",
    ),
    _detector("slack_token", RedactionKind.SECRET, r"xox[abposrce]-[0-9A-Za-z\-]{8,250}"),
    _detector("slack_app_token", RedactionKind.SECRET, r"\bxapp-\d-[0-9A-Za-z\-]{8,250}"),
    _detector(
        "slack_webhook",
        RedactionKind.SECRET,
        r"https://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{8,300}",
    ),
    _detector("google_api_key", RedactionKind.SECRET, r"\bAIza" + _KEY_CHARS + r"{35}"),
    _detector("google_oauth_token", RedactionKind.SECRET, r"\bya29\.[0-9A-Za-z_\-]{20,}"),
    _detector("google_refresh_token", RedactionKind.SECRET, r"\b1//0[0-9A-Za-z_\-]{20,500}"),
    _detector("google_client_secret", RedactionKind.SECRET, r"\bGOCSPX-" + _KEY_CHARS + r"{20,40}"),
    _detector(
        "aws_access_key_id",
        RedactionKind.SECRET,
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[0-9A-Z]{16}\b",
    ),
    _detector(
        "aws_secret_access_key",
        RedactionKind.SECRET,
        r"(?i)aws_?secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?(?P<value>[A-Za-z0-9/+=]{40})\b",
    ),
    _detector(
        "aws_secret_access_key_unlabelled",
        RedactionKind.SECRET,
        r"(?:^|[^A-Za-z0-9/+=])(?P<value>[A-Za-z0-9/+]{40})(?:$|[^A-Za-z0-9/+=])",
        _looks_like_aws_secret,
    ),
    _detector("github_token", RedactionKind.SECRET, r"\bgh[pousr]_[A-Za-z0-9]{36,251}\b"),
    _detector("github_pat", RedactionKind.SECRET, r"\bgithub_pat_[A-Za-z0-9_]{22,255}"),
    _detector("gitlab_token", RedactionKind.SECRET, r"\bglpat-" + _KEY_CHARS + r"{20,60}"),
    _detector("stripe_key", RedactionKind.SECRET, r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,250}"),
    _detector(
        "sendgrid_key", RedactionKind.SECRET, r"\bSG\." + _KEY_CHARS + r"{22}\." + _KEY_CHARS + r"{43}"
    ),
    _detector("npm_token", RedactionKind.SECRET, r"\bnpm_[A-Za-z0-9]{36}\b"),
    _detector("openai_key", RedactionKind.SECRET, r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{32,250}"),
    _detector(
        "azure_client_secret", RedactionKind.SECRET, r"\b[A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}"
    ),
    _detector(
        "jwt",
        RedactionKind.SECRET,
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{0,}",
    ),
    _detector(
        "bearer",
        RedactionKind.SECRET,
        r"\b(?:[Bb]earer|BEARER)\s{1,5}(?P<value>[A-Za-z0-9\-._~+/]{8,}={0,2})",
        _credential_value,
    ),
    _detector(
        "basic_auth",
        RedactionKind.SECRET,
        r"(?i)\bauthorization\s*:\s*basic\s{1,5}(?P<value>[A-Za-z0-9+/]{8,}={0,2})",
    ),
    _detector(
        "url_password",
        RedactionKind.SECRET,
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:/@]{1,200}:(?P<value>[^\s@/]{1,200})@",
        _not_a_placeholder,
    ),
    _detector(
        "password",
        RedactionKind.SECRET,
        r"(?i)\b(?:password|passwd|pwd|pw|passphrase|passcode|mot de passe|passwort|contraseña)[\"']?"
        # "the password for the vpn is X": up to four words naming what it is for
        r"(?:\s+(?:for|to|of|on)(?:\s+[^\s:=]{1,40}){1,4}?)?"
        r"(?:\s*[:=]|\s*%3[Dd]|\s*=>|\s+(?:is|was|:))\s*" + _QUOTED_OR_BARE_VALUE,
        _not_a_placeholder,
    ),
    _detector(
        "secret_assignment",
        RedactionKind.SECRET,
        r"(?i)\b(?:client[_\-]?secret|secret[_\-]?key|api[_\-]?key|api[_\-]?secret|access[_\-]?token|"
        r"auth[_\-]?token|refresh[_\-]?token|private[_\-]?key|account[_\-]?key|shared[_\-]?access[_\-]?key|"
        r"token|secret)[\"']?\s*(?:[:=]|%3[Dd])\s*" + _QUOTED_OR_BARE_VALUE,
        _not_a_placeholder,
    ),
)

_PAYMENT_DETECTORS = (
    _detector("payment_card", RedactionKind.PAYMENT_CARD, r"\b\d(?:[ \-]?\d){11,18}\b", _valid_card),
    _detector("iban", RedactionKind.PAYMENT_CARD, r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", _valid_iban),
)

_NATIONAL_ID_DETECTORS = (
    _detector("us_ssn", RedactionKind.NATIONAL_ID, r"\b\d{3}-\d{2}-\d{4}\b", _valid_ssn),
    _detector(
        "us_ssn_labelled",
        RedactionKind.NATIONAL_ID,
        r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\s*[:#]?\s*(?P<value>\d{9})\b",
        _valid_ssn,
    ),
    _detector(
        "uk_nino",
        RedactionKind.NATIONAL_ID,
        r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
        _valid_nino,
    ),
    _detector("ca_sin", RedactionKind.NATIONAL_ID, r"\b\d{3}[ \-]\d{3}[ \-]\d{3}\b", _valid_sin),
    _detector("es_dni_nie", RedactionKind.NATIONAL_ID, r"\b[XYZ0-9]\d{7}[A-Z]\b", _valid_dni),
    _detector("in_aadhaar", RedactionKind.NATIONAL_ID, r"\b[2-9]\d{3}[ \-]\d{4}[ \-]\d{4}\b", _valid_aadhaar),
)

_PHONE_DETECTORS = (
    _detector(
        "intl_phone",
        RedactionKind.PHONE,
        r"\+[1-9]\d{0,3}(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]?\d{1,5}){1,6}\b",
        _valid_intl_phone,
    ),
    _detector(
        "nanp_phone",
        RedactionKind.PHONE,
        r"(?:\(\d{3}\)\s?|\b\d{3}[.\-])\d{3}[.\-]\d{4}\b",
        _valid_nanp_phone,
    ),
    _detector("uk_phone", RedactionKind.PHONE, r"\b0\d{2,4}[ \-]?\d{3,4}[ \-]?\d{3,4}\b", _valid_uk_phone),
)

_EMAIL_DETECTORS = (
    _detector(
        "email",
        RedactionKind.EMAIL,
        r"\b[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}\b",
    ),
)

DETECTORS: tuple[Detector, ...] = (
    _SECRET_DETECTORS + _PAYMENT_DETECTORS + _NATIONAL_ID_DETECTORS + _PHONE_DETECTORS + _EMAIL_DETECTORS
)


# --------------------------------------------------------------------------- redact


class _Span(NamedTuple):
    start: int
    end: int
    kind: RedactionKind


def _find_spans(text: str, detectors: Iterable[Detector]) -> list[_Span]:
    spans: list[_Span] = []
    for detector in detectors:
        for match in detector.pattern.finditer(text):
            start, end = match.span(detector.value_group)
            if start < 0 or start == end:
                continue
            if detector.validate is not None and not detector.validate(text[start:end]):
                continue
            spans.append(_Span(start, end, detector.kind))
    return spans


def _choose_non_overlapping(spans: list[_Span]) -> list[_Span]:
    """Keep the most specific kind where findings overlap (a token inside a URL stays a secret)."""
    rank = {kind: position for position, kind in enumerate(_KIND_ORDER)}
    chosen: list[_Span] = []  # sorted by start, never overlapping
    for span in sorted(spans, key=lambda s: (rank[s.kind], s.start, -(s.end - s.start))):
        at = bisect.bisect_left(chosen, span)
        if at > 0 and chosen[at - 1].end > span.start:
            continue
        if at < len(chosen) and chosen[at].start < span.end:
            continue
        chosen.insert(at, span)
    return chosen


def redact(text: str, policy: RedactionPolicy | None = None) -> Redacted:
    """Replace every item the policy covers with ``[REDACTED:<kind>]`` and count them by kind."""
    if not text:
        return Redacted(text or "", {})
    kinds = (policy or RedactionPolicy()).kinds
    spans = _choose_non_overlapping(_find_spans(text, (d for d in DETECTORS if d.kind in kinds)))
    if not spans:
        return Redacted(text, {})
    pieces: list[str] = []
    counts: dict[str, int] = {}
    cursor = 0
    for span in spans:
        pieces.append(text[cursor : span.start])
        pieces.append(PLACEHOLDER.format(kind=span.kind.value))
        counts[span.kind.value] = counts.get(span.kind.value, 0) + 1
        cursor = span.end
    pieces.append(text[cursor:])
    return Redacted("".join(pieces), counts)


def redact_typed(text: str) -> str:
    """The stored form of a free-text field a person typed (comment, reason, assignee, link, note).

    People paste tokens and phone numbers into any box, so every such field is redacted with the
    default policy before it is stored, audited or shown; callers keep their own trimming and limits.
    """
    return redact(text).text
