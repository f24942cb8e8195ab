"""Property-based tests generated from the OpenAPI document (schemathesis, bounded examples).

For every operation, as an admin: no 5xx, every response matches its documented schema, status
code and content type. Bounded so that it runs in CI; raise TENANTGUARD_SCHEMATHESIS_EXAMPLES
locally for a deeper run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.config import ApiSettings
from core.db import Database
from core.settings import Settings

EXAMPLES = int(os.environ.get("TENANTGUARD_SCHEMATHESIS_EXAMPLES", "15"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def _document() -> dict[str, object]:
    """The OpenAPI document, read from an app that is never called (no database needed)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database("sqlite://")
        app = create_app(Settings(data_dir=Path(tmp)), db, api_settings=ApiSettings(token_pepper="d" * 40))
        document = app.openapi()
        db.dispose()
    return document


REQUEST_TIMEOUT = 300
SCHEMA = schemathesis.openapi.from_dict(_document())
OPERATIONS = {op.ok().label: op.ok() for op in SCHEMA.get_all_operations()}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_errors_and_responses_match_the_document(
    label: str,
    app: FastAPI,
    as_role: Callable[[str], dict[str, str]],
    make_finding: Callable[..., object],
    make_incident: Callable[..., object],
) -> None:
    # Given a little data, so that detail routes can find something (ids start at 1)
    make_finding()
    make_incident()
    headers = as_role("admin")

    @given(case=OPERATIONS[label].as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        # When an admin sends generated input, Then the answer is documented and never a 5xx
        # (schemathesis's default read timeout is 10 s; an in-process call on a loaded CI machine
        # can wait longer for a CPU, and a timeout is not an answer of the API's)
        response = case.call(app=app, headers=headers, timeout=REQUEST_TIMEOUT)
        case.validate_response(response, checks=CHECKS)

    check()
