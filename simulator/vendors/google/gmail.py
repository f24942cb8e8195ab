"""Gmail: threads and messages of the impersonated mailbox (domain-wide delegation)."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response
from simulator.server import ApiError
from simulator.tenant import Person
from simulator.timestamps import DAY, HOUR, SECOND, google_time, parse_time
from simulator.vendors.paging import encode_cursor

if TYPE_CHECKING:
    pass
from simulator.vendors.google.base import GoogleBase


class Gmail(GoogleBase):
    def _mailbox_owner(self, request: Request) -> Person:
        subject = self.need(request, "gmail")
        key = request.params["user"]
        if key == "me":
            if subject is None:
                raise ApiError(400, "failedPrecondition", "Precondition check failed.")
            return subject
        person = self.person(key)
        if subject is None or subject.index != person.index:
            raise ApiError(
                403,
                "forbidden",
                f"Delegation denied for {subject.email if subject else self.sim.credentials.sa_email}",
            )
        return person

    def _mail_window(self, request: Request) -> tuple[int, int]:
        q = request.arg("q") or ""
        now = self.sim.now()
        start, end = 0, 1 << 62
        for kind, amount, unit in re.findall(r"(newer_than|older_than):(\d+)([dhmy])", q):
            span = int(amount) * {"d": DAY, "h": HOUR, "m": 30 * DAY, "y": 365 * DAY}[unit]
            if kind == "newer_than":
                start = max(start, now - span)
            else:
                end = min(end, now - span)
        for kind, value in re.findall(r"(after|before):(\S+)", q):
            us = (
                int(value) * SECOND if value.isdigit() else parse_time(value.replace("/", "-") + "T00:00:00Z")
            )
            if kind == "after":
                start = max(start, us)
            else:
                end = min(end, us)
        return start, end

    def threads(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        start, end = self._mail_window(request)
        messages = self.world.conversations.mailbox("google:gmail", owner, start, end)
        threads: dict[str, Any] = {}
        for message in reversed(messages):
            threads.setdefault(message.thread or message.id, message)
        items = [
            {"id": tid, "snippet": m.text[:120], "historyId": str(m.ts // 1000)} for tid, m in threads.items()
        ]
        size = self.size(request, "maxResults", 100, 500)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {"resultSizeEstimate": len(items)}
        if items[offset : offset + size]:
            body["threads"] = items[offset : offset + size]
        if offset + size < len(items):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def gmail_message_object(self, message: Any, fmt: str = "full") -> dict[str, Any]:
        headers = [
            {"name": "From", "value": message.sender_email},
            {
                "name": "To",
                "value": ", ".join(r.email if isinstance(r, Person) else r for r in message.recipients),
            },
            {"name": "Subject", "value": message.subject or ""},
            {"name": "Date", "value": google_time(message.ts)},
            {"name": "Message-ID", "value": f"<{message.id}@mail.gmail.com>"},
        ]
        body: dict[str, Any] = {
            "id": message.id,
            "threadId": message.thread,
            "labelIds": ["INBOX"],
            "snippet": message.text[:120],
            "historyId": str(message.ts // 1000),
            "internalDate": str(message.ts // 1000),
            "sizeEstimate": 1200 + len(message.text),
        }
        if fmt != "minimal":
            payload: dict[str, Any] = {
                "partId": "",
                "mimeType": "text/plain",
                "filename": "",
                "headers": headers,
            }
            if fmt != "metadata":
                payload["body"] = {
                    "size": len(message.text),
                    "data": base64.urlsafe_b64encode(message.text.encode()).decode(),
                }
            body["payload"] = payload
        return body

    def thread(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        messages = [
            m
            for m in self.world.conversations.mailbox("google:gmail", owner, 0, 1 << 62)
            if m.thread == request.params["thread"]
        ]
        if not messages:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        fmt = request.arg("format") or "full"
        return Response.json(
            {
                "id": request.params["thread"],
                "historyId": str(messages[-1].ts // 1000),
                "messages": [self.gmail_message_object(m, fmt) for m in messages],
            }
        )

    def gmail_messages(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        start, end = self._mail_window(request)
        messages = list(reversed(self.world.conversations.mailbox("google:gmail", owner, start, end)))
        size = self.size(request, "maxResults", 100, 500)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {"resultSizeEstimate": len(messages)}
        chunk = messages[offset : offset + size]
        if chunk:
            body["messages"] = [{"id": m.id, "threadId": m.thread} for m in chunk]
        if offset + size < len(messages):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def gmail_message(self, request: Request) -> Response:
        owner = self._mailbox_owner(request)
        message = next(
            (
                m
                for m in self.world.conversations.mailbox("google:gmail", owner, 0, 1 << 62)
                if m.id == request.params["message"]
            ),
            None,
        )
        if message is None:
            raise ApiError(404, "notFound", "Requested entity was not found.")
        return Response.json(self.gmail_message_object(message, request.arg("format") or "full"))
