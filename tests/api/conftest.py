"""API fixtures: an app on the test database, a client, and headers of a principal per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.config import ApiSettings
from core.db import Database
from core.models import Role
from core.settings import Settings
from tests.factories import TEST_PEPPER, MadePrincipal


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings(
        token_pepper=TEST_PEPPER,
        rate_limit_per_second=0,
        auth_failures_per_minute=100_000,
    )


@pytest.fixture
def app(settings: Settings, db: Database, api_settings: ApiSettings) -> FastAPI:
    return create_app(settings, db, api_settings=api_settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def as_role(make_principal: Callable[..., MadePrincipal]) -> Callable[[Role | str], dict[str, str]]:
    """as_role(role) -> Authorization headers of a principal holding that role (one per role)."""
    tokens: dict[Role, str] = {}

    def headers(role: Role | str) -> dict[str, str]:
        role = Role(role)
        if role not in tokens:
            tokens[role] = make_principal(role, name=f"the-{role.value}").token
        return {"Authorization": f"Bearer {tokens[role]}"}

    return headers
