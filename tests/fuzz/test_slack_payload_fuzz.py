"""Fuzzing Slack's interaction endpoint with requests Slack itself signed (issue 21): whatever the
payload — Slack-shaped with odd types, ids, button values and action ids, or any form body — the
answer is a 4xx/200 refusal or decision, never a 5xx or a traceback. (Unsigned odd input is
tests/security/test_slack_endpoint.py.)"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, note
from hypothesis import settings as budget
from hypothesis import strategies as st

from api.config import ApiSettings
from core.settings import RemediationSettings, Settings
from remediation.slack_approvals import APPROVE_ID, REJECT_ID
from tests.api.conftest import app, client  # noqa: F401 - the API tests' fixtures
from tests.factories import TEST_PEPPER
from tests.fuzz.budget import FUZZ

SECRET = "5f0e2231b10e8888abcd99yyyzzz85a5"
URL = "/integrations/slack/interactions"
SIGNED = budget(
    FUZZ,
    max_examples=min(FUZZ.max_examples, 120),
    suppress_health_check=[HealthCheck.function_scoped_fixture, *FUZZ.suppress_health_check],
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TG_FUZZ_SLACK_SIGNING", SECRET)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        remediation=RemediationSettings(
            slack_signing_secret_ref="env:TG_FUZZ_SLACK_SIGNING", slack_team_ids=["T0001"]
        ),
    )


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(token_pepper=TEST_PEPPER, rate_limit_per_second=0, auth_failures_per_minute=100_000)


def _signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


odd = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
ids = st.sampled_from(["T0001", "U0001", "W12345678", "", "T", "../", "U" * 300]) | odd
values = (
    st.builds(
        lambda a, f: f"{a}:{f}", st.integers(-3, 10**20), st.text("0123456789abcdefABCDEF", max_size=20)
    )
    | odd
    | st.lists(odd, max_size=2)
)
actions = st.fixed_dictionaries(
    {},
    optional={
        "action_id": st.sampled_from([APPROVE_ID, REJECT_ID, "oncall_ack", "x"]) | odd,
        "value": values,
        "action_ts": odd,
        "block_id": odd,
    },
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["block_actions", "view_submission", "shortcut"]) | odd,
        "user": st.fixed_dictionaries({}, optional={"id": ids, "name": odd}) | odd,
        "team": st.fixed_dictionaries({}, optional={"id": ids}) | odd,
        "actions": st.lists(actions | odd, max_size=3) | odd,
        "trigger_id": odd,
        "response_url": odd,
    },
)
# The exact shape tenantguard's buttons send, with plausible and unknown ids, steps and prefixes:
# these get past parsing to the team, person, step and version checks.
wellformed = st.builds(
    lambda user, team, action, step, prefix, ts: {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": team},
        "actions": [{"action_id": action, "value": f"{step}:{prefix}", "action_ts": ts}],
    },
    st.sampled_from(["U0001", "U0002", "W12345678"]),
    st.sampled_from(["T0001", "T9999"]),
    st.sampled_from([APPROVE_ID, REJECT_ID]),
    st.integers(0, 2**63),
    st.text("0123456789abcdef", min_size=16, max_size=16),
    st.text(max_size=50),
)
bodies = (
    wellformed.map(lambda p: urlencode({"payload": json.dumps(p)}).encode())
    | payloads.map(lambda p: urlencode({"payload": json.dumps(p, default=str)}).encode())
    | st.binary(max_size=300)
    | st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=4).map(
        lambda d: urlencode(d).encode()
    )
)


@SIGNED
@given(body=bodies)
def test_signed_payloads_of_any_shape_never_get_a_server_error(client: TestClient, body: bytes) -> None:  # noqa: F811
    response = client.post(URL, content=body, headers=_signed(body))
    note(f"{response.status_code} {response.text[:300]}")
    event(f"status {response.status_code}")
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
