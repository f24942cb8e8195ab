"""Issue 21: an API admin could read any server file or environment variable and send it to a host
of their choice (`secret_refs` took any `file:`/`env:`, base URLs were free, and the check sent the
value as a credential). References from the API come from the operator's allow-list; provider
URLs are the provider's own unless the operator allows overrides; moving a connection's URL needs
its secrets again."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.config import ApiSettings
from core.settings import Settings
from tests.factories import TEST_PEPPER

Headers = Callable[[str], dict[str, str]]


def _slack(name: str, secret_refs: dict[str, str], config: dict[str, str] | None = None) -> dict:
    return {
        "name": name,
        "provider": "slack",
        "tenant": "T0001",
        "config": config or {},
        "secret_refs": secret_refs,
    }


def test_secret_references_outside_the_operators_allow_list_are_refused(
    client: TestClient, as_role: Headers, settings: Settings
) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pepper_file = settings.data_dir / "api-token-pepper"
    pepper_file.write_text("the pepper")
    secrets_dir = settings.data_dir / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for ref in (
        f"file:{pepper_file}",  # the token pepper
        "file:/etc/passwd",
        f"file:{secrets_dir}/../api-token-pepper",  # out of the secrets directory by '..'
        "env:TENANTGUARD_API_TOKEN_PEPPER",
        "env:HOME",
    ):
        # when an admin names it as a connection's secret
        response = client.post(
            "/connections", headers=as_role("admin"), json=_slack("grab", {"bot_token": ref})
        )
        # then it is refused, saying what the operator allows
        assert response.status_code == 422, (ref, response.text)
        assert "allow" in response.json()["detail"]
    (secrets_dir / "link").symlink_to(pepper_file)
    linked = client.post(
        "/connections",
        headers=as_role("admin"),
        json=_slack("grab", {"bot_token": f"file:{secrets_dir}/link"}),
    )
    assert linked.status_code == 422, linked.text
    # and references inside the allow-list are taken
    for name, ref in (
        ("in-dir", f"file:{secrets_dir}/slack-bot"),
        ("in-env", "env:TENANTGUARD_SECRET_SLACK"),
    ):
        made = client.post("/connections", headers=as_role("admin"), json=_slack(name, {"bot_token": ref}))
        assert made.status_code == 201, made.text


def test_provider_urls_are_the_providers_own_unless_the_operator_allows_overrides(
    client: TestClient, as_role: Headers
) -> None:
    for key in ("base_url", "audit_base_url", "proxy", "ca_bundle"):
        body = _slack(
            "redirected", {"bot_token": "env:TENANTGUARD_SECRET_SLACK"}, {key: "http://attacker.example/"}
        )
        response = client.post("/connections", headers=as_role("admin"), json=body)
        assert response.status_code == 422, (key, response.text)
        assert "TENANTGUARD_API_ALLOW_ENDPOINT_OVERRIDES" in response.json()["detail"]
    made = client.post(
        "/connections",
        headers=as_role("admin"),
        json=_slack("plain", {"bot_token": "env:TENANTGUARD_SECRET_SLACK"}),
    )
    assert made.status_code == 201, made.text
    moved = client.patch(
        f"/connections/{made.json()['id']}",
        headers=as_role("admin"),
        json={"config": {"base_url": "http://attacker.example/api/"}},
    )
    assert moved.status_code == 422, moved.text


class TestWhereTheOperatorAllowsOverrides:
    @pytest.fixture
    def api_settings(self) -> ApiSettings:
        return ApiSettings(
            token_pepper=TEST_PEPPER,
            rate_limit_per_second=0,
            auth_failures_per_minute=100_000,
            allow_endpoint_overrides=True,
        )

    def test_moving_a_connections_url_needs_its_secrets_again(
        self, client: TestClient, as_role: Headers
    ) -> None:
        refs = {"bot_token": "env:TENANTGUARD_SECRET_SLACK"}
        made = client.post(
            "/connections",
            headers=as_role("admin"),
            json=_slack("sim", refs, {"base_url": "http://127.0.0.1:1/api/"}),
        )
        assert made.status_code == 201, made.text
        url = f"/connections/{made.json()['id']}"
        # when the URL moves without the secrets, it is refused
        moved = client.patch(
            url, headers=as_role("admin"), json={"config": {"base_url": "http://attacker.example/"}}
        )
        assert moved.status_code == 422 and "secret_refs again" in moved.json()["detail"], moved.text
        # and unchanged URLs do not ask for them
        same = client.patch(
            url, headers=as_role("admin"), json={"config": {"base_url": "http://127.0.0.1:1/api/"}}
        )
        assert same.status_code == 200, same.text
        # with the secrets given again it is taken
        again = client.patch(
            url,
            headers=as_role("admin"),
            json={"config": {"base_url": "http://127.0.0.1:2/api/"}, "secret_refs": refs},
        )
        assert again.status_code == 200, again.text
        assert again.json()["config"]["base_url"] == "http://127.0.0.1:2/api/"


class TestInlineSecretsAreFoundByValue:
    @pytest.fixture
    def api_settings(self) -> ApiSettings:
        return ApiSettings(
            token_pepper=TEST_PEPPER,
            rate_limit_per_second=0,
            auth_failures_per_minute=100_000,
            allow_endpoint_overrides=True,
        )

    @pytest.mark.parametrize(
        "config, value",
        [
            ({"proxy": "http://ops:Sup3rS3cret@proxy.acme.example:8080"}, "Sup3rS3cret"),
            ({"headers": {"Authorization": "Bearer 0123456789abcdefABCDEF"}}, "0123456789abcdefABCDEF"),
            ({"extra": {"hint": "xoxb-123456789012-1234567890123-AbCdEfGhIjKl"}}, "xoxb-123456789012"),
            ({"notes": ["fine", "AKIAIOSFODNN7EXAMPLE"]}, "AKIAIOSFODNN7EXAMPLE"),
        ],
    )
    def test_a_secret_anywhere_in_config_is_refused_and_never_echoed(
        self, client: TestClient, as_role: Headers, config: dict, value: str
    ) -> None:
        body = _slack("inline", {"bot_token": "env:TENANTGUARD_SECRET_SLACK"}, config)
        response = client.post("/connections", headers=as_role("admin"), json=body)
        assert response.status_code == 422, response.text
        assert value not in response.text
        assert client.get("/connections", headers=as_role("viewer")).json() == []
