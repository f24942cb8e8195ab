"""Findings over HTTP: filters, sorting, cursor pages that cover everything exactly once, detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import T0


def all_pages(client: TestClient, headers: dict[str, str], query: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        url = f"/findings?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


@pytest.fixture
def mixed_findings(make_finding: Callable[..., Any]) -> list[Any]:
    """Twelve findings over three providers and all severities; some share a first_seen time."""
    severities = ["informational", "low", "medium", "high", "critical"]
    findings = []
    for i in range(12):
        findings.append(
            make_finding(
                provider=["m365", "google", "slack"][i % 3],
                severity=severities[i % 5],
                rule_id=f"rule-{i % 4}",
                kind="anomaly" if i % 2 else "detection",
                status="resolved" if i == 11 else "open",
                people=["bob@example.com" if i % 4 == 0 else "alice@example.com"],
                first_seen=T0 + timedelta(minutes=i // 2),  # pairs with equal times: the id breaks ties
            )
        )
    return findings


@pytest.mark.parametrize(
    "sort", ["-first_seen", "first_seen", "-last_seen", "last_seen", "-severity", "severity", "-id", "id"]
)
def test_pages_in_every_sort_return_each_finding_once_in_order(
    sort: str, client: TestClient, as_role: Callable[[str], dict[str, str]], mixed_findings: list[Any]
) -> None:
    # When an analyst walks all pages, three at a time
    items = all_pages(client, as_role("viewer"), f"sort={sort}", limit=3)
    # Then every finding appears exactly once
    assert sorted(i["id"] for i in items) == sorted(f.id for f in mixed_findings)
    # And in the order the sort promises
    rank = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
    field = sort.lstrip("-")

    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        if field == "severity":
            return (rank[item["severity"]], item["first_seen"], item["id"])
        return (item[field], item["id"]) if field != "id" else (item["id"],)

    assert [key(i) for i in items] == sorted((key(i) for i in items), reverse=sort.startswith("-"))


def test_filters_combine(
    client: TestClient, as_role: Callable[[str], dict[str, str]], mixed_findings: list[Any]
) -> None:
    headers = as_role("viewer")

    def ids(query: str) -> set[int]:
        return {i["id"] for i in all_pages(client, headers, query, limit=50)}

    def expected(predicate: Callable[[Any], bool]) -> set[int]:
        return {f.id for f in mixed_findings if predicate(f)}

    assert ids("provider=google") == expected(lambda f: f.provider == "google")
    assert ids("severity=high&severity=critical") == expected(lambda f: f.severity in ("high", "critical"))
    assert ids("rule_id=rule-1&kind=anomaly") == expected(
        lambda f: f.rule_id == "rule-1" and f.kind == "anomaly"
    )
    assert ids("status=resolved") == expected(lambda f: f.status == "resolved")
    assert ids("person=BOB@example.com") == expected(lambda f: "bob@example.com" in f.entities["people"])
    since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)
    in_window = ids(f"since={since.isoformat()}&until={until.isoformat()}".replace("+", "%2B"))
    assert in_window == expected(lambda f: f.last_seen >= since and f.first_seen < until)
    assert ids("provider=slack&person=nobody@example.com") == set()


def test_a_cursor_is_bound_to_its_sort_and_cannot_be_forged(
    client: TestClient, as_role: Callable[[str], dict[str, str]], mixed_findings: list[Any]
) -> None:
    headers = as_role("viewer")
    cursor = client.get("/findings?limit=2&sort=-first_seen", headers=headers).json()["next_cursor"]
    other_sort = client.get(f"/findings?limit=2&sort=id&cursor={cursor}", headers=headers)
    assert other_sort.status_code == 400 and "sort" in other_sort.json()["detail"]
    garbage = client.get("/findings?cursor=not-base64-%21%21", headers=headers)
    assert garbage.status_code == 400


def test_detail_has_the_evidence(
    client: TestClient, as_role: Callable[[str], dict[str, str]], make_finding: Callable[..., Any]
) -> None:
    finding = make_finding(evidence=[3, 5], context={"why": "new country"}, mitre=["T1078"])
    response = client.get(f"/findings/{finding.id}", headers=as_role("viewer"))
    assert response.status_code == 200
    body = response.json()
    assert body["evidence_event_ids"] == [3, 5] and body["context"] == {"why": "new country"}
    assert client.get("/findings/999999", headers=as_role("viewer")).status_code == 404
