"""msal against the simulator's Entra authority (https, generated CA): secrets, certificates, expiry."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.simulator.conftest import GRAPH_SCOPE, MANAGE_SCOPE, graph_session, msal_app


def test_msal_gets_a_graph_token_with_the_client_secret_over_tls(simulator):
    result = msal_app(simulator.info).acquire_token_for_client(GRAPH_SCOPE)

    assert result["token_type"] == "Bearer"
    assert result["expires_in"] >= 300  # msal never serves shorter-lived tokens from its cache
    assert result["token_source"] == "identity_provider"


def test_a_second_call_is_served_from_msal_cache(simulator):
    app = msal_app(simulator.info)
    app.acquire_token_for_client(GRAPH_SCOPE)

    again = app.acquire_token_for_client(GRAPH_SCOPE)

    assert again["token_source"] == "cache"
    assert sum(r["path"].endswith("/oauth2/v2.0/token") for r in simulator.requests) == 1


def test_a_wrong_secret_is_refused_like_entra_does(simulator):
    result = msal_app(simulator.info, credential="not-the-secret").acquire_token_for_client(GRAPH_SCOPE)

    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]


def test_certificate_credential_with_public_certificate_signs_ps256_and_is_verified(simulator):
    info = simulator.info
    credential = {
        "private_key": Path(info["m365.client_private_key"]).read_text(),
        "public_certificate": Path(info["m365.client_certificate"]).read_text(),
    }

    result = msal_app(info, credential).acquire_token_for_client(GRAPH_SCOPE)

    assert "access_token" in result, result


def test_certificate_credential_with_legacy_thumbprint_is_verified(simulator):
    info = simulator.info
    credential = {
        "private_key": Path(info["m365.client_private_key"]).read_text(),
        "thumbprint": info["m365.client_thumbprint"],
    }

    result = msal_app(info, credential).acquire_token_for_client(GRAPH_SCOPE)

    assert "access_token" in result, result


def test_an_assertion_signed_with_another_key_is_refused(simulator):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    credential = {"private_key": other, "thumbprint": simulator.info["m365.client_thumbprint"]}

    result = msal_app(simulator.info, credential).acquire_token_for_client(GRAPH_SCOPE)

    assert result["error"] == "invalid_client"


def test_graph_tokens_do_not_open_the_management_api(simulator):
    info = simulator.info
    graph_token = msal_app(info).acquire_token_for_client(GRAPH_SCOPE)["access_token"]
    manage_token = msal_app(info).acquire_token_for_client(MANAGE_SCOPE)["access_token"]
    url = f"{info['m365.management_feed_url']}/subscriptions/list"

    assert graph_session(graph_token).get(url).status_code == 401
    assert graph_session(manage_token).get(url).status_code == 200


def test_an_expired_token_gets_401_and_a_fresh_token_works(simulator):
    info = simulator.info
    session = graph_session(msal_app(info).acquire_token_for_client(GRAPH_SCOPE)["access_token"])
    url = f"{info['m365.graph_base_url']}/users"
    assert session.get(url).status_code == 200

    simulator.expire_tokens("m365")
    expired = session.get(url)

    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    fresh = graph_session(msal_app(info).acquire_token_for_client(GRAPH_SCOPE)["access_token"])
    assert fresh.get(url).status_code == 200


def test_tokens_expire_with_the_simulator_clock(simulator):
    info = simulator.info
    session = graph_session(msal_app(info).acquire_token_for_client(GRAPH_SCOPE)["access_token"])

    simulator.advance(3600)

    assert session.get(f"{info['m365.graph_base_url']}/users").status_code == 401


def test_openid_configuration_points_back_at_the_https_authority(simulator):
    info = simulator.info
    session = requests.Session()
    session.trust_env = False
    session.verify = info["m365.ca_bundle"]

    body = session.get(f"{info['m365.authority']}/v2.0/.well-known/openid-configuration").json()

    assert body["token_endpoint"] == f"{info['m365.authority']}/oauth2/v2.0/token"
    assert body["token_endpoint"].startswith("https://127.0.0.1:")


def test_no_test_can_reach_the_real_vendors():
    import socket

    import pytest

    for host in ("login.microsoftonline.com", "graph.microsoft.com", "oauth2.googleapis.com", "slack.com"):
        with pytest.raises(OSError):
            socket.getaddrinfo(host, 443)
