"""Issue 21, Slack endpoint: odd input gave a 500 with an 11 KB traceback before the signature was
checked; every unsigned request was appended to the audit chain with the raw header as object id;
an empty fingerprint prefix bypassed the stale-button check and another team's click was taken.
Now Slack's signature is verified first on the raw bytes, unsigned requests are counted and
rate-limited, and buttons are parsed strictly."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from api.config import ApiSettings
from core.db import Database
from core.models import ActionStatus, AuditRecord
from core.settings import RemediationSettings, Settings
from remediation import get_plan, plan_for_incident
from tests.factories import TEST_PEPPER
from tests.remediation.conftest import VICTIM, analyst, approver, ato_incident  # noqa: F401 - fixtures

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
URL = "/integrations/slack/interactions"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TG_TEST_SLACK_SIGNING", SECRET)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        remediation=RemediationSettings(slack_signing_secret_ref="env:TG_TEST_SLACK_SIGNING"),
    )


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(token_pepper=TEST_PEPPER, rate_limit_per_second=0, auth_failures_per_minute=1000)


def _signed(body: bytes, at: int | None = None) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _chain_length(db: Database) -> int:
    with db.session(readonly=True) as session:
        return int(session.exec(select(func.count()).select_from(AuditRecord)).one())


ODD_BODIES = [b"\xff\xfe\x00payload=%ZZ", b"payload=" + b"\xc3" * 300, b"", b"payload=%7B%22type%22%3A1%7D"]
ODD_TIMESTAMPS: list[bytes] = [
    "²".encode("latin-1"),
    b"9" * 5000,
    b"-1",
    "１２３".encode(),
    b" 1700000000",
    b"1e9",
    b"\xff",
]


def test_odd_unsigned_requests_get_401_never_500_and_do_not_grow_the_audit_chain(
    client: TestClient, db: Database
) -> None:
    before = _chain_length(db)
    answers = []
    for body in ODD_BODIES:
        for timestamp in [*ODD_TIMESTAMPS, str(int(time.time())).encode()]:
            for signature in (b"v0=" + b"0" * 64, b"v0=zz", "v0=é".encode(), b""):
                headers = {
                    "X-Slack-Request-Timestamp": timestamp,
                    "X-Slack-Signature": signature,
                    "Content-Type": "application/x-www-form-urlencoded",
                }
                response = client.post(URL, content=body, headers=headers)  # type: ignore[arg-type]
                answers.append(response.status_code)
                assert "Traceback" not in response.text
    assert set(answers) == {401}, sorted(set(answers))
    assert _chain_length(db) == before


def test_signed_requests_with_odd_bodies_are_refused_without_a_500(client: TestClient, db: Database) -> None:
    for body in ODD_BODIES:
        response = client.post(URL, content=body, headers=_signed(body))
        assert response.status_code == 401, (body, response.text)


class TestUnsignedRequestsAreRateLimited:
    @pytest.fixture
    def api_settings(self) -> ApiSettings:
        return ApiSettings(token_pepper=TEST_PEPPER, rate_limit_per_second=0, auth_failures_per_minute=5)

    def test_an_address_sending_unsigned_requests_is_slowed_down(
        self, client: TestClient, db: Database
    ) -> None:
        body = b"payload=%7B%7D"
        statuses = [
            client.post(
                URL, content=body, headers={**_signed(body), "X-Slack-Signature": "v0=" + "1" * 64}
            ).status_code
            for _ in range(8)
        ]
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3, statuses
        metrics = client.get("/metrics").text
        assert 'tenantguard_auth_failures_total{reason="slack_unsigned"} 8.0' in metrics


def _click(action_id: int, value: str, team: str = "T0NORTH", user: str = "U0BOB") -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": user},
        "actions": [{"action_id": "tenantguard_approve", "value": value, "action_ts": "1710000000.000100"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_button_values_are_parsed_strictly_and_other_teams_are_refused(
    client: TestClient,
    db: Database,
    ato_incident: int,  # noqa: F811
    analyst,  # noqa: ANN001, F811
    approver,  # noqa: ANN001, F811
    make_connection: Callable[..., object],
) -> None:
    make_connection("north-slack", "slack", config={"team_id": "T0NORTH"})
    step = plan_for_incident(db, ato_incident, analyst).step("m365.disable_account", VICTIM)
    from core.models import RemediationAction

    with db.session(readonly=True) as session:
        fingerprint = session.get(RemediationAction, step.id).fingerprint  # type: ignore[union-attr]
    for value, team in (
        (f"{step.id}:", "T0NORTH"),  # an empty fingerprint prefix matched every version
        (f"{step.id}:{fingerprint[:4]}", "T0NORTH"),
        (f"{step.id}:{fingerprint[:16]}:x", "T0NORTH"),
        (f" {step.id}:{fingerprint[:16]}", "T0NORTH"),
        (f"{step.id}:{fingerprint[:16]}", "T0OTHER"),  # another workspace
        (f"{step.id}:{fingerprint[:16]}", ""),
    ):
        body = _click(step.id, value, team=team)
        response = client.post(URL, content=body, headers=_signed(body))
        assert response.status_code in (401, 409), (value, team, response.text)
    assert get_plan(db, ato_incident).step("m365.disable_account", VICTIM).status == ActionStatus.PROPOSED
    # and the exact button of the connected team still works
    body = _click(step.id, f"{step.id}:{fingerprint[:16]}")
    assert client.post(URL, content=body, headers=_signed(body)).status_code == 200
