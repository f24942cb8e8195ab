"""Response fixtures: a simulator (Slack + Jira) whose Slack connection is stored, and a config file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from api.config import ApiSettings
from collectors import connections_from_simulator
from collectors.connections import sync_connections
from core.audit import Actor
from core.db import Database
from core.settings import Settings
from response.config import ResponseConfig, load_config
from tests.factories import TEST_PEPPER

INTAKE_SECRET = "whsec_" + "dGVuYW50Z3VhcmQtcmVzcG9uc2UtaW50YWtlLXNlY3JldA=="


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(token_pepper=TEST_PEPPER, rate_limit_per_second=0, auth_failures_per_minute=100_000)


@pytest.fixture
def api(
    settings: Settings, db: Database, api_settings: ApiSettings, configure_response
) -> Iterator[TestClient]:
    """The app on the test database, with the response configuration of `response_document`."""
    configure_response(response_document(None, jira=False))
    with TestClient(
        create_app(settings, db, api_settings=api_settings), raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture
def response_sim(make_simulator, db: Database):
    handle = make_simulator("quiet_week", users=12, days=1, seed=3)
    sync_connections(
        db,
        connections_from_simulator(handle.info, providers=["slack"], backfill=False),
        actor=Actor.cli("principal:test"),
    )
    return handle


def response_document(
    handle: Any, *, jira: bool = True, public_url: str = "http://127.0.0.1:8000"
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "public_url": public_url,
        "channels": {"priorities": ["P1", "P2"], "prefix": "inc"},
        "updates": {"cadence_minutes": {"P1": 30, "P2": 60}},
        "status_page": {
            "title": "Northwind status",
            "components": [{"name": "Sign-in"}, {"name": "Mail"}, {"name": "File sharing"}],
        },
        "intake": {"secret_ref": "env:TG_TEST_INTAKE_SECRET"},
    }
    if jira:
        document["jira"] = {
            "url": handle.info["jira.base_url"],
            "project": "SEC",
            "user": handle.info["jira.user"],
            "token_ref": "env:TG_TEST_JIRA_TOKEN",
        }
    return document


@pytest.fixture
def configure_response(settings: Settings) -> Callable[[dict[str, Any]], ResponseConfig]:
    def write(document: dict[str, Any]) -> ResponseConfig:
        path: Path = settings.data_dir / "response.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return load_config(settings)

    return write


@pytest.fixture
def secrets_env(response_sim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TEST_INTAKE_SECRET", INTAKE_SECRET)
    monkeypatch.setenv("TG_TEST_JIRA_TOKEN", response_sim.info["jira.token"])


def person_posts(handle: Any, channel: str, user: str, text: str) -> str:
    answer = requests.post(
        handle.info["admin_url"] + "/slack/messages",
        json={"channel": channel, "user": user, "text": text},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["ts"])


def slack_user_ids(handle: Any, count: int) -> list[str]:
    token = handle.info["slack.bot_token"]
    members = requests.get(
        handle.info["slack.base_url"] + "users.list", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()["members"]
    return [m["id"] for m in members[:count]]


ROUTING_KEY = "R0ut1ngKeyForTheTestDeployment00"


@pytest.fixture
def live_api(
    settings: Settings, db: Database, api_settings: ApiSettings, configure_response, monkeypatch
) -> Iterator[str]:
    """The app served by uvicorn on a loopback port (real HTTP), configured as `response_document`
    with a routing key, so clients talk to it as monitoring tools would."""
    import threading
    import time

    import uvicorn

    from simulator.http import free_port

    monkeypatch.setenv("TG_TEST_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("TG_TEST_INTAKE_SECRET", INTAKE_SECRET)
    document = response_document(None, jira=False)
    document["intake"]["routing_key_ref"] = "env:TG_TEST_ROUTING_KEY"
    configure_response(document)
    port = free_port()
    app = create_app(settings, db, api_settings=api_settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)
