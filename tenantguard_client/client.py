"""`Client`: one httpx client with the bearer token; list methods iterate over every page."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from tenantguard_client.models import Finding, Incident, IncidentDetail, Page, TimelineItem

M = TypeVar("M", bound=BaseModel)
Params = Mapping[str, str | int | Sequence[str] | None]


class ApiError(Exception):
    """An answer that is not a success: the HTTP status and the problem document's title/detail."""

    def __init__(self, status: int, title: str, detail: str, body: Any = None) -> None:
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body


def paginate(fetch: Callable[[str | None], Page[M]]) -> Iterator[M]:
    """Every item of every page, fetching the next page only when the previous one is used up."""
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


class Client:
    """``Client("https://tenantguard.example.com", token="tg_...")``; use as a context manager or
    call `close()`. `transport` lets tests or proxies supply their own httpx transport."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        page_size: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.page_size = page_size
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ---- plumbing ----
    def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        """The decoded JSON answer of one request; ApiError for any non-2xx answer."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._http.request(method, path, params=clean, json=json)
        if response.is_success:
            return response.json() if response.content else None
        try:
            body = response.json()
        except ValueError:
            body = {"title": response.reason_phrase, "detail": response.text[:500]}
        raise ApiError(response.status_code, str(body.get("title", "")), str(body.get("detail", "")), body)

    def _pages(self, path: str, model: type[M], params: Params) -> Iterator[M]:
        def fetch(cursor: str | None) -> Page[M]:
            answer = self.request("GET", path, params={**params, "limit": self.page_size, "cursor": cursor})
            return Page[model].model_validate(answer)  # type: ignore[valid-type]

        return paginate(fetch)

    # ---- endpoints ----
    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.request("GET", "/health")
        return answer

    def incidents(
        self,
        *,
        status: Sequence[str] | None = None,
        priority: Sequence[str] | None = None,
        person: str | None = None,
    ) -> Iterator[Incident]:
        """Every incident matching the filters, newest first, across all pages."""
        return self._pages("/incidents", Incident, {"status": status, "priority": priority, "person": person})

    def incident(self, incident_id: int) -> IncidentDetail:
        return IncidentDetail.model_validate(self.request("GET", f"/incidents/{incident_id}"))

    def timeline(self, incident_id: int) -> Iterator[TimelineItem]:
        """The incident's timeline, oldest first, across all pages."""
        return self._pages(f"/incidents/{incident_id}/timeline", TimelineItem, {})

    def findings(
        self, *, severity: Sequence[str] | None = None, status: Sequence[str] | None = None
    ) -> Iterator[Finding]:
        return self._pages("/findings", Finding, {"severity": severity, "status": status})
