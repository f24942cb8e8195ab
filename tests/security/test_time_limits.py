"""Issue 21, denial of service: a request that never ends must not hold the caller, the other
requests or the server's shutdown. The provider here accepts the probe's connection and never
answers (the review's `/connections/{id}/check` ran 108 s; its alias bomb ran 21 minutes and the
server ignored SIGTERM)."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable

import httpx
import pytest

from core.models import Connection, Role
from tests.factories import MadePrincipal
from tests.security.conftest import BlackHole, Served

pytestmark = pytest.mark.slow


def _connect_to(client: httpx.Client, hole: BlackHole) -> int:
    response = client.post(
        "/connections",
        json={
            "name": "unanswering-slack",
            "provider": "slack",
            "tenant": "T0001",
            "config": {"base_url": f"{hole.url}/api/", "audit_base_url": f"{hole.url}/audit/v1/"},
            "secret_refs": {"bot_token": "env:TG_TEST_SLACK_BOT", "audit_token": "env:TG_TEST_SLACK_AUDIT"},
            "streams": ["users"],
        },
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


# the operator lets API connections point at this test's provider and name its secrets
_SECRETS = {
    "TG_TEST_SLACK_BOT": "xoxb-test-1",
    "TG_TEST_SLACK_AUDIT": "xoxp-test-1",
    "TENANTGUARD_API_ALLOW_ENDPOINT_OVERRIDES": "true",
    "TENANTGUARD_API_SECRET_ENV_PREFIXES": '["TG_TEST_"]',
}


def test_a_connection_check_against_a_provider_that_never_answers_ends_with_a_504(
    serve: Callable[..., Served], make_principal: Callable[..., MadePrincipal], black_hole: BlackHole
) -> None:
    # given serve with a 2 s probe limit, and a connection to a provider that never answers
    admin = make_principal(Role.ADMIN, name="the-admin").token
    served = serve(TENANTGUARD_API_CONNECTION_CHECK_SECONDS="2", **_SECRETS)
    with served.client(admin) as client:
        connection = _connect_to(client, black_hole)
        # when the admin checks it (the client would wait two minutes)
        answer = client.post(f"/connections/{connection}/check")
        # then the probe reached the provider, and the answer is a 504 naming the limit
        assert black_hole.accepted >= 1
        assert answer.status_code == 504, answer.text
        assert "within 2 s" in answer.json()["detail"]
        # and the server still answers everything else
        assert client.get("/health").status_code == 200


def test_a_request_not_answered_within_the_request_time_limit_gets_a_503(
    serve: Callable[..., Served],
    make_principal: Callable[..., MadePrincipal],
    make_connection: Callable[..., Connection],
    black_hole: BlackHole,
) -> None:
    # given serve with a 1 s request limit and a probe limit of ten minutes, and a connection to a
    # provider that never answers (stored through the audited path beforehand: creating it through
    # this serve would itself race the 1 s limit on a loaded machine)
    admin = make_principal(Role.ADMIN, name="the-admin").token
    connection = make_connection(
        "unanswering-slack",
        "slack",
        config={"base_url": f"{black_hole.url}/api/", "audit_base_url": f"{black_hole.url}/audit/v1/"},
        secrets={"bot_token": "env:TG_TEST_SLACK_BOT", "audit_token": "env:TG_TEST_SLACK_AUDIT"},
        streams=("users",),
    ).id
    served = serve(
        TENANTGUARD_API_CONNECTION_CHECK_SECONDS="600",
        TENANTGUARD_API_REQUEST_TIME_LIMIT_SECONDS="1",
        **_SECRETS,
    )
    with served.client(admin) as client:
        # when a probe hangs on the provider
        answer = client.post(f"/connections/{connection}/check")
        # then the caller is answered by the request limit, as problem+json with its request id
        assert answer.status_code == 503, answer.text
        problem = answer.json()
        assert problem["type"].endswith(":time-limit") and "within 1 s" in problem["detail"]
        assert problem["request_id"] == answer.headers["x-request-id"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert client.get("/health").status_code == 200


def test_serve_stops_on_sigterm_within_its_grace_period_with_requests_in_flight(
    serve: Callable[..., Served], make_principal: Callable[..., MadePrincipal], black_hole: BlackHole
) -> None:
    # given serve whose limits would let a probe run for ten minutes, and four probes hanging on a
    # provider that never answers
    admin = make_principal(Role.ADMIN, name="the-admin").token
    served = serve(
        TENANTGUARD_API_CONNECTION_CHECK_SECONDS="600",
        TENANTGUARD_API_REQUEST_TIME_LIMIT_SECONDS="600",
        TENANTGUARD_API_SHUTDOWN_GRACE_SECONDS="1",
        **_SECRETS,
    )
    with served.client(admin) as client:
        connection = _connect_to(client, black_hole)
    outcomes: list[object] = []

    def probe() -> None:
        with served.client(admin, timeout=600) as client:
            try:
                outcomes.append(client.post(f"/connections/{connection}/check").status_code)
            except httpx.TransportError as exc:
                outcomes.append(type(exc).__name__)

    probes = [threading.Thread(target=probe) for _ in range(4)]
    for thread in probes:
        thread.start()
    black_hole.wait_for(4)
    # when the operator stops it
    served.process.send_signal(signal.SIGTERM)
    # then it exits within seconds (1 s grace + 5 s to close), not when the probes end
    try:
        served.process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve still running 30 s after SIGTERM:\n{served.tail()}")
    for thread in probes:
        thread.join(30)
    # and each probe was told the server is stopping
    assert outcomes == [503] * 4, outcomes
