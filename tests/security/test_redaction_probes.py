"""Issue 21: redaction leaked probes within its own documented scope. Each probe's secret value
must be gone from what is stored; ordinary text around it stays."""

from __future__ import annotations

import pytest

from core.redaction import redact

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

PROBES = {
    "password for a named thing": ("the password for the vpn is Hunter2Secret!", "Hunter2Secret!"),
    "pw abbreviation": ("pw: Tr0ub4dor&3", "Tr0ub4dor&3"),
    "url-encoded slack token": (
        "GET /hook?token%3Dxoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
    ),
    "url-encoded token assignment": ("callback?access_token%3Dq8Zr4Lk2Xy9Wv", "q8Zr4Lk2Xy9Wv"),
    "azure storage account key": (
        f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={AZURE_KEY};EndpointSuffix=core.windows.net",
        AZURE_KEY,
    ),
    "unlabelled aws secret key": (f"here you go {AWS_SECRET} use it with the id", AWS_SECRET),
    "iban": ("wire it to GB82 WEST 1234 5698 7654 32 today", "GB82 WEST 1234 5698 7654 32"),
    "iban unspaced": ("IBAN DE89370400440532013000", "DE89370400440532013000"),
}


@pytest.mark.parametrize("text, secret", PROBES.values(), ids=list(PROBES))
def test_a_probe_within_the_documented_scope_is_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text).text


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b fixed it",  # a git sha: 40 hex
        "order GB12 is ready",
        "see ticket DE12345",
        "the password policy was updated",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text).text == text
