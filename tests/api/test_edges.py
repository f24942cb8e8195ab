"""The HTTP edge: problem+json errors, request ids, body and page limits, per-caller rate limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi.testclient import TestClient

from api.app import create_app
from api.config import ApiSettings
from api.principals.service import create_principal
from core.audit import Actor, Channel


def test_unknown_routes_and_bad_input_are_problem_details(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    missing = client.get("/no/such/thing", headers=as_role("viewer"))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    body = missing.json()
    assert body["type"].startswith("urn:tenantguard:problem:") and body["status"] == 404
    assert body["request_id"] == missing.headers["x-request-id"]

    invalid = client.get("/findings?severity=apocalyptic&limit=0", headers=as_role("viewer"))
    assert invalid.status_code == 422
    problem = invalid.json()
    assert {tuple(e["loc"]) for e in problem["errors"]} >= {("query", "severity", 0), ("query", "limit")}
    assert "apocalyptic" not in invalid.text  # the offending input is not echoed back


def test_page_size_and_string_lengths_are_bounded(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    assert client.get("/findings?limit=501", headers=as_role("viewer")).status_code == 422
    assert client.get("/findings?limit=500", headers=as_role("viewer")).status_code == 200
    assert client.get("/findings?rule_id=" + "r" * 201, headers=as_role("viewer")).status_code == 422
    assert client.get("/findings?cursor=" + "c" * 513, headers=as_role("viewer")).status_code == 422


def test_a_callers_request_id_is_kept_and_a_bad_one_replaced(
    client: TestClient, as_role: Callable[[str], dict[str, str]]
) -> None:
    kept = client.get("/findings", headers={**as_role("viewer"), "X-Request-ID": "trace-42.a"})
    assert kept.headers["x-request-id"] == "trace-42.a"
    replaced = client.get("/findings", headers={**as_role("viewer"), "X-Request-ID": "bad id\twith tab"})
    assert (
        replaced.headers["x-request-id"] != "bad id\twith tab" and len(replaced.headers["x-request-id"]) == 32
    )


def test_oversized_bodies_are_refused_before_reaching_a_handler(settings, db) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings, db, api_settings=ApiSettings(token_pepper="p" * 40, max_body_bytes=2048))
    _, token = create_principal(
        db, b"p" * 40, name="root", role="admin", actor=Actor("system:test", Channel.CLI)
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    big = b'{"name": "x", "provider": "m365", "tenant": "' + b"t" * 4096 + b'"}'
    with TestClient(app) as client:
        declared = client.post("/connections", headers=headers, content=big)

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            for i in range(0, len(big), 512):
                yield big[i : i + 512]

        streamed = client.post("/connections", headers=headers, content=chunks())
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert "2048 bytes" in response.json()["detail"]


def test_each_caller_has_its_own_rate_limit(settings, db) -> None:  # type: ignore[no-untyped-def]
    # Given a limit of 3 requests in a burst, refilling slowly
    limits = ApiSettings(token_pepper="p" * 40, rate_limit_per_second=0.01, rate_limit_burst=3)
    app = create_app(settings, db, api_settings=limits)
    _, noisy = create_principal(
        db, b"p" * 40, name="noisy", role="viewer", actor=Actor("system:test", Channel.CLI)
    )
    _, quiet = create_principal(
        db, b"p" * 40, name="quiet", role="viewer", actor=Actor("system:test", Channel.CLI)
    )
    with TestClient(app) as client:
        # When one caller sends 4 requests
        statuses = [client.get("/findings", headers={"Authorization": f"Bearer {noisy}"}) for _ in range(4)]
        other = client.get("/findings", headers={"Authorization": f"Bearer {quiet}"})
    # Then the 4th is refused with Retry-After, and another caller is unaffected
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1].headers["retry-after"]) >= 1
    assert statuses[-1].json()["retry_after"] >= 1
    assert other.status_code == 200


def test_the_openapi_document_describes_auth_permissions_and_problems(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/findings"]["get"]
    assert operation["x-required-permission"] == "findings:read"
    assert operation["security"] == [{"bearer": []}]
    assert "application/problem+json" in operation["responses"]["403"]["content"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["paths"]["/health"]["get"]["security"] == []
