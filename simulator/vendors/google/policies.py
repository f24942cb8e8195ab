"""Cloud Identity policies: the Workspace settings reads (and patches to restore them)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from simulator.http import Request, Response
from simulator.server import ApiError
from simulator.vendors.paging import encode_cursor

if TYPE_CHECKING:
    pass
from simulator.vendors.google.base import GoogleBase, copy_policy


class Policies(GoogleBase):
    def policies(self, request: Request) -> Response:
        self.need(request, "policies", admin=True)
        with self.state.lock:
            items = [copy_policy(p) for p in self.state.google_policies.values()]
        text = request.arg("filter") or ""
        match = re.search(r"setting\.type\.matches\('([^']+)'\)", text)
        if match:
            pattern = re.compile(match.group(1).replace("\\\\", "\\"))
            items = [p for p in items if pattern.search(p["setting"]["type"])]
        size = self.size(request, "pageSize", 50, 100)
        cursor = self.page_token(request)
        offset = int(cursor["o"]) if cursor else 0
        body: dict[str, Any] = {"policies": items[offset : offset + size]}
        if offset + size < len(items):
            body["nextPageToken"] = encode_cursor({"o": offset + size})
        return Response.json(body)

    def _policy_entry(self, request: Request) -> tuple[str, dict[str, Any]]:
        name = f"policies/{request.params['policy']}"
        for setting, policy in self.state.google_policies.items():
            if policy["name"] == name:
                return setting, policy
        raise ApiError(404, "notFound", f"Policy {name} not found.")

    def policy(self, request: Request) -> Response:
        self.need(request, "policies", admin=True)
        with self.state.lock:
            return Response.json(copy_policy(self._policy_entry(request)[1]))

    def patch_policy(self, request: Request) -> Response:
        admin = self.need(request, "policies_write", admin=True)
        body = request.json()
        with self.state.lock:
            setting, policy = self._policy_entry(request)
            old = dict(policy["setting"]["value"])
            new_value = (body.get("setting") or {}).get("value")
            if not isinstance(new_value, dict):
                raise ApiError(400, "invalid", "Policy.setting.value must be an object.")
            policy["setting"]["value"] = new_value
            result = copy_policy(policy)
        self.admin_event(
            admin,
            [
                (
                    "APPLICATION_SETTINGS",
                    "CHANGE_APPLICATION_SETTING",
                    {
                        "APPLICATION_NAME": setting.split(".")[0],
                        "SETTING_NAME": setting,
                        "OLD_VALUE": str(old),
                        "NEW_VALUE": str(new_value),
                    },
                )
            ],
        )
        self.change(
            request,
            "patch_google_policy",
            {"setting": setting, "policy": policy["name"], "old": old, "new": new_value},
            200,
        )
        return Response.json(
            {
                "name": f"operations/{self.tenant.ids.hex('op', setting, self.state.version, length=16)}",
                "done": True,
                "response": {
                    "@type": "type.googleapis.com/google.apps.cloudidentity.policies.v1.Policy",
                    **result,
                },
            }
        )
