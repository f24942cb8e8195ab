"""Jira's REST API (v2), enough for an issue per incident: create, read, comment, transition.

Issues live in memory under one project per key (created on first use). Basic auth with the
simulator's Jira user and API token, as Jira Cloud takes them. The workflow is Jira's simple one:
To Do -> In Progress -> Done, any status to any other.

``POST /_sim/jira/issues/{key}/status {"status": "Done"}`` is a person moving the issue in Jira;
``POST /_sim/jira/issues/{key}/comments {"body": "...", "author": "Ana"}`` a person commenting.
``GET /_sim/jira/issues`` lists every issue (for tests and the demo).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response

if TYPE_CHECKING:
    from simulator.server import Simulator

STATUSES = {"1": "To Do", "2": "In Progress", "3": "Done"}
CATEGORY = {"To Do": "new", "In Progress": "indeterminate", "Done": "done"}


def credentials(sim: Simulator) -> tuple[str, str]:
    tenant = sim.tenant
    return f"tenantguard@{tenant.domain}", tenant.ids.hex("jira-api-token", length=24)


def _error(status: int, *messages: str, **fields: str) -> Response:
    return Response.json({"errorMessages": list(messages), "errors": fields}, status)


class JiraApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.lock = threading.Lock()
        self.issues: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, int] = {}

    def _refused(self, request: Request) -> Response | None:
        user, token = credentials(self.sim)
        header = request.headers.get("authorization", "")
        try:
            given_user, _, given = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            given_user, given = "", ""
        if (
            header.startswith("Basic ")
            and hmac.compare_digest(given_user, user)
            and hmac.compare_digest(given, token)
        ):
            return None
        return _error(401, "You are not authenticated. Authentication required to perform this operation.")

    def _now(self) -> str:
        return formatdate(self.sim.now() / 1_000_000, usegmt=True)

    def _status(self, name: str) -> dict[str, Any]:
        number = next(k for k, v in STATUSES.items() if v == name)
        return {
            "id": number,
            "name": name,
            "statusCategory": {"key": CATEGORY[name], "name": name},
        }

    def _view(self, request: Request, issue: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.sim.base_url}/jira/rest/api/2/issue/{issue['id']}"
        return {
            "id": issue["id"],
            "key": issue["key"],
            "self": base,
            "fields": {
                "summary": issue["summary"],
                "description": issue["description"],
                "labels": issue["labels"],
                "project": {"key": issue["project"], "id": issue["project"]},
                "issuetype": {"name": issue["issuetype"]},
                **({"parent": {"key": issue["parent"]}} if issue.get("parent") else {}),
                "status": self._status(issue["status"]),
                "created": issue["created"],
                "updated": issue["updated"],
                "comment": {"comments": issue["comments"], "total": len(issue["comments"])},
            },
        }

    def _issue(self, request: Request) -> dict[str, Any] | None:
        key = request.params["key"]
        return self.issues.get(key) or next((i for i in self.issues.values() if i["id"] == key), None)

    def server_info(self, request: Request) -> Response:
        return Response.json(
            {
                "baseUrl": f"{self.sim.base_url}/jira",
                "version": "9.12.0",
                "versionNumbers": [9, 12, 0],
                "deploymentType": "Server",
                "serverTitle": "tenantguard simulator",
            }
        )

    def create(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        fields = (request.json() or {}).get("fields") or {}
        project = str(
            (fields.get("project") or {}).get("key") or (fields.get("project") or {}).get("id") or ""
        )
        summary = str(fields.get("summary") or "")
        if not project:
            return _error(400, project="project is required")
        if not summary:
            return _error(400, summary="You must specify a summary of the issue.")
        with self.lock:
            number = self.counters[project] = self.counters.get(project, 0) + 1
            key = f"{project}-{number}"
            issue = {
                "id": str(10000 + len(self.issues) + 1),
                "key": key,
                "project": project,
                "summary": summary[:255],
                "description": str(fields.get("description") or ""),
                "labels": [str(label) for label in fields.get("labels") or []],
                "issuetype": str((fields.get("issuetype") or {}).get("name") or "Task"),
                "parent": str((fields.get("parent") or {}).get("key") or ""),
                "status": "To Do",
                "created": self._now(),
                "updated": self._now(),
                "comments": [],
            }
            self.issues[key] = issue
        return Response.json(
            {
                "id": issue["id"],
                "key": key,
                "self": f"{self.sim.base_url}/jira/rest/api/2/issue/{issue['id']}",
            },
            201,
        )

    def get(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        with self.lock:
            issue = self._issue(request)
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            return Response.json(self._view(request, issue))

    def transitions(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        with self.lock:
            issue = self._issue(request)
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            if request.method == "GET":
                return Response.json(
                    {
                        "transitions": [
                            {"id": number, "name": name, "to": self._status(name)}
                            for number, name in STATUSES.items()
                            if name != issue["status"]
                        ]
                    }
                )
            wanted = str(((request.json() or {}).get("transition") or {}).get("id") or "")
            if wanted not in STATUSES or STATUSES[wanted] == issue["status"]:
                return _error(400, f"Transition id '{wanted}' is not valid for this issue.")
            issue["status"], issue["updated"] = STATUSES[wanted], self._now()
        return Response(204)

    def _add_comment(self, issue: dict[str, Any], body: str, author: str) -> dict[str, Any]:
        comment = {
            "id": str(10000 + sum(len(i["comments"]) for i in self.issues.values()) + 1),
            "body": body,
            "author": {"displayName": author, "accountId": f"sim-{author.lower().replace(' ', '-')}"},
            "created": self._now(),
        }
        issue["comments"].append(comment)
        issue["updated"] = self._now()
        return comment

    def comment(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        with self.lock:
            issue = self._issue(request)
            if issue is None:
                return _error(404, "Issue does not exist or you do not have permission to see it.")
            if request.method == "GET":
                listed = issue["comments"]
                return Response.json(
                    {"comments": listed, "startAt": 0, "maxResults": len(listed), "total": len(listed)}
                )
            body = str((request.json() or {}).get("body") or "")
            comment = self._add_comment(issue, body, credentials(self.sim)[0])
        return Response.json(comment, 201)

    def person_comments(self, request: Request) -> Response:
        given = request.json() or {}
        with self.lock:
            issue = self._issue(request)
            if issue is None:
                return Response.json({"error": f"no issue {request.params['key']}"}, 404)
            comment = self._add_comment(
                issue, str(given.get("body") or ""), str(given.get("author") or "Jira user")
            )
        return Response.json(comment, 201)

    def person_moves(self, request: Request) -> Response:
        status = str((request.json() or {}).get("status") or "")
        with self.lock:
            issue = self._issue(request)
            if issue is None or status not in STATUSES.values():
                return Response.json(
                    {"error": f"no issue {request.params['key']} or no status {status!r}"}, 404
                )
            issue["status"], issue["updated"] = status, self._now()
            return Response.json(self._view(request, issue))

    def listing(self, request: Request) -> Response:
        with self.lock:
            return Response.json({"issues": [self._view(request, i) for i in self.issues.values()]})


def register(sim: Simulator) -> None:
    api = JiraApi(sim)
    rest = r"/jira/rest/api/(?:2|latest)"
    key = r"(?P<key>[A-Z][A-Z0-9]*-\d+|\d+)"
    add = sim.router.add
    add("GET", rf"{rest}/serverInfo", api.server_info, "sim", "jira_server_info")
    add("POST", rf"{rest}/issue", api.create, "sim", "jira_issue_create")
    add("GET", rf"{rest}/issue/{key}", api.get, "sim", "jira_issue")
    add("GET POST", rf"{rest}/issue/{key}/transitions", api.transitions, "sim", "jira_transitions")
    add("GET POST", rf"{rest}/issue/{key}/comment", api.comment, "sim", "jira_comment")
    add("POST", rf"/_sim/jira/issues/{key}/status", api.person_moves, "sim", "jira_person_moves")
    add("POST", rf"/_sim/jira/issues/{key}/comments", api.person_comments, "sim", "jira_person_comments")
    add("GET", r"/_sim/jira/issues", api.listing, "sim", "jira_issues")
